/* test_account.c - the account rules shared by mcs-api and `mcs user`
 * (src/common/account.h): names, password lengths at their bounds, and a
 * hash that libsodium verifies as Argon2id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "account.h"
#include "err.h"

#include <sodium.h>
#include <string.h>

static void names(void **state)
{
    char n65[66];
    (void)state;
    assert_int_equal(mcs_account_name_valid("admin"), 1);
    assert_int_equal(mcs_account_name_valid("a.b-c_9Z"), 1);
    assert_int_equal(mcs_account_name_valid(""), 0);
    assert_int_equal(mcs_account_name_valid("bad name"), 0);
    assert_int_equal(mcs_account_name_valid("ümlaut"), 0);
    assert_int_equal(mcs_account_name_valid("semi;colon"), 0);
    memset(n65, 'u', 65);
    n65[65] = '\0';
    assert_int_equal(mcs_account_name_valid(n65), 0);
    n65[64] = '\0';
    assert_int_equal(mcs_account_name_valid(n65), 1);
}

static void passwords(void **state)
{
    char pw[258], err[80] = "";
    (void)state;
    memset(pw, 'p', sizeof(pw) - 1);
    pw[257] = '\0';
    assert_int_equal(mcs_account_password_check(pw, err, sizeof(err)), MCS_EINVAL);
    assert_string_equal(err, "password must be 8..256 bytes");
    pw[256] = '\0';
    assert_int_equal(mcs_account_password_check(pw, err, sizeof(err)), 0);
    pw[8] = '\0';
    assert_int_equal(mcs_account_password_check(pw, err, sizeof(err)), 0);
    pw[7] = '\0';
    assert_int_equal(mcs_account_password_check(pw, err, sizeof(err)), MCS_EINVAL);
}

static void hashes(void **state)
{
    char h[crypto_pwhash_STRBYTES], small[16];
    (void)state;
    assert_int_equal(mcs_account_password_hash("secret-pw", small, sizeof(small)), MCS_EINVAL);
    assert_int_equal(mcs_account_password_hash("secret-pw", h, sizeof(h)), 0);
    assert_memory_equal(h, "$argon2id$", 10);
    assert_int_equal(crypto_pwhash_str_verify(h, "secret-pw", 9), 0);
    assert_int_not_equal(crypto_pwhash_str_verify(h, "secret-px", 9), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names),
        cmocka_unit_test(passwords),
        cmocka_unit_test(hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
