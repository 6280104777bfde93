/* test_api_reqparse.c - mcs-api's input checks and tokens (issue #8):
 * ISO 8601 times, query arguments, device and command bodies, image
 * sniffing, JWT alg/exp/signature checks, the login throttle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "auth.h"
#include "err.h"
#include "mailaddr.h"
#include "reqparse.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void times(void **state)
{
    int64_t t;
    (void)state;
    assert_int_equal(rq_parse_time("2025-12-17T14:30:00Z", &t), 0);
    assert_int_equal(t, 1765981800);
    assert_int_equal(rq_parse_time("2025-12-17T22:30:00+08:00", &t), 0);
    assert_int_equal(t, 1765981800);
    assert_int_equal(rq_parse_time("2025-12-17T14:30:00.123456Z", &t), 0);
    assert_int_equal(rq_parse_time("2024-02-29", &t), 0);
    assert_int_equal(t, 1709164800);
    const char *bad[] = {"2025-02-29", "2025-12-17T14:30:00", "2025-13-01", "1969-12-31",
                         "2025-12-17T24:00:00Z", "2025-12-17T14:30:00Zjunk", "yesterday", "",
                         "2025-12-17T14:30:00+8", "2025-12-17T14:30:00.Z", NULL};
    for(int i = 0; bad[i]; i++)
        assert_int_equal(rq_parse_time(bad[i], &t), MCS_EINVAL);
}

static void args(void **state)
{
    static struct api_req rq;
    char err[128], big[400];
    long v;
    (void)state;
    memset(&rq, 0, sizeof(rq));
    rq_add_arg(&rq, "page=3");
    rq_add_arg(&rq, "size=0");
    rq_add_arg(&rq, "flag");
    assert_string_equal(rq_arg(&rq, "page"), "3");
    assert_string_equal(rq_arg(&rq, "flag"), "");
    assert_int_equal(rq_int(&rq, "page", 1, 10, 1, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 3);
    assert_int_equal(rq_int(&rq, "size", 1, 200, 20, &v, err, sizeof(err)), MCS_EINVAL);
    assert_int_equal(rq_int(&rq, "absent", 1, 200, 20, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 20);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    rq_add_arg(&rq, big);
    assert_int_equal(rq.args_bad, 1);
    assert_int_equal(rq_sn_valid("A001-x_9"), 1);
    assert_int_equal(rq_sn_valid("bad sn"), 0);
    assert_int_equal(rq_sn_valid(""), 0);
    /* rq_utf8_valid: src/common/utf8.c decodes, the API refuses NUL too. */
    assert_int_equal(rq_utf8_valid((const unsigned char *)"A区东侧", 10), 1);
    assert_int_equal(rq_utf8_valid((const unsigned char *)"a\0b", 3), 0);
    assert_int_equal(rq_utf8_valid((const unsigned char *)"\xE5\x90\x8D", 2), 0);
    assert_int_equal(rq_utf8_valid((const unsigned char *)"\xED\xA0\x80", 3), 0);
    assert_int_equal(rq_utf8_valid((const unsigned char *)"", 0), 1);
    assert_int_equal(rq_interval("1m"), 60);
    assert_int_equal(rq_interval("raw"), 0);
    assert_int_equal(rq_interval("2m"), -1);
}

/* rq_page: defaults, bounds per endpoint, the LIMIT/OFFSET texts, and the
 * first bad argument (page before size) named in err. */
