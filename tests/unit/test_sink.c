/* test_sink.c - the streaming upload over the directory sink: single PUT vs
 * parts, the whole-object MD5 and the multipart ETag rule, and verification
 * that refuses a stored object that differs (issue #10). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "config.h"
#include "err.h"
#include "s3.h"
#include "sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char root[64];

static struct mcs_sink *open_dir(size_t part)
{
    struct mcs_config cfg;
    struct mcs_sink *k = NULL;
    char err[256];
    mcs_config_defaults(&cfg);
    snprintf(cfg.archive_sink, sizeof(cfg.archive_sink), "dir");
    snprintf(cfg.archive_dir, sizeof(cfg.archive_dir), "%s", root);
    assert_int_equal(sink_open(&cfg, NULL, &k, err, sizeof(err)), 0);
    k->part_size = part; /* small parts for the test */
    return k;
}

static void upload(struct mcs_sink *k, const char *key, const unsigned char *data, size_t n,
                   size_t chunk, struct mcs_upload_result *res)
{
    struct mcs_upload *u;
    char err[256];
    assert_int_equal(sink_upload_begin(k, key, &u, err, sizeof(err)), 0);
    for(size_t off = 0; off < n; off += chunk)
        assert_int_equal(sink_upload_write(u, data + off, off + chunk > n ? n - off : chunk, err,
                                           sizeof(err)),
                         0);
    assert_int_equal(sink_upload_finish(u, res, err, sizeof(err)), 0);
}

static void multipart_rule_and_verify(void **state)
{
    struct mcs_sink *k = open_dir(1000);
    unsigned char data[3500], md5s[4 * 16];
    struct mcs_upload_result res;
    char how[16], err[256], hex[33], want[48];
    (void)state;
    for(size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 7 + 3);
    upload(k, "archive/2026/11/x.csv.gz", data, sizeof(data), 333, &res);
    assert_int_equal(res.parts, 4);
    assert_int_equal(res.bytes, 3500);
    s3_md5_hex(data, sizeof(data), hex);
    assert_string_equal(res.md5, hex);
    /* The rule: MD5 of the parts' binary MD5s, then "-N". */
    for(int p = 0; p < 4; p++) {
        char h[33];
        size_t len = p < 3 ? 1000 : 500;
        s3_md5_hex(data + p * 1000, len, h);
        for(int b = 0; b < 16; b++) {
            unsigned v;
            sscanf(h + 2 * b, "%2x", &v);
            md5s[p * 16 + b] = (unsigned char)v;
        }
    }
    s3_md5_hex(md5s, sizeof(md5s), hex);
    snprintf(want, sizeof(want), "%s-4", hex);
    assert_string_equal(res.multipart_etag, want);
    assert_int_equal(sink_verify(k, "archive/2026/11/x.csv.gz", &res, 0, how, err, sizeof(err)), 0);

    /* The stored file changes by one byte: verification refuses it. */
    char path[128];
    snprintf(path, sizeof(path), "%s/archive/2026/11/x.csv.gz", root);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 1234, SEEK_SET);
    fputc(0, f);
    fclose(f);
    assert_int_equal(sink_verify(k, "archive/2026/11/x.csv.gz", &res, 0, how, err, sizeof(err)),
                     MCS_ECORRUPT);
    /* Or is shorter. */
    assert_int_equal(truncate(path, 3000), 0);
    assert_int_equal(sink_verify(k, "archive/2026/11/x.csv.gz", &res, 1, how, err, sizeof(err)),
                     MCS_ECORRUPT);
    sink_free(k);
}

static void one_part_is_a_single_put(void **state)
{
    struct mcs_sink *k = open_dir(1000);
    unsigned char data[1000];
    struct mcs_upload_result res;
    char how[16], err[256];
    (void)state;
    memset(data, 'a', sizeof(data));
    upload(k, "backup/2026/12/mcs_20261201.dump", data, sizeof(data), 1000, &res);
    assert_int_equal(res.parts, 0);
    assert_int_equal(sink_verify(k, "backup/2026/12/mcs_20261201.dump", &res, 1, how, err,
                                 sizeof(err)),
                     0);
    sink_free(k);
}

static void bad_keys_refused(void **state)
{
    struct mcs_sink *k = open_dir(1000);
    struct mcs_upload *u = NULL;
    char err[256];
    (void)state;
    assert_int_equal(sink_upload_begin(k, "../etc/passwd", &u, err, sizeof(err)), MCS_EINVAL);
    assert_int_equal(sink_upload_begin(k, "/abs", &u, err, sizeof(err)), MCS_EINVAL);
    assert_int_equal(sink_upload_begin(k, "a b", &u, err, sizeof(err)), MCS_EINVAL);
    assert_null(u);
    sink_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(multipart_rule_and_verify),
        cmocka_unit_test(one_part_is_a_single_put),
        cmocka_unit_test(bad_keys_refused),
    };
    snprintf(root, sizeof(root), "/tmp/mcs-test-sink-%ld", (long)getpid());
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if(system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
