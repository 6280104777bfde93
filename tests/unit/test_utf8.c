/* test_utf8.c - the UTF-8 decoder of the text checks (src/common/utf8.h)
 * and the two policies built on it: rq_utf8_valid (API, NUL refused) is
 * tested in test_api_reqparse.c; here the decoder's edges and
 * mcs_utf8_clean. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "utf8.h"

#include <string.h>

static size_t next(const char *s, size_t n, unsigned *cp)
{
    return mcs_utf8_next((const unsigned char *)s, n, cp);
}

static void well_formed(void **state)
{
    unsigned cp = 0;
    (void)state;
    assert_int_equal(next("A", 1, &cp), 1);
    assert_int_equal(cp, 'A');
    assert_int_equal(next("", 1, &cp), 1); /* NUL: U+0000, the callers' policy */
    assert_int_equal(cp, 0);
    assert_int_equal(next("\xC2\x80", 2, &cp), 2);
    assert_int_equal(cp, 0x80);
    assert_int_equal(next("名", 3, &cp), 3);
    assert_int_equal(cp, 0x540D);
    assert_int_equal(next("\xEF\xBF\xBF", 3, &cp), 3);
    assert_int_equal(cp, 0xFFFF);
    assert_int_equal(next("\xF0\x9F\x98\x80", 4, &cp), 4);
    assert_int_equal(cp, 0x1F600);
    assert_int_equal(next("\xF4\x8F\xBF\xBF", 4, &cp), 4);
    assert_int_equal(cp, 0x10FFFF);
}

static void malformed(void **state)
{
    unsigned cp = 7;
    static const struct {
        const char *s;
        size_t n;
    } bad[] = {
        {"A", 0},                 /* nothing to read */
        {"\x80", 1},              /* stray continuation byte */
        {"\xC0\x80", 2},          /* overlong NUL */
        {"\xC1\xBF", 2},          /* overlong */
        {"\xE0\x9F\xBF", 3},      /* overlong 3-byte form */
        {"\xF0\x8F\xBF\xBF", 4},  /* overlong 4-byte form */
        {"\xED\xA0\x80", 3},      /* surrogate U+D800 */
        {"\xED\xBF\xBF", 3},      /* surrogate U+DFFF */
        {"\xF4\x90\x80\x80", 4},  /* U+110000 */
        {"\xF5\x80\x80\x80", 4},  /* lead byte beyond U+10FFFF */
        {"\xE5\x90", 2},          /* cut off by n */
        {"\xE5\x90\x8D", 2},      /* cut off by n, though the byte follows */
        {"\xE5\x41\x8D", 3},      /* not a continuation byte */
    };
    (void)state;
    for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(next(bad[i].s, bad[i].n, &cp), 0);
        assert_int_equal(cp, 7); /* untouched */
    }
}

/* mcs_utf8_clean: what the notifier stores of a platform's answer. */
static void clean(void **state)
{
    char out[16];
    (void)state;
    mcs_utf8_clean("errcode 1: 名", out, sizeof(out));
    assert_string_equal(out, "errcode 1: 名");
    /* Cut to fit on a character boundary, never in the middle of one. */
    mcs_utf8_clean("abcdefghijklm名字", out, sizeof(out));
    assert_string_equal(out, "abcdefghijklm");
    mcs_utf8_clean("abcdefghijkl名字", out, sizeof(out));
    assert_string_equal(out, "abcdefghijkl名");
    /* A character a snprintf cut off at the end is dropped ... */
    mcs_utf8_clean("ab\xE5\x90", out, sizeof(out));
    assert_string_equal(out, "ab");
    /* ... ill-formed bytes elsewhere become '?'. */
    mcs_utf8_clean("a\xE5\x41\xFF" "b\xC0\xAF" "c", out, sizeof(out));
    assert_string_equal(out, "a?A?b??c");
    mcs_utf8_clean("", out, 1);
    assert_string_equal(out, "");
    mcs_utf8_clean("名", out, 3); /* no room for the whole character */
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(well_formed),
        cmocka_unit_test(malformed),
        cmocka_unit_test(clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
