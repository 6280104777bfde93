/* test_log.c - the JSON-line logger (src/common/log.c): a line carrying
 * Chinese text parses back, with cJSON, to the same text; ill-formed UTF-8
 * becomes U+FFFD and control characters are escaped. The line is read from
 * stderr through a pipe, as the supervisor reads it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "log.h"

#include <cjson/cJSON.h>
#include <string.h>
#include <unistd.h>

/* Writes one line with mcs_log_write and returns it parsed (caller frees). */
static cJSON *log_line(const char *msg, const char *value)
{
    int fds[2], saved;
    char buf[8192];
    ssize_t got;
    assert_int_equal(pipe(fds), 0);
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
    mcs_log_write(MCS_LOG_WARN, "许可", msg, LS("customer", value), (const char *)0);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    close(fds[1]);
    got = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    assert_true(got > 0);
    buf[got] = '\0';
    assert_int_equal(buf[got - 1], '\n');
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    return j;
}

static const char *field(cJSON *j, const char *k)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static void chinese_round_trip(void **state)
{
    (void)state;
    cJSON *j = log_line("浓度高报 已确认 \"CH4\" 25%LEL\\x", "上海燃气 😀 Shanghai Gas");
    assert_string_equal(field(j, "module"), "许可");
    assert_string_equal(field(j, "msg"), "浓度高报 已确认 \"CH4\" 25%LEL\\x");
    assert_string_equal(field(j, "customer"), "上海燃气 😀 Shanghai Gas");
    cJSON_Delete(j);
}

static void invalid_and_controls(void **state)
{
    (void)state;
    /* a stray continuation byte, an overlong '/', a surrogate, a cut 名 */
    cJSON *j = log_line("a\x80" "b\xC0\xAF" "c\xED\xA0\x80" "d\xE5\x90", "x\ny\t\x01z\x7f");
    assert_string_equal(field(j, "msg"), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD"
                                         "c\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                                         "d\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_string_equal(field(j, "customer"), "x\ny\t\x01z\x7f");
    cJSON_Delete(j);
}

static void escape_bounds(void **state)
{
    char out[16];
    (void)state;
    /* raw bytes, only what JSON requires escaped */
    assert_int_equal(mcs_json_escape(out, sizeof(out), "名\"\\\n", 100), 3 + 2 + 2 + 6);
    assert_string_equal(out, "名\\\"\\\\\\u000a");
    /* room for 2 of 3 characters: never half of one */
    assert_int_equal(mcs_json_escape(out, 9, "浓度高", 100), 6);
    assert_string_equal(out, "浓度");
    /* max_in cutting inside 度 drops it whole */
    assert_int_equal(mcs_json_escape(out, sizeof(out), "浓度", 4), 3);
    assert_string_equal(out, "浓");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(chinese_round_trip),
                                       cmocka_unit_test(invalid_and_controls),
                                       cmocka_unit_test(escape_bounds)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
