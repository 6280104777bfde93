/* test_config.c - the typed configuration table and .env parsing (R-OP-4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "config.h"
#include "err.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

static void defaults_and_bounds(void **state)
{
    struct mcs_config c;
    char err[256];
    (void)state;
    mcs_config_defaults(&c);
    assert_int_equal(c.db_port, 5432);
    assert_string_equal(c.mqtt_prefix, "mcs");
    assert_int_equal(c.data_retention_days, 3);
    assert_int_equal(mcs_config_set(&c, "DB_PORT", "abc", err, sizeof(err)), MCS_ECONFIG);
    assert_non_null(strstr(err, "DB_PORT"));
    assert_int_equal(mcs_config_set(&c, "DB_PORT", "70000", err, sizeof(err)), MCS_ECONFIG);
    assert_int_equal(mcs_config_set(&c, "DB_PORT", "6543", err, sizeof(err)), 0);
    assert_int_equal(c.db_port, 6543);
    assert_int_equal(mcs_config_set(&c, "NOPE", "1", err, sizeof(err)), MCS_ENOTFOUND);
    assert_int_equal(mcs_config_set(&c, "RANGE_MAX_DEFAULT", "inf", err, sizeof(err)),
                     MCS_ECONFIG);
    char longv[400];
    memset(longv, 'x', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    assert_int_equal(mcs_config_set(&c, "DB_HOST", longv, err, sizeof(err)), MCS_ECONFIG);
    assert_int_equal(mcs_config_set(&c, "DB_HOST", "", err, sizeof(err)), MCS_ECONFIG);
}

static void env_file(void **state)
{
    struct mcs_config c;
    char path[] = "/tmp/mcs-env-XXXXXX";
    (void)state;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *good = "# comment\n\nexport DB_HOST=db.local\nDB_PASS='s3 cr=t'\n"
                       "DOMAIN=ignored.example\nLOG_LEVEL=\"debug\"\n";
    assert_int_equal(write(fd, good, strlen(good)), (ssize_t)strlen(good));
    close(fd);
    mcs_config_defaults(&c);
    assert_int_equal(mcs_config_load_env_file(&c, path), 0);
    assert_string_equal(c.db_host, "db.local");
    assert_string_equal(c.db_pass, "s3 cr=t");
    assert_string_equal(c.log_level, "debug");

    fd = open(path, O_WRONLY | O_TRUNC);
    const char *bad = "DB_PORT=x\nJUSTTEXT\n";
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    assert_int_equal(mcs_config_load_env_file(&c, path), MCS_ECONFIG);
    /* A NUL inside a line is an error, and its tail is not a new line. */
    fd = open(path, O_WRONLY | O_TRUNC);
    static const char nul[] = "DB_HOST=a\0DB_PORT=1\nDB_NAME=x\n";
    assert_int_equal(write(fd, nul, sizeof(nul) - 1), (ssize_t)sizeof(nul) - 1);
    close(fd);
    mcs_config_defaults(&c);
    assert_int_equal(mcs_config_load_env_file(&c, path), MCS_ECONFIG);
    assert_int_equal(c.db_port, 5432);
    assert_string_equal(c.db_name, "x");
    unlink(path);
    assert_int_equal(mcs_config_load_env_file(&c, "/nonexistent/.env"), MCS_EIO);
}

static void validate(void **state)
{
    struct mcs_config c;
    (void)state;
    mcs_config_defaults(&c);
    assert_int_equal(mcs_config_validate(&c), 0);
    snprintf(c.log_level, sizeof(c.log_level), "LOUD");
    assert_int_equal(mcs_config_validate(&c), MCS_ECONFIG);
    mcs_config_defaults(&c);
    snprintf(c.mqtt_prefix, sizeof(c.mqtt_prefix), "a/b");
    assert_int_equal(mcs_config_validate(&c), MCS_ECONFIG);
}

static void json_escape(void **state)
{
    char out[64];
    (void)state;
    mcs_json_escape(out, sizeof(out), "a\"b\\c\n\x01\xff", 100);
    assert_string_equal(out, "a\\\"b\\\\c\\u000a\\u0001\xEF\xBF\xBD"); /* U+FFFD */
    mcs_json_escape(out, 8, "0123456789", 100);
    assert_int_equal(strlen(out), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(defaults_and_bounds),
                                       cmocka_unit_test(env_file), cmocka_unit_test(validate),
                                       cmocka_unit_test(json_escape)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
