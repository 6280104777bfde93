/* mcs.c - `mcs`, the admin command line: device registry edits, device
 * credentials and a platform status summary (R-MQ-6, R-PR-2, R-ST-7).
 * Owns its argument checks and the parameterised SQL it sends; of Redis it
 * only reads, and deletes a written device's cache keys. It never tells mcsd
 * anything directly: the NOTIFY trigger on `devices` does (R-PR-2).
 * Thread: single-threaded; at most one PostgreSQL and one Redis connection. */
#include "config.h"
#include "conn.h"
#include "devcred.h"
#include "mcs_user.h"
#include "err.h"
#include "mcs_alarm.h" /* issue #7 */
#include "timeutil.h"

#include <cJSON.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* Exit statuses promised by the usage text. */
enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/* A value read back from Redis (realtime:{sn}) is shown only up to this size;
 * mcsd writes about 200 bytes. */
#define REALTIME_MAX 65536

/* One settable device column. `flag` and `column` are constants: user text
 * only ever travels as a query parameter. */
enum optkind { OPT_STR, OPT_NUM };
struct devopt {
    const char *flag;
    const char *column;
    size_t max; /* strings: most bytes (the schema counts characters) */
    enum optkind kind;
    int empty_ok; /* strings: "" is a meaningful value */
    int nullable; /* numbers: "none" stores NULL (no such alarm) */
    int positive; /* numbers: must be > 0 */
};

static const struct devopt devopts[] = {
    {"--name", "name", 64, OPT_STR, 1, 0, 0},
    {"--location", "location", 128, OPT_STR, 1, 0, 0},
    {"--k", "calib_k", 0, OPT_NUM, 0, 0, 0},
    {"--b", "calib_b", 0, OPT_NUM, 0, 0, 0},
    {"--t-ref", "calib_t_ref", 0, OPT_NUM, 0, 0, 0},
    {"--t-comp", "calib_t_comp", 0, OPT_NUM, 0, 0, 0},
    {"--high", "high_limit", 0, OPT_NUM, 0, 1, 0},
    {"--low", "low_limit", 0, OPT_NUM, 0, 1, 0},
    {"--range-max", "range_max", 0, OPT_NUM, 0, 0, 1},
    {"--unit", "unit", 16, OPT_STR, 0, 0, 0},
};
#define NDEVOPTS (sizeof(devopts) / sizeof(devopts[0]))
/* Indices of the two alarm limits in devopts, for their cross-check. */
enum { OPT_HIGH = 6, OPT_LOW = 7 };

/* What a command line said, after every check that needs no server. */
enum { A_SN = 1, A_JSON = 2, A_DEV = 4 };
struct args {
    const char *sn;
    int json;
    int nset;                  /* how many device options were given */
    int set[NDEVOPTS];         /* option i was given */
    const char *val[NDEVOPTS]; /* its parameter text; NULL stores SQL NULL */
    double num[NDEVOPTS];      /* numbers, for cross-checks */
    const char *raw[NDEVOPTS]; /* as typed, for messages */
    char numtxt[NDEVOPTS][32]; /* numbers re-printed canonically */
};

struct cli {
    struct mcs_config cfg;
    PGconn *pg;
    redisContext *rds;
    int redis_failed;
    char redis_err[256];
};

/* Columns as shown by `device list` / `device show`: JSON key, SQL
 * expression (a constant), table heading and how to type the JSON value. */
enum coltype { CT_STR, CT_NUM, CT_BOOL };
struct col {
    const char *key;
    const char *expr;
    const char *head;
    enum coltype type;
};

#define TS_UTC(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static const struct col list_cols[] = {
    {"sn", "sn", "sn", CT_STR},
    {"name", "name", "name", CT_STR},
    {"location", "location", "location", CT_STR},
    {"enabled", "enabled", "enabled", CT_BOOL},
    {"status", "status", "status", CT_STR},
    {"last_seen", TS_UTC("last_seen"), "last_seen", CT_STR},
    {"calib_k", "calib_k", "k", CT_NUM},
    {"calib_b", "calib_b", "b", CT_NUM},
    {"calib_t_comp", "calib_t_comp", "t_comp", CT_NUM},
    {"high_limit", "high_limit", "high", CT_NUM},
    {"low_limit", "low_limit", "low", CT_NUM},
    {"pkt_recv", "pkt_recv", "pkt_recv", CT_NUM},
    {"pkt_lost", "pkt_lost", "pkt_lost", CT_NUM},
};

static const struct col show_cols[] = {
    {"sn", "sn", "sn", CT_STR},
    {"name", "name", "name", CT_STR},
    {"location", "location", "location", CT_STR},
    {"pos_x", "pos_x", "pos_x", CT_NUM},
    {"pos_y", "pos_y", "pos_y", CT_NUM},
    {"calib_k", "calib_k", "calib_k", CT_NUM},
    {"calib_b", "calib_b", "calib_b", CT_NUM},
    {"calib_t_ref", "calib_t_ref", "calib_t_ref", CT_NUM},
    {"calib_t_comp", "calib_t_comp", "calib_t_comp", CT_NUM},
    {"unit", "unit", "unit", CT_STR},
    {"range_max", "range_max", "range_max", CT_NUM},
    {"high_limit", "high_limit", "high_limit", CT_NUM},
    {"low_limit", "low_limit", "low_limit", CT_NUM},
    {"enabled", "enabled", "enabled", CT_BOOL},
    {"status", "status", "status", CT_STR},
    {"last_seen", TS_UTC("last_seen"), "last_seen", CT_STR},
    {"fw_ver", "fw_ver", "fw_ver", CT_STR},
    {"last_err", "last_err", "last_err", CT_NUM},
    {"bat", "bat", "bat", CT_NUM},
    {"rssi", "rssi", "rssi", CT_NUM},
    {"pkt_recv", "pkt_recv", "pkt_recv", CT_NUM},
    {"pkt_lost", "pkt_lost", "pkt_lost", CT_NUM},
    {"created_at", TS_UTC("created_at"), "created_at", CT_STR},
    {"updated_at", TS_UTC("updated_at"), "updated_at", CT_STR},
};
#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

/* The metrics of an instance that `mcs status` prints, in this order; the
 * non-zero rej_* reasons follow `rejected`. */
static const char *const metric_keys[] = {
    "received",   "accepted", "rejected",       "stored",     "duplicates", "spool_bytes",
    "spool_lost", "db_up",    "mqtt_connected", "lat_p50_ms", "lat_p99_ms",
};

