/* account.c - names, password lengths and the password hash of mcs-api
 * accounts (see account.h). Owns nothing. Thread: any. */
#include "account.h"
#include "err.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

int mcs_account_name_valid(const char *name)
{
    size_t n = strlen(name);
    if(n < 1 || n > MCS_ACCOUNT_NAME_MAX)
        return 0;
    for(const char *p = name; *p; p++)
        if(!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '_' || *p == '.' || *p == '-'))
            return 0;
    return 1;
}

int mcs_account_password_check(const char *pw, char *err, size_t errn)
{
    size_t n = strlen(pw);
    if(n < MCS_ACCOUNT_PW_MIN || n > MCS_ACCOUNT_PW_MAX) {
        snprintf(err, errn, "password must be %d..%d bytes", MCS_ACCOUNT_PW_MIN,
                 MCS_ACCOUNT_PW_MAX);
        return MCS_EINVAL;
    }
    return 0;
}

int mcs_account_password_hash(const char *pw, char *out, size_t outn)
{
    if(outn < crypto_pwhash_STRBYTES)
        return MCS_EINVAL;
    if(sodium_init() < 0)
        return MCS_ENOMEM;
    if(crypto_pwhash_str_alg(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13))
        return MCS_ENOMEM;
    return 0;
}
