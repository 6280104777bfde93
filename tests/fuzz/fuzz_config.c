/* fuzz_config.c - libFuzzer target for configuration text: the .env file of
 * mcsd, mcs and the plugin (config.c, mcs_config_load_env_file), and the
 * plugin's `plugin_opt_<key> <value>` options (authopt.c). The low bit of
 * the first byte chooses: 0 the rest is a .env file, 1 the rest is option
 * lines "key value" ('\n'-separated; a line without a space has no value).
 * Seed files start with '0' or '1'. Touches a memfd of its own, nothing else. */
#include "fuzz_util.h"

#include "addrset.h"
#include "authopt.h"
#include "config.h"
#include "err.h"

#include <ctype.h>
#include <math.h>
#include <strings.h>

static int memfd = -1;
static char memfd_path[64];

/* Every field of the table holds a value its entry allows. */
static void check_table_bounds(const struct mcs_config *cfg)
{
    for(const struct mcs_cfg_entry *e = mcs_cfg_table; e->name; e++) {
        const char *p = (const char *)cfg + e->offset;
        if(e->type == MCS_CFG_STR) {
            size_t len = strnlen(p, e->size);
            FUZZ_CHECK(len < e->size);
            FUZZ_CHECK(len >= (size_t)e->min);
        }
        else if(e->type == MCS_CFG_INT) {
            int v;
            memcpy(&v, p, sizeof(v));
            FUZZ_CHECK(v >= e->min && v <= e->max);
        }
        else {
            double d;
            memcpy(&d, p, sizeof(d));
            FUZZ_CHECK(isfinite(d) && d >= e->min && d <= e->max);
        }
    }
}

static void env_file(const uint8_t *data, size_t n)
{
    struct mcs_config cfg;
    int rc;

    FUZZ_CHECK(ftruncate(memfd, 0) == 0);
    FUZZ_CHECK(pwrite(memfd, data, n, 0) == (ssize_t)n);
    mcs_config_defaults(&cfg);
    rc = mcs_config_load_env_file(&cfg, memfd_path);
    FUZZ_CHECK(rc == 0 || rc == MCS_ECONFIG);
    /* A bad line leaves the field as it was; a good one sets a valid value. */
    check_table_bounds(&cfg);
    rc = mcs_config_validate(&cfg);
    FUZZ_CHECK(rc == 0 || rc == MCS_ECONFIG);
}