static void usage(FILE *f)
{
    fputs("usage: mcs [--env-file FILE] [--set NAME=VALUE]... COMMAND\n"
          "\n"
          "Device registry (every running mcsd picks a change up at once):\n"
          "  mcs device add SN [OPTIONS]   register a device, print its MQTT credentials\n"
          "  mcs device set SN OPTIONS     change only the given settings\n"
          "  mcs device disable SN         drop its readings from now on\n"
          "  mcs device enable SN          accept its readings again\n"
          "  mcs device del SN             remove it (its stored readings stay)\n"
          "  mcs device list [--json]      all devices\n"
          "  mcs device show SN [--json]   one device with its live state from Redis\n"
          "  mcs device password SN        print its MQTT password (needs VENDOR_SECRET)\n"
          "Platform:\n"
          "  mcs status [--json]           devices, readings of the last minute and\n"
          "                                the metrics of every mcsd instance\n"
          "  mcs hash-password             read a password (one line) on stdin, print its\n"
          "                                Argon2id hash for the broker plugin's\n"
          "                                plugin_opt_worker_hash/admin_hash\n"
          "Alarms (docs/ALARMS.md; secrets stored encrypted with MCS_SECRET_KEY):\n"
          "  mcs config alarm show         the alarm settings, secrets masked\n"
          "  mcs config alarm set KEY JSON       KEY: general, email, dingtalk, feishu,\n"
          "                                wecom, webhook or sms\n"
          "  mcs config alarm set-field KEY FIELD VALUE [--secret]\n"
          "  mcs alarm test CHANNEL [--to R]   send a test message now\n"
          "  mcs alarm ack ID [--user U] [--note N]   acknowledge an alarm\n"
          "  mcs help                      this text\n"
          "\n"
          "SN: 1 to 32 of A-Z a-z 0-9 _ -. Device OPTIONS (--opt VALUE or --opt=VALUE):\n"
          "  --name TEXT        display name, at most 64 bytes\n"
          "  --location TEXT    where it is installed, at most 128 bytes\n"
          "  --k NUM, --b NUM   ppm = k * v_raw + b + t_comp * (temp - t_ref)\n"
          "  --t-ref NUM        reference temperature in deg C (default 25)\n"
          "  --t-comp NUM       temperature coefficient (default 0)\n"
          "  --high NUM|none    HIGH alarm above this value\n"
          "  --low NUM|none     LOW alarm below this value; must be below --high\n"
          "  --range-max NUM    sensor range maximum, > 0 (default 50000)\n"
          "  --unit TEXT        unit (default ppm), at most 16 bytes\n"
          "\n"
          "Configuration as for mcsd (.env, --env-file, environment, --set):\n"
          "DB_HOST DB_PORT DB_NAME DB_USER DB_PASS REDIS_HOST REDIS_PORT REDIS_PASS\n"
          "VENDOR_SECRET.\n"
          "Exit status: 0 ok, 1 runtime error (database unreachable, no such device,\n"
          "duplicate), 2 usage or configuration error.\n",
          f);
}

/* Prints "mcs: <message>" on stderr and returns rc, so that a check reads
 * `rc = fail(MCS_EINVAL, ...); goto out;`. */
