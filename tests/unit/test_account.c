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
    for(size_t i = 0; i < sizeof(pw) - 1; i++)
        pw[i] = (char)('a' + (i * 7) % 26);
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

/* NIST SP 800-63B: common and trivial passwords are refused, no
 * composition rules (issue #16, defect 12). */
static void weak_passwords(void **state)
{
    static const char *const weak[] = {"12345678", "password", "PassWord", "qwerty123",
                                       "woaini1314", "        ", "\t\t\t\t\t\t\t\t",
                                       "\xe3\x80\x80\xe3\x80\x80\xe3\x80\x80", "aaaaaaaa",
                                       "999999999999", NULL};
    char err[128];
    (void)state;
    for(const char *const *w = weak; *w; w++) {
        err[0] = '\0';
        assert_int_equal(mcs_account_password_check_for("someone", *w, err, sizeof(err)),
                         MCS_EINVAL);
        assert_true(strstr(err, "password") != NULL);
    }
    assert_int_equal(mcs_account_password_check_for("operator1", "Operator1", err, sizeof(err)),
                     MCS_EINVAL);
    assert_string_equal(err, "密码不能是用户名 / password must not be the user name");
    /* No composition rule: a long lower-case phrase is fine, so is one
     * with spaces inside. */
    assert_int_equal(mcs_account_password_check_for("operator1", "correct horse battery", err,
                                                    sizeof(err)),
                     0);
    assert_int_equal(mcs_account_password_check_for(NULL, "operator1", err, sizeof(err)), 0);
    assert_int_equal(mcs_account_password_check("a aaaaaaa", err, sizeof(err)), 0);
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
        cmocka_unit_test(weak_passwords),
        cmocka_unit_test(hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
