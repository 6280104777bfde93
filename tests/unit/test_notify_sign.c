/* test_notify_sign.c - the platforms' published check vectors (issue #7):
 * DingTalk and Feishu robot signatures, Aliyun RPC HMAC-SHA1 signature of
 * SendSms; RFC 2047 subjects and templates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "notify_chan.h"

#include <sodium.h>
#include <string.h>

static void dingtalk(void **state)
{
    char s[128];
    (void)state;
    assert_int_equal(notify_dingtalk_sign("SECtest", 1577808000000LL, s, sizeof(s)), 0);
    assert_string_equal(s, "XHi7WpB%2BbLwQq5Rz0PrkJ6p9pXsd593WTWgii6qJ3uw%3D");
}

static void feishu(void **state)
{
    char s[128];
    (void)state;
    assert_int_equal(notify_feishu_sign("demo", 1599360473LL, s, sizeof(s)), 0);
    assert_string_equal(s, "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8=");
}

static void aliyun(void **state)
{
    const char *p[] = {"AccessKeyId", "testId", "Action", "SendSms", "Format", "XML",
                       "OutId", "123", "PhoneNumbers", "15300000001", "RegionId",
                       "cn-hangzhou", "SignName", "阿里云短信测试专用", "SignatureMethod",
                       "HMAC-SHA1", "SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466",
                       "SignatureVersion", "1.0", "TemplateCode", "SMS_71390007",
                       "TemplateParam", "{\"customer\":\"test\"}", "Timestamp",
                       "2017-07-12T02:42:19Z", "Version", "2017-05-25"};
    char sig[64], q[2048];
    (void)state;
    assert_int_equal(notify_aliyun_sign("testSecret", p, sizeof(p) / sizeof(p[0]) / 2, sig,
                                        sizeof(sig), q, sizeof(q)),
                     0);
    assert_string_equal(sig, "zJDF+Lrzhj/ThnlvIToysFRq6t4=");
    /* canonical order and RFC 3986 encoding */
    assert_true(strncmp(q, "AccessKeyId=testId&Action=SendSms&Format=XML", 44) == 0);
    assert_non_null(strstr(q, "TemplateParam=%7B%22customer%22%3A%22test%22%7D"));
    assert_int_equal(notify_aliyun_sign("x", p, 14, sig, sizeof(sig), q, 10), -8);
}

static void subject(void **state)
{
    char out[512], dec[256];
    size_t bl;
    const char *end;
    (void)state;
    assert_int_equal(notify_mime_subject("【一级报警】浓度高报 A001 车间一号位置探测器", out,
                                         sizeof(out)), 0);
    assert_true(strncmp(out, "=?UTF-8?B?", 10) == 0);
    /* each word decodes to whole UTF-8 characters */
    char *w = out, got[256] = "";
    while((w = strstr(w, "=?UTF-8?B?"))) {
        w += 10;
        char *e = strstr(w, "?=");
        assert_non_null(e);
        assert_true(e - w <= 64);
        assert_int_equal(sodium_base642bin((unsigned char *)dec, sizeof(dec), w, (size_t)(e - w),
                                           NULL, &bl, &end, sodium_base64_VARIANT_ORIGINAL), 0);
        dec[bl] = '\0';
        assert_true(((unsigned char)dec[0] & 0xC0) != 0x80);
        strncat(got, dec, sizeof(got) - strlen(got) - 1); /* lint-ok: bounded */
        w = e;
    }
    assert_string_equal(got, "【一级报警】浓度高报 A001 车间一号位置探测器");
}

static void render(void **state)
{
    struct notify_msg m;
    char out[256];
    (void)state;
    memset(&m, 0, sizeof(m));
    snprintf(m.sn, sizeof(m.sn), "A001");
    snprintf(m.name, sizeof(m.name), "1号\"探头\"");
    snprintf(m.type, sizeof(m.type), "HIGH");
    snprintf(m.category, sizeof(m.category), "gas");
    snprintf(m.val, sizeof(m.val), "150.5");
    snprintf(m.unit, sizeof(m.unit), "ppm");
    snprintf(m.threshold, sizeof(m.threshold), "100");
    snprintf(m.event, sizeof(m.event), "raise");
    m.level = 2;
    notify_render("{name}:{val}{unit}>{threshold} L{level} {x} {", &m, 0, out, sizeof(out));
    assert_string_equal(out, "1号\"探头\":150.5ppm>100 L2 {x} {");
    notify_render("{\"n\":\"{name}\"}", &m, 1, out, sizeof(out));
    assert_string_equal(out, "{\"n\":\"1号\\\"探头\\\"\"}");
    notify_default_text(&m, out, sizeof(out));
    assert_non_null(strstr(out, "二级报警"));
    assert_non_null(strstr(out, "浓度高报"));
    /* cut never splits a character */
    notify_render("{name}{name}{name}", &m, 0, out, 8);
    assert_true(strlen(out) <= 7);
    assert_string_equal(out, "1号\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dingtalk), cmocka_unit_test(feishu), cmocka_unit_test(aliyun),
        cmocka_unit_test(subject),  cmocka_unit_test(render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
