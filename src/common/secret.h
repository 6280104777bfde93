/* secret.h - secrets at rest (R-AL-5: SMTP passwords, robot secrets, AccessKey
 * secrets in system_config): libsodium crypto_secretbox (XSalsa20-Poly1305)
 * with a 32-byte key, text form "enc:v1:" + base64(nonce | ciphertext).
 * The key comes from MCS_SECRET_KEY (64 hex digits or base64 of 32 bytes)
 * or from the file named by MCS_SECRET_KEY_FILE (the same text, or 32 raw
 * bytes). Owns nothing global: the key lives in the caller's struct.
 * Thread: any (pure functions over the caller's key). */
#ifndef MCS_SECRET_H
#define MCS_SECRET_H

#include <stddef.h>

#define MCS_SECRET_KEYLEN 32
#define MCS_SECRET_PREFIX "enc:v1:"

struct mcs_secret_key {
    unsigned char k[MCS_SECRET_KEYLEN];
    int set; /* 0 when no key is configured */
};

/* Parses a key given as 64 hex digits or as base64 of 32 bytes.
 * Returns 0 or MCS_EINVAL. */
int secret_key_parse(struct mcs_secret_key *key, const char *text);

/* Loads the key from the environment: MCS_SECRET_KEY, else the file named by
 * MCS_SECRET_KEY_FILE. Returns 0 (key->set 1), MCS_ENOTFOUND when neither is
 * set (key->set 0), MCS_EIO or MCS_EINVAL when given but unusable. */
int secret_key_from_env(struct mcs_secret_key *key);
/* The same from given values (MCS_SECRET_KEY / MCS_SECRET_KEY_FILE of the
 * configuration table); either may be NULL or empty. */
int secret_key_load(struct mcs_secret_key *key, const char *text, const char *path);

/* Encrypts plain (NUL-terminated) into out as "enc:v1:...". out must hold
 * secret_enc_len(strlen(plain)) bytes. Returns 0, MCS_EINVAL (no key) or
 * MCS_ETOOBIG (out too small). */
size_t secret_enc_len(size_t plain_len);
int secret_encrypt(const struct mcs_secret_key *key, const char *plain, char *out, size_t outn);

/* Decrypts "enc:v1:..." into out (NUL-terminated). A value without the
 * prefix is returned as it is (plain text configured by hand). Returns 0,
 * MCS_EINVAL (no key for an encrypted value), MCS_ECORRUPT (wrong key or
 * altered text), MCS_EPARSE (bad base64) or MCS_ETOOBIG. */
int secret_decrypt(const struct mcs_secret_key *key, const char *text, char *out, size_t outn);

/* 1 when text is in the encrypted form. */
int secret_is_encrypted(const char *text);

#endif
