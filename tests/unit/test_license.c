/* test_license.c - the signed license file and token (license.c) and the
 * vendor's store (licstore.c): every single changed byte fails, distinct
 * messages for missing/empty/malformed/forged, fingerprints, bindings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "err.h"
#include "config.h"
#include "licguard.h"
#include "license.h"
#include "licstore.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned char pk[1][LIC_PK_LEN], sk[LIC_SK_LEN];
static unsigned char pk2[1][LIC_PK_LEN], sk2[LIC_SK_LEN];
static struct lic_keyring ring = {pk, 1};

static int setup(void **state)
{
    (void)state;
    if(sodium_init() < 0)
        return -1;
    crypto_sign_keypair(pk[0], sk);
    crypto_sign_keypair(pk2[0], sk2);
    return 0;
}

static void sample(struct mcs_license *l)
{
    memset(l, 0, sizeof(*l));
    snprintf(l->id, sizeof(l->id), "L-20261207-0001");
    snprintf(l->key, sizeof(l->key), "MCS-AB12-CD34-EF56");
    snprintf(l->customer, sizeof(l->customer), "某某化工有限公司");
    l->max_devices = 100;
    snprintf(l->issued, sizeof(l->issued), "2026-12-07");
    snprintf(l->expires, sizeof(l->expires), "2027-12-31");
}

static void round_trip(void **state)
{
    struct mcs_license l, p;
    char text[LIC_FILE_MAX + 1], why[256];
    (void)state;
    sample(&l);
    assert_int_equal(license_format(&l, sk, text, sizeof(text)), 0);
    assert_int_equal(license_parse(text, strlen(text), &ring, &p, why, sizeof(why)), 0);
    assert_string_equal(p.key, l.key);
    assert_string_equal(p.customer, "某某化工有限公司");
    assert_int_equal(p.max_devices, 100);
    assert_string_equal(p.expires, "2027-12-31");
    /* Valid through the whole last day (UTC), expired from the next. */
    assert_false(license_expired(&p, 1830297599)); /* 2027-12-31T23:59:59Z */
    assert_true(license_expired(&p, 1830297600));
}

/* The heart of R-LI-1: any one changed byte, anywhere, is refused. */
static void every_changed_byte_fails(void **state)
{
    struct mcs_license l, p;
    char text[LIC_FILE_MAX + 1], why[256];
    static const unsigned char deltas[] = {0x01, 0x20, 0x80, 0xff};
    size_t n;
    int tried = 0;
    (void)state;
    sample(&l);
    assert_int_equal(license_format(&l, sk, text, sizeof(text)), 0);
    n = strlen(text);
    for(size_t i = 0; i < n; i++)
        for(size_t d = 0; d < sizeof(deltas); d++) {
            char m[LIC_FILE_MAX + 1];
            memcpy(m, text, n);
            m[i] = (char)(m[i] ^ deltas[d]);
            int rc = license_parse(m, n, &ring, &p, why, sizeof(why));
            if(rc == 0)
                fail_msg("byte %zu ^ 0x%02x accepted", i, deltas[d]);
            assert_true(rc == MCS_EPARSE || rc == MCS_ECORRUPT);
            tried++;
        }
    assert_int_equal(tried, (int)n * 4);
    /* A byte added or removed at the end fails too. */
    text[n] = '\n';
    assert_int_not_equal(license_parse(text, n + 1, &ring, &p, why, sizeof(why)), 0);
    assert_int_not_equal(license_parse(text, n - 1, &ring, &p, why, sizeof(why)), 0);
}

