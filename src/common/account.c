/* account.c - names, password rules and the password hash of mcs-api
 * accounts (see account.h). Owns nothing. Thread: any. */
#include "account.h"
#include "err.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

/* The most common passwords of at least 8 bytes (shorter ones fail the
 * length rule) from the public breach lists (SecLists' top lists, and the
 * lists of Chinese sites' leaks: 5201314, woaini, 1qaz2wsx…), lower case;
 * compared ignoring case. Small on purpose: it stops the first guesses of
 * an online attack, the throttle does the rest. */
static const char *const common_pw[] = {
    "12345678", "123456789", "1234567890", "12345678910", "123123123", "123321123",
    "87654321", "987654321", "0987654321", "11223344", "12341234", "12344321", "147258369",
    "123456abc", "123456aa", "123456qq", "a12345678", "a123456789", "abc12345", "abc123456",
    "abcd1234", "abcdefgh", "aa123456", "aa12345678", "qq123456", "qq5201314", "5201314520",
    "52013145201314", "woaini1314", "woaini520", "iloveyou", "iloveyou1", "password",
    "password1", "password12", "password123", "passw0rd", "p@ssw0rd", "p@ssword", "pass1234",
    "admin123", "admin1234", "admin12345", "admin@123", "administrator", "root1234",
    "rootroot", "qwertyui", "qwertyuiop", "qwerty123", "qwerty12", "1qaz2wsx", "1qaz@wsx",
    "1qazxsw2", "2wsx3edc", "qazwsxedc", "zaq12wsx", "q1w2e3r4", "1q2w3e4r", "1q2w3e4r5t",
    "qwer1234", "asdf1234", "asdfghjk", "asdfghjkl", "zxcvbnm1", "zxcvbnm123", "zxcvbnmm",
    "sunshine", "princess", "football", "baseball", "welcome1", "welcome123", "trustno1",
    "superman", "starwars", "whatever", "computer", "internet", "changeme", "letmein1",
    "monkey123", "dragon123", "master123", "michael1", "shadow123", "abcd@1234", "test1234",
    "testtest", "guest123", "user1234", "mcsiot123", "mcs-iot1", "mcs12345", "12qwaszx",
    NULL};

/* Bytes of the white space character at p (ASCII, U+00A0, and U+3000 that
 * a Chinese keyboard types), or 0. */
static size_t space_len(const char *p)
{
    if(*p && strchr(" \t\r\n\v\f", *p))
        return 1;
    if(!strncmp(p, "\xc2\xa0", 2))
        return 2;
    if(!strncmp(p, "\xe3\x80\x80", 3))
        return 3;
    return 0;
}

/* 1 when pw is only white space or one byte repeated. */
static int trivial(const char *pw)
{
    const char *p = pw;
    size_t k;
    while((k = space_len(p)))
        p += k;
    if(!*p)
        return 1;
    for(p = pw; *p == pw[0]; p++)
        ;
    return !*p;
}

int mcs_account_password_check(const char *pw, char *err, size_t errn)
{
    size_t n = strlen(pw);
    if(n < MCS_ACCOUNT_PW_MIN || n > MCS_ACCOUNT_PW_MAX) {
        snprintf(err, errn, "password must be %d..%d bytes", MCS_ACCOUNT_PW_MIN,
                 MCS_ACCOUNT_PW_MAX);
        return MCS_EINVAL;
    }
    if(trivial(pw)) {
        snprintf(err, errn, "密码过于简单 / password is only white space or one repeated "
                            "character");
        return MCS_EINVAL;
    }
    for(const char *const *c = common_pw; *c; c++)
        if(!strcasecmp(pw, *c)) {
            snprintf(err, errn, "密码过于常见 / password is one of the most common passwords");
            return MCS_EINVAL;
        }
    return 0;
}

int mcs_account_password_check_for(const char *name, const char *pw, char *err, size_t errn)
{
    int rc = mcs_account_password_check(pw, err, errn);
    if(!rc && name && !strcasecmp(pw, name)) {
        snprintf(err, errn, "密码不能是用户名 / password must not be the user name");
        rc = MCS_EINVAL;
    }
    return rc;
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
