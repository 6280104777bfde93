/* license.h - the signed license file, the license server's signed token and
 * the host fingerprint (R-LI-1..3, issue #17; docs/OPERATIONS.md "License").
 * Owns the text form of both documents, their Ed25519 signatures (libsodium)
 * and the vendor public keys built into the product. Touches no file but the
 * one it is asked to read, no database, no network.
 * Thread: any (pure functions over the caller's buffers). */
#ifndef MCS_LICENSE_H
#define MCS_LICENSE_H

#include <stddef.h>
#include <stdint.h>

/* A signed document is text, one "name: value" line per field in a fixed
 * order, opened by a magic line and closed by the signature line:
 *
 *   MCS-LICENSE 1
 *   id: L-20261207-0001
 *   key: MCS-AB12-CD34-EF56
 *   customer: 某某化工有限公司
 *   max_devices: 100
 *   issued: 2026-12-07
 *   expires: 2027-12-31
 *   signature: <base64 of the 64-byte Ed25519 signature>
 *
 * The signature covers every byte before "signature: ". The parser accepts
 * only the canonical form (fields in order, one space after the colon, no
 * trailing space, '\n' line ends, base64 as the signer wrote it, nothing after
 * the last newline), so the signed bytes and the parsed values are one and
 * the same: a single changed byte anywhere fails, either as malformed or as
 * a bad signature. The token of the license server has the same form with
 * the magic line "MCS-TOKEN 1". */

#define LIC_PK_LEN 32
#define LIC_SK_LEN 64
#define LIC_SIG_LEN 64
#define LIC_FILE_MAX 4096 /* a license or token larger than this is refused */
#define LIC_VALUE_MAX 128 /* bytes of one field value, excluding the NUL */
#define LIC_FP_HEX 64     /* hex digits of a host fingerprint */
#define LIC_KEY_LEN 18    /* MCS-XXXX-XXXX-XXXX */

struct mcs_license {
    char id[LIC_VALUE_MAX + 1];
    char key[LIC_KEY_LEN + 1];
    char customer[LIC_VALUE_MAX + 1];
    int max_devices; /* 1..1000000 */
    char issued[11]; /* YYYY-MM-DD */
    char expires[11];
    int64_t expires_end; /* unix seconds: 00:00 UTC of the day after expires */
};

/* Verdicts of the license server. Everything but LIC_TOK_OK is an explicit
 * rejection that locks the plant at once (R-LI-4). */
#define LIC_TOKEN_STATUSES(X)                                                        \
    X(LIC_TOK_OK, "ok", "授权有效 / license valid")                                  \
    X(LIC_TOK_REVOKED, "revoked", "授权已吊销 / license revoked")                    \
    X(LIC_TOK_EXPIRED, "expired", "授权已过期 / license expired")                    \
    X(LIC_TOK_OTHER_HOST, "other_host", "机器码不匹配 / license bound to another host") \
    X(LIC_TOK_UNKNOWN, "unknown", "授权不存在 / license unknown to the vendor")

enum lic_token_status {
#define LIC_TOK_ENUM(e, name, msg) e,
    LIC_TOKEN_STATUSES(LIC_TOK_ENUM)
#undef LIC_TOK_ENUM
};

struct mcs_lic_token {
    char license_id[LIC_VALUE_MAX + 1];
    char key[LIC_KEY_LEN + 1];
    char fingerprint[LIC_FP_HEX + 1];
    char nonce[LIC_VALUE_MAX + 1];
    enum lic_token_status status;
    int64_t issued_at;  /* unix seconds, the server's clock */
    int64_t expires_at; /* issued_at + 24 h for LIC_TOK_OK */
};

/* The public keys a document may be signed with. */
struct lic_keyring {
    const unsigned char (*pk)[LIC_PK_LEN];
    int n;
};

/* The vendor keys built into this binary: the product key (CMake
 * MCS_LICENSE_PUBKEY), plus the test key of tests/license only when built with
 * -DMCS_LICENSE_TEST_KEY=ON (never a release build). Static; never NULL. */
const struct lic_keyring *license_builtin_keys(void);
/* 1 when this binary trusts the test key (shown in health and the log). */
int license_test_build(void);

/* Parses and verifies a license (n bytes of buf, not NUL-terminated).
 * Returns 0 and fills out; MCS_EPARSE with why "empty" or the first
 * malformed thing; MCS_ETOOBIG beyond LIC_FILE_MAX; MCS_ECORRUPT when the
 * signature matches none of keys (API code 20001). Expiry is not judged here
 * (see license_expired). why (may be NULL) gets a message in Chinese and
 * English; it never contains the license key. */
int license_parse(const char *buf, size_t n, const struct lic_keyring *keys,
                  struct mcs_license *out, char *why, size_t whyn);
/* The same from a file: MCS_ENOTFOUND when it does not exist, MCS_EIO when
 * it cannot be read, else as license_parse. */
int license_load(const char *path, const struct lic_keyring *keys, struct mcs_license *out,
                 char *why, size_t whyn);
/* 1 when the license has expired at unix time now. */
int license_expired(const struct mcs_license *l, int64_t now);

/* Writes the signed text of l (its expires_end is ignored) into out,
 * NUL-terminated. Returns 0, MCS_EINVAL (a field out of form: key pattern,
 * dates, control characters, max_devices range) or MCS_ETOOBIG. */
int license_format(const struct mcs_license *l, const unsigned char sk[LIC_SK_LEN], char *out,
                   size_t outn);

/* Token: as license_parse / license_format for the server's answer. */
int lic_token_parse(const char *buf, size_t n, const struct lic_keyring *keys,
                    struct mcs_lic_token *out, char *why, size_t whyn);
int lic_token_format(const struct mcs_lic_token *t, const unsigned char sk[LIC_SK_LEN], char *out,
                     size_t outn);
const char *lic_token_status_name(enum lic_token_status s);
const char *lic_token_status_msg(enum lic_token_status s);
/* Returns 0 and sets *s for a status name, MCS_EINVAL for another word. */
int lic_token_status_parse(const char *name, enum lic_token_status *s);

/* 1 when text is a license key of the form MCS-XXXX-XXXX-XXXX (X: A-Z 0-9). */
int license_key_valid(const char *text);
/* Writes "MCS-AB12-****-****" (the form logs and answers may show). */
void license_key_mask(const char *key, char out[LIC_KEY_LEN + 1]);

/* The host fingerprint: 64 hex digits of a keyed BLAKE2b (libsodium generic
 * hash with the product's fixed key) of the machine id read from path
 * (/etc/machine-id; /app/host_id in containers), surrounding white space
 * removed. The raw id never leaves this function. Returns 0, MCS_ENOTFOUND,
 * MCS_EIO, or MCS_EPARSE for an empty or over-long id (why says which). */
int license_fingerprint(const char *path, char out[LIC_FP_HEX + 1], char *why, size_t whyn);

/* Key files of the vendor: the secret key as 128 hex digits on one line.
 * license_sk_load returns 0, MCS_ENOTFOUND, MCS_EIO or MCS_EPARSE. */
int license_sk_load(const char *path, unsigned char sk[LIC_SK_LEN]);
/* Public key as 64 hex digits into out (65 bytes). */
void license_pk_hex(const unsigned char pk[LIC_PK_LEN], char out[2 * LIC_PK_LEN + 1]);

#endif