static void distinct_messages(void **state)
{
    struct mcs_license l, p;
    char text[LIC_FILE_MAX + 1], why[256], path[] = "/tmp/test_license_XXXXXX";
    struct lic_keyring other = {pk2, 1};
    int fd;
    (void)state;
    sample(&l);
    assert_int_equal(license_format(&l, sk, text, sizeof(text)), 0);
    /* another vendor's key: a forgery */
    assert_int_equal(license_parse(text, strlen(text), &other, &p, why, sizeof(why)),
                     MCS_ECORRUPT);
    assert_non_null(strstr(why, "20001"));
    assert_null(strstr(why, "MCS-AB12-CD34-EF56"));
    /* edited value: the same code */
    char *c = strstr(text, "max_devices: 100");
    c[14] = '9';
    assert_int_equal(license_parse(text, strlen(text), &ring, &p, why, sizeof(why)),
                     MCS_ECORRUPT);
    assert_non_null(strstr(why, "altered"));
    assert_int_equal(license_parse("", 0, &ring, &p, why, sizeof(why)), MCS_EPARSE);
    assert_non_null(strstr(why, "empty"));
    assert_int_equal(license_parse("{\"key\":1}", 9, &ring, &p, why, sizeof(why)), MCS_EPARSE);
    assert_non_null(strstr(why, "not an 'MCS-LICENSE 1'"));
    assert_int_equal(license_parse("MCS-LICENSE 1\nid: x\n", 20, &ring, &p, why, sizeof(why)),
                     MCS_EPARSE);
    assert_non_null(strstr(why, "'key'"));
    assert_int_equal(license_load("/nonexistent/license.key", &ring, &p, why, sizeof(why)),
                     MCS_ENOTFOUND);
    assert_non_null(strstr(why, "not found"));
    /* a file too large */
    fd = mkstemp(path);
    assert_true(fd >= 0);
    for(int i = 0; i < 5000; i++)
        assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    assert_int_equal(license_load(path, &ring, &p, why, sizeof(why)), MCS_ETOOBIG);
    unlink(path);
}

static void format_refuses_bad_fields(void **state)
{
    struct mcs_license l;
    char text[LIC_FILE_MAX + 1];
    (void)state;
    sample(&l);
    snprintf(l.key, sizeof(l.key), "MCS-ab12-CD34-EF56");
    assert_int_equal(license_format(&l, sk, text, sizeof(text)), MCS_EINVAL);
    sample(&l);
    snprintf(l.expires, sizeof(l.expires), "2027-02-30");
    assert_int_equal(license_format(&l, sk, text, sizeof(text)), MCS_EINVAL);
    sample(&l);
    snprintf(l.expires, sizeof(l.expires), "2026-01-01"); /* before issued */
    assert_int_equal(license_format(&l, sk, text, sizeof(text)), MCS_EINVAL);
    sample(&l);
    snprintf(l.customer, sizeof(l.customer), "a\nkey: MCS-0000-0000-0000");
    assert_int_equal(license_format(&l, sk, text, sizeof(text)), MCS_EINVAL);
    sample(&l);
    l.max_devices = 0;
    assert_int_equal(license_format(&l, sk, text, sizeof(text)), MCS_EINVAL);
    sample(&l);
    assert_int_equal(license_format(&l, sk, text, 100), MCS_ETOOBIG);
    assert_true(license_key_valid("MCS-0000-ZZZZ-9A9A"));
    assert_false(license_key_valid("MCS-0000-ZZZZ-9A9"));
    char m[LIC_KEY_LEN + 1];
    license_key_mask("MCS-AB12-CD34-EF56", m);
    assert_string_equal(m, "MCS-AB12-****-****");
}

static void token_round_trip_and_tamper(void **state)
{
    struct mcs_lic_token t, p;
    char text[LIC_FILE_MAX + 1], why[256];
    struct mcs_license l;
    (void)state;
    memset(&t, 0, sizeof(t));
    snprintf(t.license_id, sizeof(t.license_id), "L-1");
    snprintf(t.key, sizeof(t.key), "MCS-AB12-CD34-EF56");
    memset(t.fingerprint, 'a', LIC_FP_HEX);
    snprintf(t.nonce, sizeof(t.nonce), "0123456789abcdef0123456789abcdef");
    t.status = LIC_TOK_OTHER_HOST;
    t.issued_at = 1796000000;
    t.expires_at = t.issued_at + 86400;
    assert_int_equal(lic_token_format(&t, sk, text, sizeof(text)), 0);
    assert_int_equal(lic_token_parse(text, strlen(text), &ring, &p, why, sizeof(why)), 0);
    assert_int_equal(p.status, LIC_TOK_OTHER_HOST);
    assert_int_equal(p.expires_at, t.expires_at);
    assert_string_equal(p.nonce, t.nonce);
    /* "other_host" -> "ok" in transit: refused */
    char *s = strstr(text, "status: other_host");
    memcpy(s + 8, "ok\n", 3);
    memmove(s + 11, s + 19, strlen(s + 19) + 1);
    assert_int_equal(lic_token_parse(text, strlen(text), &ring, &p, why, sizeof(why)),
                     MCS_ECORRUPT);
    /* A license is no token and a token no license (different magic). */
    sample(&l);
    assert_int_equal(license_format(&l, sk, text, sizeof(text)), 0);
    assert_int_equal(lic_token_parse(text, strlen(text), &ring, &p, why, sizeof(why)), MCS_EPARSE);
    enum lic_token_status st;
    assert_int_equal(lic_token_status_parse("revoked", &st), 0);
    assert_int_equal(st, LIC_TOK_REVOKED);
    assert_int_equal(lic_token_status_parse("OK", &st), MCS_EINVAL);
}