__attribute__((format(printf, 2, 3))) static int fail(int rc, const char *fmt, ...)
{
    va_list ap;
    fputs("mcs: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return rc;
}

__attribute__((format(printf, 1, 2))) static void warn(const char *fmt, ...)
{
    va_list ap;
    fputs("mcs: warning: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Copies outside text for an error message: control and non-ASCII bytes
 * (possibly invalid UTF-8) become '?', and
 * it is cut (with "...") to fit buf, so hostile input cannot garble the
 * terminal. n must be at least 8. */
static const char *shown(const char *s, char *buf, size_t n)
{
    size_t i = 0;
    for(; *s && i + 4 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if(ch < 0x20 || ch >= 0x7f)
            buf[i++] = '?';
        else
            buf[i++] = *s;
    }
    if(*s) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

/* Returns 1 when s is valid UTF-8 without control characters (C0, DEL,
 * C1): names end up in tables, e-mails and alarm messages. */
static int text_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while(*p) {
        unsigned c = *p, cp;
        size_t k;
        if(c < 0x20 || c == 0x7f)
            return 0;
        if(c < 0x80) {
            p++;
            continue;
        }
        if(c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1f;
        }
        else if(c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0f;
        }
        else if(c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07;
        }
        else
            return 0;
        /* A NUL ends the loop here before anything past it is read. */
        for(size_t j = 1; j <= k; j++) {
            if((p[j] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[j] & 0x3f);
        }
        if((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
           (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
            return 0;
        p += k + 1;
    }
    return 1;
}

/* Terminal columns taken by UTF-8 text (CJK names are two wide). */
static size_t dwidth(const char *s)
{
    mbstate_t st;
    size_t left = strlen(s), w = 0;
    memset(&st, 0, sizeof(st));
    while(left) {
        wchar_t wc;
        size_t k = mbrtowc(&wc, s, left, &st);
        if(k == (size_t)-1 || k == (size_t)-2 || k == 0) {
            memset(&st, 0, sizeof(st));
            k = 1;
            w++;
        }
        else {
            int cw = wcwidth(wc);
            w += cw < 0 ? 1 : (size_t)cw;
        }
        s += k;
        left -= k;
    }
    return w;
}

static void pad(size_t n)
{
    while(n--)
        fputc(' ', stdout);
}

/* Parses a whole, finite decimal number (no leading blanks, nothing after).
 * Returns 0 or MCS_EINVAL. */
static int parse_num(const char *s, double *out)
{
    char *end = NULL;
    double d;
    /* Decimal notation only: strtod would also take hex, "inf" and blanks. */
    if(!*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return MCS_EINVAL;
    errno = 0;
    d = strtod(s, &end);
    if(errno || end == s || *end || !isfinite(d))
        return MCS_EINVAL;
    *out = d;
    return 0;
}

/* Checks one device option value and stores it in a at index i. */
static int take_devopt(struct args *a, size_t i, const char *value)
{
    const struct devopt *o = &devopts[i];
    char sb[48];
    int rc = 0;

    if(a->set[i]) {
        rc = fail(MCS_EINVAL, "%s given twice", o->flag);
        goto out;
    }
    if(o->kind == OPT_STR) {
        size_t len = strlen(value);
        if(len > o->max) {
            rc = fail(MCS_EINVAL, "%s: %zu bytes, at most %zu allowed", o->flag, len, o->max);
            goto out;
        }
        if(!len && !o->empty_ok) {
            rc = fail(MCS_EINVAL, "%s: must not be empty", o->flag);
            goto out;
        }
        if(!text_ok(value)) {
            rc = fail(MCS_EINVAL, "%s '%s': not valid UTF-8 text or contains control characters",
                      o->flag, shown(value, sb, sizeof(sb)));
            goto out;
        }
        a->val[i] = value;
    }
    else if(o->nullable && !strcmp(value, "none")) {
        a->val[i] = NULL;
    }
    else {
        if(parse_num(value, &a->num[i])) {
            rc = fail(MCS_EINVAL, "%s '%s': not a finite decimal number%s", o->flag,
                      shown(value, sb, sizeof(sb)), o->nullable ? " (or none)" : "");
            goto out;
        }
        if(o->positive && !(a->num[i] > 0)) {
            rc = fail(MCS_EINVAL, "%s '%s': must be greater than 0", o->flag,
                      shown(value, sb, sizeof(sb)));
            goto out;
        }
        /* Re-printed so that what PostgreSQL parses is exactly what we checked
         * (strtod also takes forms such as hex that float8 input does not). */
        snprintf(a->numtxt[i], sizeof(a->numtxt[i]), "%.17g", a->num[i]);
        a->val[i] = a->numtxt[i];
    }
    a->raw[i] = value;
    a->set[i] = 1;
    a->nset++;
out:
    return rc;
}

/* Parses argv[i..] for a command accepting what `allow` says: one SN, --json,
 * device options. Prints the first problem; returns 0 or MCS_EINVAL. */
static int parse_args(int argc, char **argv, int i, unsigned allow, const char *cmd, struct args *a)
{
    int rc = 0, opts_done = 0;
    char sb[48];

    memset(a, 0, sizeof(*a));
    for(; i < argc; i++) {
        const char *arg = argv[i];
        if(!opts_done && !strcmp(arg, "--")) {
            opts_done = 1;
            continue;
        }
        if(!opts_done && !strncmp(arg, "--", 2)) {
            const char *eq = strchr(arg, '=');
            size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
            size_t k = NDEVOPTS;
            const char *value = NULL;

            if(flen == 6 && !strncmp(arg, "--json", 6) && (allow & A_JSON)) {
                if(eq) {
                    rc = fail(MCS_EINVAL, "--json takes no value");
                    goto out;
                }
                a->json = 1;
                continue;
            }
            if(allow & A_DEV)
                for(k = 0; k < NDEVOPTS; k++)
                    if(strlen(devopts[k].flag) == flen && !strncmp(arg, devopts[k].flag, flen))
                        break;
            if(k == NDEVOPTS && (!strcmp(arg, "--set") || !strcmp(arg, "--env-file"))) {
                /* mcs_config_load leaves these only when their value is missing. */
                rc = fail(MCS_EINVAL, "option %s needs a value", arg);
                goto out;
            }
            if(k == NDEVOPTS) {
                rc = fail(MCS_EINVAL, "unknown option '%s' for `mcs %s` (see `mcs --help`)",
                          shown(arg, sb, sizeof(sb)), cmd);
                goto out;
            }
            /* A following "--x" is taken for a forgotten value, not a value;
             * negative numbers have a single dash. */
            if(eq)
                value = eq + 1;
            else if(i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                value = argv[++i];
            else {
                rc = fail(MCS_EINVAL, "option %s needs a value", devopts[k].flag);
                goto out;
            }
            rc = take_devopt(a, k, value);
            if(rc)
                goto out;
            continue;
        }
        if(!(allow & A_SN) || a->sn) {
            rc = fail(MCS_EINVAL, "unexpected argument '%s' for `mcs %s` (see `mcs --help`)",
                      shown(arg, sb, sizeof(sb)), cmd);
            goto out;
        }
        a->sn = arg;
    }
    if(allow & A_SN) {
        if(!a->sn) {
            rc = fail(MCS_EINVAL, "`mcs %s` needs a serial number (see `mcs --help`)", cmd);
            goto out;
        }
        if(!mcs_sn_valid(a->sn, strlen(a->sn))) {
            rc = fail(MCS_EINVAL, "invalid serial number '%s': 1 to 32 of A-Z a-z 0-9 _ -",
                      shown(a->sn, sb, sizeof(sb)));
            goto out;
        }
    }
    if(a->set[OPT_LOW] && a->set[OPT_HIGH] && a->val[OPT_LOW] && a->val[OPT_HIGH] &&
       !(a->num[OPT_LOW] < a->num[OPT_HIGH])) {
        rc =
            fail(MCS_EINVAL, "--low %s must be below --high %s", a->raw[OPT_LOW], a->raw[OPT_HIGH]);
        goto out;
    }
out:
    return rc;
}

/* Appends to a statement being built from constant pieces. */
__attribute__((format(printf, 4, 5))) static int sql_cat(char *buf, size_t n, size_t *len,
                                                         const char *fmt, ...)
{
    va_list ap;
    int k;
    va_start(ap, fmt);
    k = vsnprintf(buf + *len, n - *len, fmt, ap);
    va_end(ap);
    if(k < 0 || (size_t)k >= n - *len)
        return MCS_ETOOBIG;
    *len += (size_t)k;
    return 0;
}

static int db_open(struct cli *c)
{
    char err[512];
    if(c->pg)
        return 0;
    c->pg = mcs_pg_connect(&c->cfg, "mcs", err, sizeof(err));
    if(!c->pg)
        return fail(MCS_EDB, "cannot connect to PostgreSQL (%s:%d, database %s): %s",
                    c->cfg.db_host, c->cfg.db_port, c->cfg.db_name, err);
    return 0;
}

/* Runs one parameterised statement. Returns 0 with *res set (the caller
 * PQclears it), MCS_EDUP on a unique violation without printing (the caller
 * words it), or MCS_EDB after printing the server's reason. */
static int pg_query(struct cli *c, const char *sql, int n, const char *const *vals, PGresult **res)
{
    PGresult *r = PQexecParams(c->pg, sql, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    const char *state, *msg;
    char line[512], *nl;
    int rc = 0;

    if(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        *res = r;
        r = NULL;
        goto out;
    }
    rc = MCS_EDB;
    state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if(!msg)
        msg = PQerrorMessage(c->pg);
    snprintf(line, sizeof(line), "%s", msg);
    nl = strchr(line, '\n');
    if(nl)
        *nl = '\0';
    if(state && !strcmp(state, "23505"))
        rc = MCS_EDUP;
    else if(state && !strcmp(state, "42P01"))
        fail(rc, "schema missing: start mcsd once or run `mcsd --migrate` (%s)", line);
    else if(state && !strcmp(state, "42703"))
        fail(rc, "schema out of date: start the current mcsd once or run `mcsd --migrate` (%s)",
             line);
    else
        fail(rc, "database: %s", line);
out:
    PQclear(r);
    return rc;
}

static int pg_simple(struct cli *c, const char *sql)
{
    PGresult *r = NULL;
    int rc = pg_query(c, sql, 0, NULL, &r);
    PQclear(r);
    return rc;
}

/* freeReplyObject that accepts NULL whatever the hiredis version. */
static void reply_free(void *rep)
{
    if(rep)
        freeReplyObject(rep);
}

/* Connects to Redis on first use; on failure remembers why (the caller
 * decides how loud to be) and returns NULL from then on. */
static redisContext *redis_get(struct cli *c)
{
    if(!c->rds && !c->redis_failed) {
        c->rds = mcs_redis_connect(&c->cfg, c->redis_err, sizeof(c->redis_err));
        if(!c->rds)
            c->redis_failed = 1;
    }
    return c->rds;
}

/* Runs one command; returns the reply or NULL with the reason in c->redis_err
 * (an error reply counts as failure and is freed). */
__attribute__((format(printf, 2, 3))) static redisReply *redis_cmd(struct cli *c, const char *fmt,
                                                                   ...)
{
    redisContext *r = redis_get(c);
    redisReply *rep;
    va_list ap;

    if(!r)
        return NULL;
    va_start(ap, fmt);
    rep = redisvCommand(r, fmt, ap);
    va_end(ap);
    if(!rep) {
        snprintf(c->redis_err, sizeof(c->redis_err), "%s", r->errstr[0] ? r->errstr : "no reply");
        return NULL;
    }
    if(rep->type == REDIS_REPLY_ERROR) {
        snprintf(c->redis_err, sizeof(c->redis_err), "%s", rep->str ? rep->str : "error reply");
        reply_free(rep);
        return NULL;
    }
    return rep;
}

/* Deletes the cache keys of a device just written (R-ST-7 cache-aside), and
 * on removal its live keys too. Best effort: mcsd reloads the device through
 * the database notification anyway, so a failure is only a warning. */
static void cache_invalidate(struct cli *c, const char *sn, int removed)
{
    redisReply *rep;
    if(removed)
        rep = redis_cmd(c, "DEL device:%s calib:%s online:%s realtime:%s", sn, sn, sn, sn);
    else
        rep = redis_cmd(c, "DEL device:%s calib:%s", sn, sn);
    if(!rep)
        warn("Redis cache keys of %s not cleared (%s); running mcsd instances still reload "
             "the device from PostgreSQL",
             sn, c->redis_err);
    reply_free(rep);
}

/* Adds item to a JSON object or array; frees it when that fails. */
static int jadd(cJSON *to, const char *key, cJSON *item)
{
    cJSON_bool ok;
    if(!item)
        return MCS_ENOMEM;
    ok = key ? cJSON_AddItemToObject(to, key, item) : cJSON_AddItemToArray(to, item);
    if(!ok) {
        cJSON_Delete(item);
        return MCS_ENOMEM;
    }
    return 0;
}

/* A number from Redis or PostgreSQL text; text that is not one stays text. */
static cJSON *jnum_or_str(const char *s)
{
    double d;
    if(!parse_num(s, &d))
        return cJSON_CreateNumber(d);
    return cJSON_CreateString(s);
}

static cJSON *jcell(const PGresult *r, int row, int i, enum coltype t)
{
    const char *v;
    if(PQgetisnull(r, row, i))
        return cJSON_CreateNull();
    v = PQgetvalue(r, row, i);
    if(t == CT_BOOL)
        return cJSON_CreateBool(v[0] == 't');
    if(t == CT_NUM)
        return jnum_or_str(v);
    return cJSON_CreateString(v);
}

static const char *tcell(const PGresult *r, int row, int i, enum coltype t)
{
    if(PQgetisnull(r, row, i))
        return "-";
    if(t == CT_BOOL)
        return PQgetvalue(r, row, i)[0] == 't' ? "yes" : "no";
    return PQgetvalue(r, row, i);
}

static int print_json(cJSON *j)
{
    char *s = cJSON_Print(j);
    if(!s)
        return MCS_ENOMEM;
    puts(s);
    cJSON_free(s);
    return 0;
}

/* SELECT <cols> FROM devices [WHERE sn = $1] ORDER BY sn, into buf. */
static int select_sql(char *buf, size_t n, const struct col *cols, size_t ncols, int one)
{
    size_t len = 0;
    int rc = sql_cat(buf, n, &len, "SELECT ");
    for(size_t i = 0; !rc && i < ncols; i++)
        rc = sql_cat(buf, n, &len, "%s%s", i ? ", " : "", cols[i].expr);
    if(!rc)
        rc = sql_cat(buf, n, &len, " FROM devices%s ORDER BY sn", one ? " WHERE sn = $1" : "");
    return rc;
}

static int cmd_add(struct cli *c, const struct args *a)
{
    const char *vals[NDEVOPTS + 1];
    char sql[1024], pw[17];
    size_t len = 0;
    int n = 1, rc;
    PGresult *r = NULL;

    vals[0] = a->sn;
    rc = sql_cat(sql, sizeof(sql), &len, "INSERT INTO devices (sn");
    for(size_t i = 0; !rc && i < NDEVOPTS; i++)
        if(a->set[i])
            rc = sql_cat(sql, sizeof(sql), &len, ", %s", devopts[i].column);
    if(!rc)
        rc = sql_cat(sql, sizeof(sql), &len, ") VALUES ($1");
    for(size_t i = 0; !rc && i < NDEVOPTS; i++)
        if(a->set[i]) {
            vals[n++] = a->val[i];
            rc = sql_cat(sql, sizeof(sql), &len, ", $%d", n);
        }
    if(!rc)
        rc = sql_cat(sql, sizeof(sql), &len, ")");
    if(rc)
        goto out;
    rc = db_open(c);
    if(rc)
        goto out;
    rc = pg_query(c, sql, n, vals, &r);
    if(rc == MCS_EDUP)
        fail(rc, "device %s already exists (change it with `mcs device set`)", a->sn);
    if(rc)
        goto out;
    printf("device %s added\n", a->sn);
    printf("mqtt username: device_%s\n", a->sn);
    printf("mqtt client id: device_%s\n", a->sn);
    if(!c->cfg.vendor_secret[0])
        warn("VENDOR_SECRET is not set, so no MQTT password is shown; set it to the value "
             "the broker uses and run `mcs device password %s`",
             a->sn);
    else if(!mcs_device_password(a->sn, c->cfg.vendor_secret, pw))
        printf("mqtt password: %s\n", pw);
    fflush(stdout);
    cache_invalidate(c, a->sn, 0);
out:
    PQclear(r);
    return rc;
}

static int cmd_set(struct cli *c, const struct args *a)
{
    const char *vals[NDEVOPTS + 1];
    char sql[1024];
    size_t len = 0;
    int n = 1, rc, in_tx = 0;
    PGresult *r = NULL;

    if(!a->nset) {
        rc = fail(MCS_EINVAL,
                  "`mcs device set %s` needs at least one option to change "
                  "(see `mcs --help`)",
                  a->sn);
        goto out;
    }
    vals[0] = a->sn;
    rc = sql_cat(sql, sizeof(sql), &len, "UPDATE devices SET ");
    for(size_t i = 0; !rc && i < NDEVOPTS; i++)
        if(a->set[i]) {
            vals[n++] = a->val[i];
            rc = sql_cat(sql, sizeof(sql), &len, "%s = $%d, ", devopts[i].column, n);
        }
    if(!rc)
        rc = sql_cat(sql, sizeof(sql), &len,
                     "updated_at = now() WHERE sn = $1 RETURNING low_limit, high_limit");
    if(rc)
        goto out;
    rc = db_open(c);
    if(rc)
        goto out;
    /* One transaction, so that a change leaving LOW at or above HIGH (one of
     * the two given, the other already stored) is never visible to mcsd. */
    rc = pg_simple(c, "BEGIN");
    if(rc)
        goto out;
    in_tx = 1;
    rc = pg_query(c, sql, n, vals, &r);
    if(rc)
        goto out;
    if(PQntuples(r) == 0) {
        rc = fail(MCS_ENOTFOUND, "no device %s", a->sn);
        goto out;
    }
    if((a->set[OPT_LOW] || a->set[OPT_HIGH]) && !PQgetisnull(r, 0, 0) && !PQgetisnull(r, 0, 1) &&
       !(strtod(PQgetvalue(r, 0, 0), NULL) < strtod(PQgetvalue(r, 0, 1), NULL))) {
        /* Both given and crossed was refused by parse_args, so one was. */
        if(a->set[OPT_LOW])
            rc = fail(MCS_EINVAL,
                      "--low %s must be below the high limit %s of device %s; "
                      "nothing changed",
                      PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), a->sn);
        else
            rc = fail(MCS_EINVAL,
                      "--high %s must be above the low limit %s of device %s; "
                      "nothing changed",
                      PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 0), a->sn);
        goto out;
    }
    rc = pg_simple(c, "COMMIT");
    in_tx = 0;
    if(rc)
        goto out;
    printf("device %s updated\n", a->sn);
    fflush(stdout);
    cache_invalidate(c, a->sn, 0);
out:
    PQclear(r);
    if(in_tx)
        pg_simple(c, "ROLLBACK");
    return rc;
}

static int set_enabled(struct cli *c, const struct args *a, int on)
{
    const char *vals[2] = {a->sn, on ? "true" : "false"};
    PGresult *r = NULL;
    int rc = db_open(c);
    if(rc)
        goto out;
    rc = pg_query(c, "UPDATE devices SET enabled = $2, updated_at = now() WHERE sn = $1", 2, vals,
                  &r);
    if(rc)
        goto out;
    if(!strcmp(PQcmdTuples(r), "0")) {
        rc = fail(MCS_ENOTFOUND, "no device %s", a->sn);
        goto out;
    }
    printf("device %s %s\n", a->sn, on ? "enabled" : "disabled");
    fflush(stdout);
    cache_invalidate(c, a->sn, 0);
out:
    PQclear(r);
    return rc;
}

static int cmd_enable(struct cli *c, const struct args *a)
{
    return set_enabled(c, a, 1);
}

static int cmd_disable(struct cli *c, const struct args *a)
{
    return set_enabled(c, a, 0);
}

static int cmd_del(struct cli *c, const struct args *a)
{
    const char *vals[1] = {a->sn};
    PGresult *r = NULL;
    int rc = db_open(c);
    if(rc)
        goto out;
    rc = pg_query(c, "DELETE FROM devices WHERE sn = $1", 1, vals, &r);
    if(rc)
        goto out;
    if(!strcmp(PQcmdTuples(r), "0")) {
        rc = fail(MCS_ENOTFOUND, "no device %s", a->sn);
        goto out;
    }
    printf("device %s deleted\n", a->sn);
    fflush(stdout);
    cache_invalidate(c, a->sn, 1);
out:
    PQclear(r);
    return rc;
}

static int cmd_list(struct cli *c, const struct args *a)
{
    char sql[1024];
    size_t w[NCOLS(list_cols)];
    PGresult *r = NULL;
    cJSON *arr = NULL;
    int rc, rows;

    rc = select_sql(sql, sizeof(sql), list_cols, NCOLS(list_cols), 0);
    if(!rc)
        rc = db_open(c);
    if(!rc)
        rc = pg_query(c, sql, 0, NULL, &r);
    if(rc)
        goto out;
    rows = PQntuples(r);
    if(a->json) {
        arr = cJSON_CreateArray();
        rc = arr ? 0 : MCS_ENOMEM;
        for(int row = 0; !rc && row < rows; row++) {
            cJSON *o = cJSON_CreateObject();
            rc = jadd(arr, NULL, o);
            for(size_t i = 0; !rc && i < NCOLS(list_cols); i++)
                rc = jadd(o, list_cols[i].key, jcell(r, row, (int)i, list_cols[i].type));
        }
        if(!rc)
            rc = print_json(arr);
        goto out;
    }
    for(size_t i = 0; i < NCOLS(list_cols); i++) {
        w[i] = dwidth(list_cols[i].head);
        for(int row = 0; row < rows; row++) {
            size_t cw = dwidth(tcell(r, row, (int)i, list_cols[i].type));
            if(cw > w[i])
                w[i] = cw;
        }
    }
    for(int row = -1; row < rows; row++) {
        for(size_t i = 0; i < NCOLS(list_cols); i++) {
            const char *s = row < 0 ? list_cols[i].head : tcell(r, row, (int)i, list_cols[i].type);
            fputs(s, stdout);
            if(i + 1 < NCOLS(list_cols))
                pad(w[i] - dwidth(s) + 2);
        }
        fputc('\n', stdout);
    }
    if(!rows)
        fputs("(no devices; add one with `mcs device add SN`)\n", stdout);
out:
    cJSON_Delete(arr);
    PQclear(r);
    return rc;
}

/* Live state of one device from Redis for `device show`. */
struct live {
    int ok; /* Redis answered */
    int online;
    long long ttl;  /* seconds left of online:{sn}, -1 none */
    redisReply *rt; /* GET realtime:{sn}, a string or nil */
};

static void live_read(struct cli *c, const char *sn, struct live *l)
{
    redisReply *rep = NULL;
    memset(l, 0, sizeof(*l));
    l->ttl = -1;
    rep = redis_cmd(c, "EXISTS online:%s", sn);
    if(!rep)
        goto out;
    l->online = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
    reply_free(rep);
    rep = redis_cmd(c, "TTL online:%s", sn);
    if(!rep)
        goto out;
    if(rep->type == REDIS_REPLY_INTEGER && rep->integer >= 0)
        l->ttl = rep->integer;
    l->rt = redis_cmd(c, "GET realtime:%s", sn);
    if(!l->rt)
        goto out;
    l->ok = 1;
out:
    reply_free(rep);
    if(!l->ok)
        warn("Redis unreachable (%s): online state and latest reading unknown", c->redis_err);
}

static int cmd_show(struct cli *c, const struct args *a)
{
    char sql[1024];
    const char *vals[1] = {a->sn};
    PGresult *r = NULL;
    cJSON *o = NULL, *rt = NULL;
    struct live l;
    double recv, lost, loss = -1;
    int rc, ircv = -1, ilost = -1;

    memset(&l, 0, sizeof(l));
    rc = select_sql(sql, sizeof(sql), show_cols, NCOLS(show_cols), 1);
    if(!rc)
        rc = db_open(c);
    if(!rc)
        rc = pg_query(c, sql, 1, vals, &r);
    if(rc)
        goto out;
    if(PQntuples(r) == 0) {
        rc = fail(MCS_ENOTFOUND, "no device %s", a->sn);
        goto out;
    }
    for(size_t i = 0; i < NCOLS(show_cols); i++) {
        if(!strcmp(show_cols[i].key, "pkt_recv"))
            ircv = (int)i;
        if(!strcmp(show_cols[i].key, "pkt_lost"))
            ilost = (int)i;
    }
    /* Loss as a share of what the device sent: lost / (received + lost). */
    recv = strtod(PQgetvalue(r, 0, ircv), NULL);
    lost = strtod(PQgetvalue(r, 0, ilost), NULL);
    if(recv + lost > 0)
        loss = 100.0 * lost / (recv + lost);
    live_read(c, a->sn, &l);
    if(l.ok && l.rt->type == REDIS_REPLY_STRING && l.rt->len <= REALTIME_MAX)
        rt = cJSON_ParseWithLength(l.rt->str, l.rt->len);

    if(a->json) {
        o = cJSON_CreateObject();
        rc = o ? 0 : MCS_ENOMEM;
        for(size_t i = 0; !rc && i < NCOLS(show_cols); i++)
            rc = jadd(o, show_cols[i].key, jcell(r, 0, (int)i, show_cols[i].type));
        if(!rc)
            rc = jadd(o, "packet_loss_pct",
                      loss < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(loss));
        if(!rc)
            rc = jadd(o, "online", l.ok ? cJSON_CreateBool(l.online) : cJSON_CreateNull());
        if(!rc)
            rc = jadd(o, "online_ttl_s",
                      l.ok && l.online && l.ttl >= 0 ? cJSON_CreateNumber((double)l.ttl)
                                                     : cJSON_CreateNull());
        if(!rc) {
            rc = jadd(o, "realtime", rt ? rt : cJSON_CreateNull());
            rt = NULL; /* owned by o now, or freed by jadd */
        }
        if(!rc)
            rc = print_json(o);
        goto out;
    }
    for(size_t i = 0; i < NCOLS(show_cols); i++) {
        printf("%-15s %s\n", show_cols[i].head, tcell(r, 0, (int)i, show_cols[i].type));
    }
    if(loss < 0)
        printf("%-15s -\n", "packet_loss");
    else
        printf("%-15s %.2f %%\n", "packet_loss", loss);
    if(!l.ok)
        printf("%-15s unknown (Redis unreachable)\n", "online");
    else if(l.online && l.ttl >= 0)
        printf("%-15s yes (expires in %lld s)\n", "online", l.ttl);
    else
        printf("%-15s %s\n", "online", l.online ? "yes" : "no");
    if(rt) {
        char *s = cJSON_PrintUnformatted(rt);
        if(!s) {
            rc = MCS_ENOMEM;
            goto out;
        }
        printf("%-15s %s\n", "realtime", s);
        cJSON_free(s);
    }
    else if(l.ok && l.rt->type == REDIS_REPLY_STRING)
        printf("%-15s (not JSON, %zu bytes)\n", "realtime", l.rt->len);
    else
        printf("%-15s -\n", "realtime");
out:
    cJSON_Delete(rt);
    cJSON_Delete(o);
    reply_free(l.rt);
    PQclear(r);
    return rc;
}

static int cmd_password(struct cli *c, const struct args *a)
{
    const char *vals[1] = {a->sn};
    PGresult *r = NULL;
    char pw[17];
    int rc = 0;

    if(!c->cfg.vendor_secret[0]) {
        rc = fail(MCS_ECONFIG, "VENDOR_SECRET is not set: device passwords are derived from it "
                               "(set it to the value the broker uses)");
        goto out;
    }
    rc = db_open(c);
    if(!rc)
        rc = pg_query(c, "SELECT 1 FROM devices WHERE sn = $1", 1, vals, &r);
    if(rc)
        goto out;
    if(PQntuples(r) == 0) {
        rc = fail(MCS_ENOTFOUND, "no device %s (add it with `mcs device add %s`)", a->sn, a->sn);
        goto out;
    }
    rc = mcs_device_password(a->sn, c->cfg.vendor_secret, pw);
    if(rc)
        goto out;
    printf("%s\n", pw);
out:
    PQclear(r);
    return rc;
}

/* `mcs status` gathers into this, then prints text or JSON. */
struct status {
    int db_ok, schema_ok, redis_ok;
    long long total, enabled, online, readings;
    redisReply *ids;      /* SMEMBERS mcs:instances */
    redisReply **metrics; /* HGETALL per id, same order; NULL entries */
    size_t nids;
};

static int cmp_reply_str(const void *x, const void *y)
{
    const redisReply *a = *(const redisReply *const *)x, *b = *(const redisReply *const *)y;
    return strcmp(a->str ? a->str : "", b->str ? b->str : "");
}

static void status_db(struct cli *c, struct status *s)
{
    PGresult *r = NULL;
    if(db_open(c))
        return;
    s->db_ok = 1;
    if(pg_query(c, "SELECT count(*), count(*) FILTER (WHERE enabled) FROM devices", 0, NULL, &r))
        goto out;
    s->total = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    s->enabled = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    r = NULL;
    if(pg_query(c, "SELECT count(*) FROM sensor_data WHERE time > now() - interval '1 minute'", 0,
                NULL, &r))
        goto out;
    s->readings = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    s->schema_ok = 1;
out:
    PQclear(r);
}

static void status_redis(struct cli *c, struct status *s)
{
    redisReply *rep = NULL;
    char cursor[32] = "0";

    /* SCAN, never KEYS: a big keyspace must not block Redis for everyone. */
    do {
        rep = redis_cmd(c, "SCAN %s MATCH online:* COUNT 1000", cursor);
        if(!rep)
            goto out;
        if(rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
           rep->element[0]->type != REDIS_REPLY_STRING ||
           rep->element[1]->type != REDIS_REPLY_ARRAY) {
            snprintf(c->redis_err, sizeof(c->redis_err), "unexpected SCAN reply");
            goto out;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        s->online += (long long)rep->element[1]->elements;
        reply_free(rep);
        rep = NULL;
    } while(strcmp(cursor, "0") != 0);

    s->ids = redis_cmd(c, "SMEMBERS mcs:instances");
    if(!s->ids)
        goto out;
    if(s->ids->type != REDIS_REPLY_ARRAY) {
        snprintf(c->redis_err, sizeof(c->redis_err), "mcs:instances is not a set");
        goto out;
    }
    s->nids = s->ids->elements;
    if(s->nids > 1) /* an empty reply has no element array at all */
        qsort(s->ids->element, s->nids, sizeof(redisReply *), cmp_reply_str);
    s->metrics = calloc(s->nids ? s->nids : 1, sizeof(redisReply *));
    if(!s->metrics) {
        snprintf(c->redis_err, sizeof(c->redis_err), "out of memory");
        s->nids = 0;
        goto out;
    }
    for(size_t i = 0; i < s->nids; i++) {
        const redisReply *id = s->ids->element[i];
        if(id->type != REDIS_REPLY_STRING)
            continue;
        s->metrics[i] = redis_cmd(c, "HGETALL mcs:metrics:%s", id->str);
        if(!s->metrics[i])
            goto out;
    }
    s->redis_ok = 1;
out:
    reply_free(rep);
}

/* Value of field key in an HGETALL reply, or NULL. */
static const char *hget(const redisReply *h, const char *key)
{
    if(!h || h->type != REDIS_REPLY_ARRAY)
        return NULL;
    for(size_t i = 0; i + 1 < h->elements; i += 2)
        if(h->element[i]->str && !strcmp(h->element[i]->str, key) && h->element[i + 1]->str)
            return h->element[i + 1]->str;
    return NULL;
}

static int is_zero(const char *v)
{
    double d;
    return !parse_num(v, &d) && d == 0;
}

/* Age in ms of a metrics hash by its updated_ms, or -1 when unknown. */
static long long metrics_age(const redisReply *h, long long now)
{
    const char *u = hget(h, "updated_ms");
    double d;
    if(!u || parse_num(u, &d))
        return -1;
    return now - (long long)d > 0 ? now - (long long)d : 0;
}

static int status_json(const struct status *s, long long stale_ms, long long now,
                       const char *redis_err)
{
    cJSON *o = cJSON_CreateObject(), *dev = NULL, *arr = NULL;
    int rc = o ? 0 : MCS_ENOMEM;

    if(!rc)
        rc = jadd(o, "db",
                  cJSON_CreateString(!s->db_ok       ? "unreachable"
                                     : !s->schema_ok ? "error"
                                                     : "ok"));
    if(!rc)
        rc = jadd(o, "redis", cJSON_CreateString(s->redis_ok ? "ok" : redis_err));
    if(!rc) {
        dev = cJSON_CreateObject();
        rc = jadd(o, "devices", dev);
    }
    if(!rc)
        rc = jadd(dev, "total",
                  s->schema_ok ? cJSON_CreateNumber((double)s->total) : cJSON_CreateNull());
    if(!rc)
        rc = jadd(dev, "enabled",
                  s->schema_ok ? cJSON_CreateNumber((double)s->enabled) : cJSON_CreateNull());
    if(!rc)
        rc = jadd(dev, "online",
                  s->redis_ok ? cJSON_CreateNumber((double)s->online) : cJSON_CreateNull());
    if(!rc)
        rc = jadd(o, "readings_last_minute",
                  s->schema_ok ? cJSON_CreateNumber((double)s->readings) : cJSON_CreateNull());
    if(!rc) {
        arr = s->redis_ok ? cJSON_CreateArray() : cJSON_CreateNull();
        rc = jadd(o, "instances", arr);
    }
    for(size_t i = 0; !rc && s->redis_ok && i < s->nids; i++) {
        const redisReply *h = s->metrics[i];
        cJSON *inst, *m = NULL;
        long long age = metrics_age(h, now);
        if(s->ids->element[i]->type != REDIS_REPLY_STRING)
            continue;
        inst = cJSON_CreateObject();
        rc = jadd(arr, NULL, inst);
        if(!rc)
            rc = jadd(inst, "id", cJSON_CreateString(s->ids->element[i]->str));
        if(!rc)
            rc = jadd(inst, "age_ms",
                      age < 0 ? cJSON_CreateNull() : cJSON_CreateNumber((double)age));
        if(!rc)
            rc = jadd(inst, "stale", cJSON_CreateBool(age < 0 || age > stale_ms));
        if(!rc) {
            m = cJSON_CreateObject();
            rc = jadd(inst, "metrics", m);
        }
        for(size_t k = 0; !rc && h && k + 1 < h->elements; k += 2)
            if(h->element[k]->str && h->element[k + 1]->str)
                rc = jadd(m, h->element[k]->str, jnum_or_str(h->element[k + 1]->str));
    }
    if(!rc)
        rc = print_json(o);
    cJSON_Delete(o);
    return rc;
}

static void status_text(const struct status *s, long long stale_ms, long long now,
                        const char *redis_err)
{
    char sb[80];
    if(!s->db_ok)
        printf("%-16s unreachable\n", "database");
    else if(!s->schema_ok)
        printf("%-16s error (see above)\n", "database");
    if(s->schema_ok)
        printf("%-16s %lld total, %lld enabled", "devices", s->total, s->enabled);
    else
        printf("%-16s ? total, ? enabled", "devices");
    if(s->redis_ok)
        printf(", %lld online\n", s->online);
    else
        printf(", ? online\n");
    if(s->schema_ok)
        printf("%-16s %lld stored in the last minute\n", "readings", s->readings);
    if(!s->redis_ok) {
        printf("%-16s unreachable (%s)\n", "redis", redis_err);
        return;
    }
    if(!s->nids)
        printf("%-16s none registered in mcs:instances (is mcsd running?)\n", "instances");
    for(size_t i = 0; i < s->nids; i++) {
        const redisReply *h = s->metrics[i];
        long long age = metrics_age(h, now);
        if(s->ids->element[i]->type != REDIS_REPLY_STRING)
            continue;
        printf("instance %s", shown(s->ids->element[i]->str, sb, sizeof(sb)));
        if(age < 0) {
            printf(": no metrics (registered, but not publishing)\n");
            continue;
        }
        printf(" (updated %.1f s ago%s)\n", (double)age / 1000.0,
               age > stale_ms ? ", STALE: not running?" : "");
        for(size_t k = 0; k < sizeof(metric_keys) / sizeof(metric_keys[0]); k++) {
            const char *v = hget(h, metric_keys[k]);
            printf("  %-18s %s\n", metric_keys[k], v ? shown(v, sb, sizeof(sb)) : "-");
            if(strcmp(metric_keys[k], "rejected") != 0)
                continue;
            for(size_t j = 0; j + 1 < h->elements; j += 2) {
                const char *f = h->element[j]->str, *fv = h->element[j + 1]->str;
                if(f && fv && !strncmp(f, "rej_", 4) && !is_zero(fv))
                    printf("    %-16s %s\n", shown(f, sb, sizeof(sb)), fv);
            }
        }
    }
}

static int cmd_status(struct cli *c, const struct args *a)
{
    struct status s;
    long long now = (long long)mcs_now_ms();
    /* A hash not refreshed for five publishing intervals (10 s at least)
     * belongs to an instance that has stopped or hangs. */
    long long stale_ms = 5LL * c->cfg.metrics_interval_ms;
    int rc = 0;

    if(stale_ms < 10000)
        stale_ms = 10000;
    memset(&s, 0, sizeof(s));
    status_db(c, &s);
    status_redis(c, &s);
    if(a->json)
        rc = status_json(&s, stale_ms, now, c->redis_err);
    else
        status_text(&s, stale_ms, now, c->redis_err);
    if(!rc && (!s.schema_ok || !s.redis_ok))
        rc = MCS_EIO;
    for(size_t i = 0; s.metrics && i < s.nids; i++)
        reply_free(s.metrics[i]);
    free(s.metrics);
    reply_free(s.ids);
    return rc;
}

/* `mcs hash-password`: one line from stdin (no echo concerns: meant for
 * scripts and `read -s` pipelines) -> crypto_pwhash_str at the interactive
 * limits, which is what the broker plugin verifies (docs/PLUGIN.md). */
static int cmd_hash_password(void)
{
    char pw[1026], out[crypto_pwhash_STRBYTES];
    size_t len;
    int rc = MCS_EINVAL;

    if(sodium_init() < 0)
        return fail(MCS_ENOMEM, "libsodium failed to initialise");
    if(!fgets(pw, sizeof(pw), stdin)) {
        rc = fail(MCS_EINVAL, "hash-password: no password on stdin");
        goto out;
    }
    len = strcspn(pw, "\r\n");
    if(len == sizeof(pw) - 1) {
        rc = fail(MCS_EINVAL, "hash-password: password longer than 1024 bytes");
        goto out;
    }
    pw[len] = '\0';
    if(len == 0) {
        rc = fail(MCS_EINVAL, "hash-password: empty password");
        goto out;
    }
    if(crypto_pwhash_str(out, pw, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                         crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        rc = fail(MCS_ENOMEM, "hash-password: out of memory");
        goto out;
    }
    printf("%s\n", out);
    rc = 0;
out:
    sodium_memzero(pw, sizeof(pw));
    return rc;
}

struct command {
    const char *name;
    unsigned allow;
    int (*fn)(struct cli *, const struct args *);
};

static const struct command device_cmds[] = {
    {"add", A_SN | A_DEV, cmd_add},   {"set", A_SN | A_DEV, cmd_set},
    {"enable", A_SN, cmd_enable},     {"disable", A_SN, cmd_disable},
    {"del", A_SN, cmd_del},           {"delete", A_SN, cmd_del},
    {"list", A_JSON, cmd_list},       {"show", A_SN | A_JSON, cmd_show},
    {"password", A_SN, cmd_password},
};

static int wants_help(int argc, char **argv)
{
    if(argc > 1 && (!strcmp(argv[1], "help") || !strcmp(argv[1], "-h")))
        return 1;
    for(int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if(!strcmp(argv[i], "--help"))
            return 1;
    return 0;
}

/* Picks the command and runs it; returns 0 or a negative code. */
static int run(struct cli *c, int argc, char **argv)
{
    struct args a;
    char sb[48], name[32];
    int rc;

    if(argc < 2) {
        usage(stderr);
        return MCS_EINVAL;
    }
    if(!strcmp(argv[1], "hash-password")) {
        if(argc != 2)
            return fail(MCS_EINVAL, "hash-password takes no arguments (password on stdin)");
        return cmd_hash_password();
    }
    if(!strcmp(argv[1], "alarm") || (argc > 2 && !strcmp(argv[1], "config") &&
                                     !strcmp(argv[2], "alarm"))) /* issue #7 */
        return mcs_alarm_run(&c->cfg, argc, argv);
    if(!strcmp(argv[1], "status")) {
        rc = parse_args(argc, argv, 2, A_JSON, "status", &a);
        return rc ? rc : cmd_status(c, &a);
    }
    if(!strcmp(argv[1], "user")) /* src/tools/mcs_user.c (issue #8) */
        return mcs_user_run(&c->cfg, argc - 1, argv + 1);
    if(strcmp(argv[1], "device") != 0)
        return fail(MCS_EINVAL, "unknown command '%s' (see `mcs --help`)",
                    shown(argv[1], sb, sizeof(sb)));
    if(argc < 3)
        return fail(MCS_EINVAL, "`mcs device` needs a subcommand: add, set, enable, disable, "
                                "del, list, show or password");
    for(size_t i = 0; i < sizeof(device_cmds) / sizeof(device_cmds[0]); i++) {
        if(strcmp(argv[2], device_cmds[i].name) != 0)
            continue;
        snprintf(name, sizeof(name), "device %s", device_cmds[i].name);
        rc = parse_args(argc, argv, 3, device_cmds[i].allow, name, &a);
        return rc ? rc : device_cmds[i].fn(c, &a);
    }
    return fail(MCS_EINVAL, "unknown device subcommand '%s' (see `mcs --help`)",
                shown(argv[2], sb, sizeof(sb)));
}

int main(int argc, char **argv)
{
    struct cli c;
    int rc;

    /* Only the character type: column widths of UTF-8 names. Numbers keep
     * the C locale, as strtod and the JSON output rely on it. */
    if(!setlocale(LC_CTYPE, "") || MB_CUR_MAX < 2)
        setlocale(LC_CTYPE, "C.UTF-8");
    memset(&c, 0, sizeof(c));
    if(wants_help(argc, argv)) {
        usage(stdout);
        rc = 0;
        goto out;
    }
    rc = mcs_config_load(&c.cfg, &argc, argv);
    if(rc)
        goto out;
    rc = run(&c, argc, argv);
out:
    if(c.pg)
        PQfinish(c.pg);
    if(c.rds)
        redisFree(c.rds);
    if(fflush(stdout) != 0 && !rc)
        rc = fail(MCS_EIO, "cannot write the output");
    if(!rc)
        return 0;
    return rc == MCS_EINVAL || rc == MCS_ECONFIG ? EXIT_USAGE : EXIT_RUNTIME;
}
