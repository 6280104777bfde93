/* test_secret.c - secretbox round trip, tamper detection, key parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "err.h"
#include "secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEXKEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static void round_trip(void **state)
{
    struct mcs_secret_key k;
    char enc[256], dec[128];
    (void)state;
    assert_int_equal(secret_key_parse(&k, HEXKEY), 0);
    assert_int_equal(secret_encrypt(&k, "授权码-abc123", enc, sizeof(enc)), 0);
    assert_true(secret_is_encrypted(enc));
    assert_null(strstr(enc, "abc123"));
    assert_int_equal(secret_decrypt(&k, enc, dec, sizeof(dec)), 0);
    assert_string_equal(dec, "授权码-abc123");
    /* two encryptions differ (random nonce) */
    char enc2[256];
    assert_int_equal(secret_encrypt(&k, "授权码-abc123", enc2, sizeof(enc2)), 0);
    assert_string_not_equal(enc, enc2);
}

static void tamper_and_wrong_key(void **state)
{
    struct mcs_secret_key k, k2;
    char enc[256], dec[128];
    (void)state;
    assert_int_equal(secret_key_parse(&k, HEXKEY), 0);
    assert_int_equal(secret_key_parse(&k2, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="), 0);
    /* the same key in base64 decrypts */
    assert_int_equal(secret_encrypt(&k, "pw", enc, sizeof(enc)), 0);
    assert_int_equal(secret_decrypt(&k2, enc, dec, sizeof(dec)), 0);
    k2.k[0] ^= 1;
    assert_int_equal(secret_decrypt(&k2, enc, dec, sizeof(dec)), MCS_ECORRUPT);
    size_t l = strlen(enc);
    enc[l - 3] = enc[l - 3] == 'A' ? 'B' : 'A';
    assert_int_equal(secret_decrypt(&k, enc, dec, sizeof(dec)), MCS_ECORRUPT);
    assert_int_equal(secret_decrypt(&k, "enc:v1:!!!", dec, sizeof(dec)), MCS_EPARSE);
    assert_int_equal(secret_decrypt(&k, "enc:v1:AAAA", dec, sizeof(dec)), MCS_ECORRUPT);
}

static void plain_and_no_key(void **state)
{
    struct mcs_secret_key none = {{0}, 0};
    char dec[16], enc[128];
    (void)state;
    assert_int_equal(secret_decrypt(&none, "plain", dec, sizeof(dec)), 0);
    assert_string_equal(dec, "plain");
    assert_int_equal(secret_decrypt(&none, "enc:v1:AAAA", dec, sizeof(dec)), MCS_EINVAL);
    assert_int_equal(secret_encrypt(&none, "x", enc, sizeof(enc)), MCS_EINVAL);
    assert_int_equal(secret_key_parse(&none, "short"), MCS_EINVAL);
    assert_int_equal(secret_decrypt(&none, "0123456789abcdefghij", dec, sizeof(dec)),
                     MCS_ETOOBIG);
}

static void key_file(void **state)
{
    struct mcs_secret_key k;
    char path[] = "/tmp/mcs-secret-XXXXXX";
    (void)state;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "%s\n", HEXKEY);
    fclose(f);
    unsetenv("MCS_SECRET_KEY");
    setenv("MCS_SECRET_KEY_FILE", path, 1);
    assert_int_equal(secret_key_from_env(&k), 0);
    assert_int_equal(k.k[31], 0x1f);
    unsetenv("MCS_SECRET_KEY_FILE");
    assert_int_equal(secret_key_from_env(&k), MCS_ENOTFOUND);
    setenv("MCS_SECRET_KEY", "nope", 1);
    assert_int_equal(secret_key_from_env(&k), MCS_EINVAL);
    unsetenv("MCS_SECRET_KEY");
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(tamper_and_wrong_key),
        cmocka_unit_test(plain_and_no_key),
        cmocka_unit_test(key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
