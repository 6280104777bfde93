/* account.h - the rules of an mcs-api account, shared by the API
 * (src/api/h_auth.c) and `mcs user` (src/tools/mcs_user.c) so that both
 * accept the same names and passwords and store the same hash (R-API-1):
 * names 1..64 of [A-Za-z0-9_.-] (unique ignoring case: the database's
 * users_username_lower index, migration 065), passwords 8..256 bytes and
 * not common or trivial, Argon2id at libsodium's interactive limits. Owns nothing; touches no server.
 * Thread: any. */
#ifndef MCS_ACCOUNT_H
#define MCS_ACCOUNT_H

#include <stddef.h>

#define MCS_ACCOUNT_NAME_MAX 64
#define MCS_ACCOUNT_PW_MIN 8
#define MCS_ACCOUNT_PW_MAX 256

/* 1 when name matches ^[A-Za-z0-9_.-]{1,64}$, else 0. */
int mcs_account_name_valid(const char *name);

/* 0 when pw (a C string) may be a password, else MCS_EINVAL with the
 * reason in err (Chinese first, English beside; 128 bytes hold any). As
 * NIST SP 800-63B 5.1.1.2 asks, without composition rules: its length
 * must be MCS_ACCOUNT_PW_MIN..MCS_ACCOUNT_PW_MAX bytes ("password must be
 * 8..256 bytes"), and it must not be trivial (only white space, or one
 * character repeated) nor, ignoring case, one of a built-in list of the
 * most common passwords (12345678, password, qwerty123, woaini1314, …). */
int mcs_account_password_check(const char *pw, char *err, size_t errn);

/* mcs_account_password_check, and pw must not be the account's own name
 * (ignoring case). name may be NULL (then only the checks above). Used
 * wherever the name is known: create, admin reset, own change, CLI. */
int mcs_account_password_check_for(const char *name, const char *pw, char *err, size_t errn);

/* The Argon2id hash of pw (crypto_pwhash_str_alg, interactive limits) into
 * out, which needs crypto_pwhash_STRBYTES (128) bytes. Calls sodium_init().
 * Returns 0, MCS_EINVAL when outn is too small, or MCS_ENOMEM when libsodium
 * cannot start or the hash cannot get its memory. The caller wipes pw. */
int mcs_account_password_hash(const char *pw, char *out, size_t outn);

#endif
