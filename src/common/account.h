/* account.h - the rules of an mcs-api account, shared by the API
 * (src/api/h_auth.c) and `mcs user` (src/tools/mcs_user.c) so that both
 * accept the same names and passwords and store the same hash (R-API-1):
 * names 1..64 of [A-Za-z0-9_.-], passwords 8..256 bytes, Argon2id at
 * libsodium's interactive limits. Owns nothing; touches no server.
 * Thread: any. */
#ifndef MCS_ACCOUNT_H
#define MCS_ACCOUNT_H

#include <stddef.h>

#define MCS_ACCOUNT_NAME_MAX 64
#define MCS_ACCOUNT_PW_MIN 8
#define MCS_ACCOUNT_PW_MAX 256

/* 1 when name matches ^[A-Za-z0-9_.-]{1,64}$, else 0. */
int mcs_account_name_valid(const char *name);

/* 0 when pw (a C string) is MCS_ACCOUNT_PW_MIN..MCS_ACCOUNT_PW_MAX bytes
 * long, else MCS_EINVAL with "password must be 8..256 bytes" in err. */
int mcs_account_password_check(const char *pw, char *err, size_t errn);

/* The Argon2id hash of pw (crypto_pwhash_str_alg, interactive limits) into
 * out, which needs crypto_pwhash_STRBYTES (128) bytes. Calls sodium_init().
 * Returns 0, MCS_EINVAL when outn is too small, or MCS_ENOMEM when libsodium
 * cannot start or the hash cannot get its memory. The caller wipes pw. */
int mcs_account_password_hash(const char *pw, char *out, size_t outn);

#endif