/* Options whose values must never appear in an error message (rule 11). */
static int secret_key(const char *k)
{
    static const char *const names[] = {"db_pass", "redis_pass", "vendor_secret", "worker_hash",
                                        "admin_hash"};
    for(size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if(!strcasecmp(k, names[i]))
            return 1;
    return 0;
}

#define MAX_OPTS 64

struct opts {
    struct authopt_kv kv[MAX_OPTS];
    char *line[MAX_OPTS];
    int n;
};

static void opts_split(struct opts *o, const uint8_t *data, size_t n)
{
    struct fuzz_in in = {data, n};

    o->n = 0;
    while(in.n && o->n < MAX_OPTS) {
        /* One line: up to '\n' (a NUL also ends it, as fuzz_str does). */
        const uint8_t *nl = memchr(in.p, '\n', in.n);
        size_t len = nl ? (size_t)(nl - in.p) : in.n;
        struct fuzz_in one = {in.p, len};
        char *s = fuzz_str(&one), *sp;
        in.p += len + (nl ? 1 : 0);
        in.n -= len + (nl ? 1 : 0);
        sp = strchr(s, ' ');
        if(sp)
            *sp = '\0';
        /* env_file names a file to read: not this target's business. */
        if(!strcasecmp(s, "env_file")) {
            free(s);
            continue;
        }
        o->line[o->n] = s;
        o->kv[o->n].key = s;
        o->kv[o->n].value = sp ? sp + 1 : NULL;
        o->n++;
    }
}

static void opts_free(struct opts *o)
{
    for(int i = 0; i < o->n; i++)
        free(o->line[i]);
    o->n = 0;
}

static void plugin_opts(const uint8_t *data, size_t n)
{
    struct opts o;
    struct mcs_auth_opts ao;
    char err[256], *marker[MAX_OPTS] = {0};
    int rc;

    opts_split(&o, data, n);
    memset(err, 0x5a, sizeof(err));
    rc = authopt_parse(&ao, o.kv, o.n, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == MCS_ECONFIG);
    if(rc == 0) {
        check_table_bounds(&ao.cfg);
        FUZZ_CHECK(ao.cfg.vendor_secret[0] != '\0');
        FUZZ_CHECK(!ao.worker_hash[0] || !strncmp(ao.worker_hash, "$argon2id$", 10));
        FUZZ_CHECK(!ao.admin_hash[0] || !strncmp(ao.admin_hash, "$argon2id$", 10));
        FUZZ_CHECK(ao.max_username >= 16 && ao.max_username <= 65535);
        FUZZ_CHECK(ao.max_password >= 16 && ao.max_password <= 65535);
        FUZZ_CHECK(ao.max_clientid >= 16 && ao.max_clientid <= 65535);
        FUZZ_CHECK(ao.verify_per_s >= 1 && ao.full_reload_s >= 5);
        FUZZ_CHECK(!ao.mcsd_hash[0] || !strncmp(ao.mcsd_hash, "$argon2id$", 10));
        FUZZ_CHECK(ao.mcsd_clientid_prefix[0] && strncmp(ao.mcsd_clientid_prefix, "device_", 7));
        FUZZ_CHECK(ao.verify_per_addr_s >= 1);
        {
            /* internal_addresses is parsed at init: accepted or a reason. */
            struct addrset as;
            char aerr[160];
            unsigned char a[16];
            memset(aerr, 0x5a, sizeof(aerr));
            if(addrset_parse(&as, ao.internal_addresses, aerr, sizeof(aerr)) == 0) {
                FUZZ_CHECK(as.n <= ADDRSET_MAX);
                for(size_t i = 0; i < as.n; i++) {
                    FUZZ_CHECK(as.net[i].bits <= 128);
                    memcpy(a, as.net[i].a, 16);
                    FUZZ_CHECK(addrset_has(&as, a)); /* a network holds its own address */
                }
            }
            else {
                FUZZ_CHECK(memchr(aerr, '\0', sizeof(aerr)) != NULL);
            }
        }
    }
    else {
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    }
    authopt_cleanup(&ao);

    /* The same options with every secret value replaced by a marker of the
     * same length (an Argon2id prefix kept): no error may quote a marker. */
    for(int i = 0; i < o.n; i++) {
        const char *v = o.kv[i].value;
        size_t len = v ? strlen(v) : 0, keep = 0;
        if(!secret_key(o.kv[i].key))
            continue;
        if(len >= 10 && !strncmp(v, "$argon2id$", 10))
            keep = 10;
        if(len < keep + 8)
            continue;
        marker[i] = malloc(len + 1);
        FUZZ_CHECK(marker[i] != NULL);
        memcpy(marker[i], v, keep);
        for(size_t k = keep; k < len; k++)
            marker[i][k] = "Zq"[k & 1];
        marker[i][len] = '\0';
        o.kv[i].value = marker[i];
    }
    rc = authopt_parse(&ao, o.kv, o.n, err, sizeof(err));
    for(int i = 0; rc != 0 && i < o.n; i++) {
        const char *m = marker[i] ? marker[i] + (marker[i][0] == '$' ? 10 : 0) : NULL;
        /* A marker the input spells out elsewhere (say in a key) may be quoted. */
        if(m && !memmem(data, n, m, strlen(m)))
            FUZZ_CHECK(strstr(err, m) == NULL);
    }
    authopt_cleanup(&ao);
    for(int i = 0; i < o.n; i++)
        free(marker[i]);
    opts_free(&o);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet_stderr();
    memfd = memfd_create("fuzz-env", 0);
    FUZZ_CHECK(memfd >= 0);
    snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if(size == 0)
        return 0;
    if(data[0] & 1)
        plugin_opts(data + 1, size - 1);
    else
        env_file(data + 1, size - 1);
    return 0;
}