static void pages(void **state)
{
    static struct api_req rq;
    struct api_page pg;
    char err[128];
    (void)state;
    memset(&rq, 0, sizeof(rq));
    assert_int_equal(rq_page(&rq, 200, 20, &pg, err, sizeof(err)), 0);
    assert_int_equal(pg.page, 1);
    assert_int_equal(pg.size, 20);
    assert_string_equal(pg.lim, "20");
    assert_string_equal(pg.off, "0");
    rq_add_arg(&rq, "page=3");
    rq_add_arg(&rq, "size=500");
    assert_int_equal(rq_page(&rq, 200, 20, &pg, err, sizeof(err)), MCS_EINVAL);
    assert_string_equal(err, "size must be an integer in 1..200");
    assert_int_equal(rq_page(&rq, 10000, 2000, &pg, err, sizeof(err)), 0);
    assert_int_equal(pg.page, 3);
    assert_string_equal(pg.lim, "500");
    assert_string_equal(pg.off, "1000");
    memset(&rq, 0, sizeof(rq));
    rq_add_arg(&rq, "page=0");
    rq_add_arg(&rq, "size=0");
    assert_int_equal(rq_page(&rq, 200, 20, &pg, err, sizeof(err)), MCS_EINVAL);
    assert_string_equal(err, "page must be an integer in 1..100000");
}

static cJSON *obj(const char *s)
{
    char err[128];
    cJSON *j = rq_json_object((const unsigned char *)s, strlen(s), err, sizeof(err));
    assert_non_null(j);
    return j;
}

static void bodies(void **state)
{
    char err[160];
    struct dev_in d;
    int calib;
    cJSON *j;
    (void)state;
    assert_null(rq_json_object((const unsigned char *)"[1]", 3, err, sizeof(err)));
    assert_null(rq_json_object((const unsigned char *)"{} x", 4, err, sizeof(err)));
    assert_null(rq_json_object((const unsigned char *)"{\"a\":\"\xff\"}", 9, err, sizeof(err)));
    {
        char deep[64] = "{\"a\":";
        size_t n = strlen(deep);
        for(int i = 0; i < 20; i++)
            deep[n++] = '[';
        deep[n] = '\0';
        assert_null(rq_json_object((const unsigned char *)deep, strlen(deep), err, sizeof(err)));
    }
    j = obj("{\"sn\":\"A001\",\"name\":\"储罐\",\"high_limit\":1000,\"low_limit\":null}");
    assert_int_equal(rq_device(j, 1, &d, &calib, err, sizeof(err)), 0);
    assert_string_equal(d.sn, "A001");
    assert_true(d.set[DF_LOW] && d.is_null[DF_LOW]);
    assert_int_equal(rq_device(j, 0, &d, &calib, err, sizeof(err)), MCS_EINVAL); /* sn on PUT */
    cJSON_Delete(j);
    j = obj("{\"calib_k\":0}");
    assert_int_equal(rq_device(j, 0, &d, &calib, err, sizeof(err)), MCS_EINVAL);
    assert_int_equal(calib, 1);
    cJSON_Delete(j);
    /* Repeated names (at any depth) and \u0000 are refused at the parse
     * (issue #16): cJSON keeps both members and cuts the string at NUL. */
    assert_null(rq_json_object((const unsigned char *)"{\"name\":\"a\",\"name\":\"b\"}",
                               strlen("{\"name\":\"a\",\"name\":\"b\"}"), err, sizeof(err)));
    assert_string_equal(err, "field 'name' given twice");
    {
        const char *nested = "{\"email\":{\"sender\":\"a@b.cn\",\"sender\":\"c@d.cn\"}}";
        assert_null(rq_json_object((const unsigned char *)nested, strlen(nested), err,
                                   sizeof(err)));
        assert_string_equal(err, "field 'sender' given twice");
    }
    {
        char big[4096];
        size_t n = (size_t)snprintf(big, sizeof(big), "{");
        for(int i = 0; i < 300; i++)
            n += (size_t)snprintf(big + n, sizeof(big) - n, "\"k%d\":0,", i);
        snprintf(big + n, sizeof(big) - n, "\"k7\":1}");
        assert_null(rq_json_object((const unsigned char *)big, strlen(big), err, sizeof(err)));
        assert_string_equal(err, "field 'k7' given twice");
    }
    {
        const char *nul = "{\"username\":\"pt_u\\u0000x\"}";
        assert_null(rq_json_object((const unsigned char *)nul, strlen(nul), err, sizeof(err)));
        assert_string_equal(err, "strings must not contain \\u0000 (a NUL character)");
        j = obj("{\"username\":\"pt_u\\\\u0000x\"}"); /* an escaped backslash, then text */
        cJSON_Delete(j);
    }
    j = obj("{\"sn\":\"broadcast\"}");
    assert_int_equal(rq_device(j, 1, &d, &calib, err, sizeof(err)), MCS_EINVAL);
    cJSON_Delete(j);
}

