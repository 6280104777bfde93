/* test_storage_cfg.c - the merge of system_config 'storage' over the .env
 * R2_* values (issue #10): per field, secrets decrypted, failures loud. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "err.h"
#include "secret.h"
#include "storage_cfg.h"

#include <stdio.h>
#include <string.h>

#define HEXKEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static struct mcs_config env;

static void env_init(void)
{
    memset(&env, 0, sizeof(env));
    snprintf(env.r2_endpoint, sizeof(env.r2_endpoint), "http://127.0.0.1:1/");
    snprintf(env.r2_bucket, sizeof(env.r2_bucket), "env-bucket");
    snprintf(env.r2_region, sizeof(env.r2_region), "auto");
    snprintf(env.r2_access_key, sizeof(env.r2_access_key), "ENVAK");
    snprintf(env.r2_secret_key, sizeof(env.r2_secret_key), "ENVSK");
    snprintf(env.archive_sink, sizeof(env.archive_sink), "dir");
}

static void absent_is_env(void **state)
{
    static struct mcs_config out;
    struct mcs_secret_key k = {{0}, 0};
    char used[200], err[200];
    (void)state;
    env_init();
    assert_int_equal(storage_settings_merge(&env, NULL, &k, &out, used, sizeof(used), err,
                                            sizeof(err)),
                     0);
    assert_memory_equal(&out, &env, sizeof(env));
    assert_non_null(strstr(used, "endpoint=env"));
    assert_non_null(strstr(used, "secret_key=env"));
    /* An object whose fields are empty (mcs-api writes "" for cleared). */
    assert_int_equal(storage_settings_merge(&env,
                                            "{\"endpoint\":\"\",\"bucket\":\"\","
                                            "\"secret_key\":\"\",\"prefix\":\"p\"}",
                                            &k, &out, used, sizeof(used), err, sizeof(err)),
                     0);
    assert_memory_equal(&out, &env, sizeof(env));
}

static void stored_fields_win(void **state)
{
    static struct mcs_config out;
    struct mcs_secret_key k;
    char used[200], err[200], enc[256], json[800];
    (void)state;
    env_init();
    assert_int_equal(secret_key_parse(&k, HEXKEY), 0);
    assert_int_equal(secret_encrypt(&k, "DBSECRET", enc, sizeof(enc)), 0);
    snprintf(json, sizeof(json),
             "{\"endpoint\":\"http://127.0.0.1:9000\",\"bucket\":\"db-bucket\","
             "\"region\":\"\",\"access_key\":\"\",\"secret_key\":\"%s\"}",
             enc);
    assert_int_equal(storage_settings_merge(&env, json, &k, &out, used, sizeof(used), err,
                                            sizeof(err)),
                     0);
    assert_string_equal(out.r2_endpoint, "http://127.0.0.1:9000");
    assert_string_equal(out.r2_bucket, "db-bucket");
    assert_string_equal(out.r2_region, "auto");     /* empty: .env */
    assert_string_equal(out.r2_access_key, "ENVAK"); /* empty: .env */
    assert_string_equal(out.r2_secret_key, "DBSECRET");
    assert_string_equal(out.archive_sink, "s3"); /* a stored endpoint selects s3 */
    assert_non_null(strstr(used, "endpoint=system_config"));
    assert_non_null(strstr(used, "region=env"));
    assert_non_null(strstr(used, "secret_key=system_config"));
    assert_null(strstr(used, "DBSECRET"));
    /* Without an endpoint the sink stays what ARCHIVE_SINK says. */
    assert_int_equal(storage_settings_merge(&env, "{\"bucket\":\"other\"}", &k, &out, used,
                                            sizeof(used), err, sizeof(err)),
                     0);
    assert_string_equal(out.archive_sink, "dir");
    assert_string_equal(out.r2_bucket, "other");
}

static void bad_secret_fails(void **state)
{
    static struct mcs_config out;
    struct mcs_secret_key k, k2, none = {{0}, 0};
    char used[200], err[200], enc[256], json[800];
    (void)state;
    env_init();
    assert_int_equal(secret_key_parse(&k, HEXKEY), 0);
    k2 = k;
    k2.k[0] ^= 1;
    assert_int_equal(secret_encrypt(&k, "DBSECRET", enc, sizeof(enc)), 0);
    snprintf(json, sizeof(json), "{\"bucket\":\"db-bucket\",\"secret_key\":\"%s\"}", enc);
    assert_int_equal(storage_settings_merge(&env, json, &k2, &out, used, sizeof(used), err,
                                            sizeof(err)),
                     MCS_ECORRUPT);
    assert_non_null(strstr(err, "secret_key"));
    /* Nothing half-merged, and above all not the .env key silently. */
    assert_string_equal(out.r2_bucket, "env-bucket");
    assert_int_equal(storage_settings_merge(&env, json, &none, &out, used, sizeof(used), err,
                                            sizeof(err)),
                     MCS_EINVAL);
    assert_non_null(strstr(err, "not configured"));
    assert_int_equal(storage_settings_merge(&env, "[1]", &k, &out, used, sizeof(used), err,
                                            sizeof(err)),
                     MCS_EPARSE);
    char big[400];
    memset(big, 'b', 300);
    big[300] = '\0';
    snprintf(json, sizeof(json), "{\"bucket\":\"%s\"}", big);
    assert_int_equal(storage_settings_merge(&env, json, &k, &out, used, sizeof(used), err,
                                            sizeof(err)),
                     MCS_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(absent_is_env),
        cmocka_unit_test(stored_fields_win),
        cmocka_unit_test(bad_secret_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