static void fingerprint(void **state)
{
    char p1[] = "/tmp/test_fp_XXXXXX", p2[] = "/tmp/test_fp_XXXXXX";
    char a[LIC_FP_HEX + 1], b[LIC_FP_HEX + 1], why[256];
    int f1 = mkstemp(p1), f2 = mkstemp(p2);
    (void)state;
    assert_true(f1 >= 0 && f2 >= 0);
    assert_int_equal(write(f1, "0123456789abcdef0123456789abcdef\n", 33), 33);
    assert_int_equal(write(f2, "0123456789abcdef0123456789abcdee", 32), 32);
    assert_int_equal(license_fingerprint(p1, a, why, sizeof(why)), 0);
    assert_int_equal(license_fingerprint(p2, b, why, sizeof(why)), 0);
    assert_int_equal(strlen(a), LIC_FP_HEX);
    assert_string_not_equal(a, b);
    assert_null(strstr(a, "0123456789abcdef"));
    /* white space around the id does not change it */
    assert_int_equal(ftruncate(f2, 0), 0);
    assert_int_equal(pwrite(f2, "  0123456789abcdef0123456789abcdef \r\n", 37, 0), 37);
    assert_int_equal(license_fingerprint(p2, b, why, sizeof(why)), 0);
    assert_string_equal(a, b);
    assert_int_equal(ftruncate(f2, 0), 0);
    assert_int_equal(pwrite(f2, " \n", 2, 0), 2);
    assert_int_equal(license_fingerprint(p2, b, why, sizeof(why)), MCS_EPARSE);
    assert_non_null(strstr(why, "empty"));
    assert_int_equal(license_fingerprint("/nonexistent/machine-id", b, why, sizeof(why)),
                     MCS_ENOTFOUND);
    close(f1);
    close(f2);
    unlink(p1);
    unlink(p2);
}