/* Addresses as addresses (issue #16, defect 9): nothing that could end a
 * header line or add a second address reaches From: or the envelope. */
static void emails(void **state)
{
    static const char *const good[] = {"alarm@example.com", "a.b+c@mail.co", "x@localhost",
                                       "o'neil@a-b.example.org", NULL};
    static const char *const bad[] = {"", "@example.com", "a@", "a@@b.cn", "a b@c.cn",
                                      "a@b.cn\r\nBcc: x@evil.cn", "a@b.cn\n", "a@-b.cn",
                                      "a@b-.cn", "a@b..cn", ".a@b.cn", "a.@b.cn", "a..b@c.cn",
                                      "Name <a@b.cn>", "a@b.cn,c@d.cn", "报警@公司.cn", NULL};
    (void)state;
    for(const char *const *g = good; *g; g++)
        assert_int_equal(mcs_mail_addr_valid(*g), 1);
    for(const char *const *b = bad; *b; b++)
        assert_int_equal(mcs_mail_addr_valid(*b), 0);
    {
        char badone[64];
        assert_int_equal(mcs_mail_list_valid("a@b.cn; c@d.cn ,e@f.cn", badone, sizeof(badone)), 1);
        assert_int_equal(mcs_mail_list_valid("a@b.cn; c@d.cn\r\nBcc: x@y.cn", badone,
                                             sizeof(badone)),
                         0);
        assert_string_equal(badone, "c@d.cn\r\nBcc: x@y.cn");
        assert_int_equal(mcs_mail_list_valid(" ; ", badone, sizeof(badone)), 0);
    }
}

/* Robot URLs carry their access token (issue #16, defect 8). */
static void url_masks(void **state)
{
    char out[300];
    (void)state;
    rq_url_mask("https://oapi.dingtalk.com/robot/send?access_token=abc123", out, sizeof(out));
    assert_string_equal(out, "https://oapi.dingtalk.com/robot/send?access_token=******");
    rq_url_mask("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?debug=1&key=k-9#x", out,
                sizeof(out));
    assert_string_equal(out, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?debug=1&key=******#x");
    rq_url_mask("https://open.feishu.cn/open-apis/bot/v2/hook/5f0c-77", out, sizeof(out));
    assert_string_equal(out, "https://open.feishu.cn/open-apis/bot/v2/hook/******");
    rq_url_mask("https://hooks.example.com/in?monkey=1", out, sizeof(out));
    assert_string_equal(out, "https://hooks.example.com/in?monkey=1");
    rq_url_mask("https://oapi.dingtalk.com/robot/send?access_token=abc123", out, 20);
    assert_string_equal(out, "******");
    assert_int_equal(rq_same_origin("https://A.example.com/x?y", "https://a.example.com/z"), 1);
    assert_int_equal(rq_same_origin("https://a.example.com/x", "https://a.example.com:444/x"), 0);
    assert_int_equal(rq_same_origin("https://a.example.com/x", "http://a.example.com/x"), 0);
    assert_int_equal(rq_same_origin("https://a.example.com", "https://a.example.com.evil.cn"), 0);
}

static void commands(void **state)
{
    char err[160];
    cJSON *p;
    const char *kind;
    int calib;
    cJSON *j;
    (void)state;
    j = obj("{\"cmd\":\"debug\",\"duration\":9999}");
    assert_int_equal(rq_command(j, &p, &kind, &calib, err, sizeof(err)), 0);
    assert_string_equal(kind, "debug");
    assert_true(cJSON_GetObjectItem(p, "duration")->valuedouble == 600);
    cJSON_Delete(p);
    cJSON_Delete(j);
    j = obj("{\"cmd\":\"set_rate\",\"interval\":1,\"duration\":30}");
    assert_int_equal(rq_command(j, &p, &kind, &calib, err, sizeof(err)), 0);
    assert_true(cJSON_GetObjectItem(p, "duration")->valuedouble == 30);
    cJSON_Delete(p);
    cJSON_Delete(j);
    j = obj("{\"cmd\":\"calib\",\"k\":0,\"b\":1}");
    assert_int_equal(rq_command(j, &p, &kind, &calib, err, sizeof(err)), MCS_EINVAL);
    assert_int_equal(calib, 1);
    assert_null(p);
    cJSON_Delete(j);
    j = obj("{\"cmd\":\"ota\",\"url\":\"https://x/\\\"y\",\"md5\":\"0123456789abcdef0123456789abcdef\"}");
    assert_int_equal(rq_command(j, &p, &kind, &calib, err, sizeof(err)), MCS_EINVAL);
    cJSON_Delete(j);
}

static void images(void **state)
{
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                                        'I', 'H', 'D', 'R', 0, 0, 1, 0, 0, 0, 0, 200, 8, 2};
    static const unsigned char jpg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 4, 'J', 'F', 0xff, 0xc2, 0, 11,
                                        8, 0, 100, 0, 50, 1, 1, 0x11, 0};
    const char *type;
    long w, h;
    (void)state;
    assert_int_equal(rq_image_info(png, sizeof(png), &type, &w, &h), 0);
    assert_string_equal(type, "png");
    assert_int_equal(w, 256);
    assert_int_equal(h, 200);
    assert_int_equal(rq_image_info(jpg, sizeof(jpg), &type, &w, &h), 0);
    assert_string_equal(type, "jpeg");
    assert_int_equal(w, 50);
    assert_int_equal(h, 100);
    assert_int_equal(rq_image_info((const unsigned char *)"GIF89a....", 10, &type, &w, &h),
                     MCS_EINVAL);
    assert_int_equal(rq_image_info(png, 20, &type, &w, &h), MCS_EINVAL);
    assert_int_equal(rq_image_info(jpg, 12, &type, &w, &h), MCS_EINVAL);
}

static void tokens(void **state)
{
    struct mcs_config cfg;
    char user[65], err[128], *tok, *none;
    enum api_role role;
    long exp, gen;
    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.jwt_secret, sizeof(cfg.jwt_secret), "%s", "0123456789abcdef0123456789abcdef");
    cfg.jwt_expire_hours = 24;
    tok = auth_issue(&cfg, "admin", ROLE_ADMIN, 42, 1700000000);
    assert_non_null(tok);
    assert_int_equal(auth_verify(&cfg, tok, 1700000100, user, &role, &gen, &exp, err, sizeof(err)), 0);
    assert_string_equal(user, "admin");
    assert_int_equal(role, ROLE_ADMIN);
    assert_int_equal(gen, 42);
    assert_int_equal(exp, 1700000000 + 86400);
    /* Expired, issued in the future, another key, altered payload. */
    assert_int_equal(auth_verify(&cfg, tok, 1700086400, user, &role, &gen, &exp, err, sizeof(err)),
                     MCS_EINVAL);
    assert_int_equal(auth_verify(&cfg, tok, 1699990000, user, &role, &gen, &exp, err, sizeof(err)),
                     MCS_EINVAL);
    cfg.jwt_secret[0] = 'X';
    assert_int_equal(auth_verify(&cfg, tok, 1700000100, user, &role, &gen, &exp, err, sizeof(err)),
                     MCS_EINVAL);
    cfg.jwt_secret[0] = '0';
    /* alg=none with the same claims. */
    none = strdup("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.");
    {
        const char *dot = strchr(tok, '.');
        const char *dot2 = strchr(dot + 1, '.');
        size_t n = (size_t)(dot2 - dot - 1), l = strlen(none);
        none = realloc(none, l + n + 2);
        memcpy(none + l, dot + 1, n);
        none[l + n] = '.';
        none[l + n + 1] = '\0';
    }
    assert_int_equal(auth_verify(&cfg, none, 1700000100, user, &role, &gen, &exp, err, sizeof(err)),
                     MCS_EINVAL);
    free(none);
    free(tok);
}