static void store_bindings(void **state)
{
    char dir[] = "/tmp/test_licstore_XXXXXX", path[128], text[LIC_FILE_MAX + 1];
    struct licstore *s = NULL;
    struct mcs_license l, got;
    enum lic_token_status st;
    const char *fa = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const char *fb = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    int64_t now = 1796000000; /* 2026-11-30 */
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/v.db", dir);
    assert_int_equal(licstore_open(path, &s), 0);
    sample(&l);
    assert_int_equal(license_format(&l, sk, text, sizeof(text)), 0);
    assert_int_equal(licstore_add(s, &l, text), 0);
    assert_int_equal(licstore_add(s, &l, text), MCS_EDUP);
    assert_int_equal(licstore_verify(s, "MCS-0000-0000-0000", fa, now, &st, &got), 0);
    assert_int_equal(st, LIC_TOK_UNKNOWN);
    /* first host binds; a second one is refused until released */
    assert_int_equal(licstore_verify(s, l.key, fa, now, &st, &got), 0);
    assert_int_equal(st, LIC_TOK_OK);
    assert_string_equal(got.id, l.id);
    assert_int_equal(licstore_verify(s, l.key, fb, now, &st, &got), 0);
    assert_int_equal(st, LIC_TOK_OTHER_HOST);
    /* the binding survives a reopen */
    licstore_free(s);
    assert_int_equal(licstore_open(path, &s), 0);
    assert_int_equal(licstore_verify(s, l.key, fb, now, &st, &got), 0);
    assert_int_equal(st, LIC_TOK_OTHER_HOST);
    assert_int_equal(licstore_release(s, l.id), 0);
    assert_int_equal(licstore_verify(s, l.key, fb, now, &st, &got), 0);
    assert_int_equal(st, LIC_TOK_OK);
    /* the last day is still valid, the day after is not */
    assert_int_equal(licstore_verify(s, l.key, fb, 1830297599, &st, &got), 0);
    assert_int_equal(st, LIC_TOK_OK);
    assert_int_equal(licstore_verify(s, l.key, fb, 1830297600, &st, &got), 0);
    assert_int_equal(st, LIC_TOK_EXPIRED);
    assert_int_equal(licstore_revoke(s, l.key), 0);
    assert_int_equal(licstore_verify(s, l.key, fb, now, &st, &got), 0);
    assert_int_equal(st, LIC_TOK_REVOKED);
    assert_int_equal(licstore_revoke(s, "L-none"), MCS_ENOTFOUND);
    assert_int_equal(licstore_release(s, "L-none"), MCS_ENOTFOUND);
    licstore_free(s);
    unlink(path);
    snprintf(path, sizeof(path), "%s/v.db-wal", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/v.db-shm", dir);
    unlink(path);
    rmdir(dir);
}

static int set_facts(struct lic_record *r, int loaded, void *arg)
{
    (void)arg;
    assert_int_equal(loaded, MCS_ENOTFOUND);
    snprintf(r->license_id, sizeof(r->license_id), "L-1");
    r->first_seen = 100;
    r->last_good = 200;
    r->hwm = 300;
    snprintf(r->fail_reason, sizeof(r->fail_reason), "line\nbreak");
    return 0;
}

/* license.state: round trip, any edit is evident, and neither an edited
 * nor a deleted record (while token.json shows a check) buys grace. */
static void state_record(void **state)
{
    char dir[] = "/tmp/test_licstate_XXXXXX", path[256], buf[2048];
    struct mcs_config cfg;
    struct lic_record r;
    FILE *f;
    size_t n;
    (void)state;
    assert_non_null(mkdtemp(dir));
    mcs_config_defaults(&cfg);
    snprintf(cfg.license_file, sizeof(cfg.license_file), "%s/license.key", dir);
    snprintf(cfg.machine_id_file, sizeof(cfg.machine_id_file), "%s/machine-id", dir);
    f = fopen(cfg.machine_id_file, "w");
    fputs("0123456789abcdef0123456789abcdef\n", f);
    fclose(f);
    assert_int_equal(licguard_state_load(&cfg, &r), MCS_ENOTFOUND);
    licguard_record_for(&cfg, &r, MCS_ENOTFOUND, "L-1", 1000);
    assert_int_equal(r.first_seen, 1000); /* a new plant: grace from now */
    assert_int_equal(licguard_state_update(&cfg, set_facts, NULL), 0);
    assert_int_equal(licguard_state_load(&cfg, &r), 0);
    assert_string_equal(r.license_id, "L-1");
    assert_int_equal(r.last_good, 200);
    assert_int_equal(r.hwm, 300);
    assert_string_equal(r.fail_reason, "line break");
    /* one digit of last_good changed: the MAC fails, the record is void */
    licguard_path(&cfg, "license.state", path, sizeof(path));
    f = fopen(path, "r");
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strstr(buf, "last_good=200");
    assert_non_null(p);
    p[10] = '9';
    f = fopen(path, "w");
    fputs(buf, f);
    fclose(f);
    assert_int_equal(licguard_state_load(&cfg, &r), MCS_ECORRUPT);
    assert_int_equal(r.last_good, 0);
    licguard_record_for(&cfg, &r, MCS_ECORRUPT, "L-1", 1000);
    assert_int_equal(r.first_seen, 1);
    /* another host's state file fails too */
    p[10] = '2';
    f = fopen(path, "w");
    fputs(buf, f);
    fclose(f);
    assert_int_equal(licguard_state_load(&cfg, &r), 0);
    f = fopen(cfg.machine_id_file, "w");
    fputs("another-host\n", f);
    fclose(f);
    assert_int_equal(licguard_state_load(&cfg, &r), MCS_ECORRUPT);
    /* deleted while a token shows an earlier check */
    unlink(path);
    licguard_path(&cfg, "token.json", path, sizeof(path));
    f = fopen(path, "w");
    fputs("{}", f);
    fclose(f);
    licguard_record_for(&cfg, &r, MCS_ENOTFOUND, "L-1", 1000);
    assert_int_equal(r.first_seen, 1);
    unlink(path);
    licguard_path(&cfg, "license.lock", path, sizeof(path));
    unlink(path);
    unlink(cfg.machine_id_file);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(every_changed_byte_fails),
        cmocka_unit_test(distinct_messages),
        cmocka_unit_test(format_refuses_bad_fields),
        cmocka_unit_test(token_round_trip_and_tamper),
        cmocka_unit_test(fingerprint),
        cmocka_unit_test(store_bindings),
        cmocka_unit_test(state_record),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