static void throttle(void **state)
{
    struct mcs_config cfg;
    struct api_auth *a;
    long retry;
    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    cfg.login_max_fail_user = 3;
    cfg.login_max_fail_user_all = 6;
    cfg.login_max_fail_ip = 5;
    cfg.login_lock_s = 10;
    a = auth_new(&cfg);
    assert_non_null(a);
    for(int i = 0; i < 3; i++) {
        assert_int_equal(auth_throttled(a, NULL, "1.2.3.4", "bob", 1000, &retry), 0);
        auth_attempt_reserve(a, NULL, "1.2.3.4", "bob", 1000);
    }
    /* bob is locked from 1.2.3.4, not from elsewhere; alice is not. */
    assert_int_equal(auth_throttled(a, NULL, "1.2.3.4", "bob", 1000, &retry), 1);
    assert_int_equal(retry, 10);
    assert_int_equal(auth_throttled(a, NULL, "9.9.9.9", "bob", 1000, &retry), 0);
    assert_int_equal(auth_throttled(a, NULL, "1.2.3.4", "alice", 1000, &retry), 0);
    auth_attempt_reserve(a, NULL, "1.2.3.4", "bob", 12000); /* one more: 20 s */
    assert_int_equal(auth_throttled(a, NULL, "1.2.3.4", "bob", 12000, &retry), 1);
    assert_int_equal(retry, 20);
    /* The global brake: 6 failures of bob from anywhere lock him everywhere. */
    auth_attempt_reserve(a, NULL, "5.5.5.5", "bob", 12000);
    assert_int_equal(auth_throttled(a, NULL, "8.8.8.8", "bob", 12000, &retry), 0);
    auth_attempt_reserve(a, NULL, "6.6.6.6", "bob", 12000);
    assert_int_equal(auth_throttled(a, NULL, "8.8.8.8", "bob", 12000, &retry), 1);
    auth_attempt_reserve(a, NULL, "1.2.3.4", "carol", 12000); /* 5th from this address */
    assert_int_equal(auth_throttled(a, NULL, "1.2.3.4", "dave", 12000, &retry), 1);
    auth_attempt_ok(a, NULL, "8.8.8.8", "bob");
    assert_int_equal(auth_throttled(a, NULL, "8.8.8.8", "bob", 12000, &retry), 0);
    /* A good attempt takes back its own reservation of the address only. */
    auth_attempt_reserve(a, NULL, "7.7.7.7", "erin", 12000);
    auth_attempt_reserve(a, NULL, "7.7.7.7", "erin", 12000);
    auth_attempt_reserve(a, NULL, "7.7.7.7", "frank", 12000);
    auth_attempt_reserve(a, NULL, "7.7.7.7", "gina", 12000);
    auth_attempt_ok(a, NULL, "7.7.7.7", "gina");
    auth_attempt_reserve(a, NULL, "7.7.7.7", "hal", 12000);
    assert_int_equal(auth_throttled(a, NULL, "7.7.7.7", "ivy", 12000, &retry), 0);
    auth_attempt_reserve(a, NULL, "7.7.7.7", "ivy", 12000);
    assert_int_equal(auth_throttled(a, NULL, "7.7.7.7", "jon", 12000, &retry), 1);
    auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(times),    cmocka_unit_test(args),   cmocka_unit_test(bodies),
        cmocka_unit_test(emails),
        cmocka_unit_test(url_masks),
        cmocka_unit_test(commands), cmocka_unit_test(images), cmocka_unit_test(tokens),
        cmocka_unit_test(throttle), cmocka_unit_test(pages),
    };
    if(sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
