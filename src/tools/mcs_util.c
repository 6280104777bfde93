/* mcs_util.c - helpers shared by the `mcs` command groups (see
 * mcs_util.h): messages, text checks, the option parser, PostgreSQL and
 * Redis access, JSON output. Owns no state beyond the struct cli it is
 * handed. Thread: single-threaded. */
#include "mcs_util.h"
#include "devcred.h"
#include "err.h"
#include "utf8.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* Prints "mcs: <message>" on stderr and returns rc, so that a check reads
 * `rc = cli_fail(MCS_EINVAL, ...); goto out;`. */
__attribute__((format(printf, 2, 3))) int cli_fail(int rc, const char *fmt, ...)
{
    va_list ap;
    fputs("mcs: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return rc;
}

__attribute__((format(printf, 1, 2))) void cli_warn(const char *fmt, ...)
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
const char *cli_shown(const char *s, char *buf, size_t n)
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
int cli_text_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), k;
    unsigned cp;
    while(n) {
        k = mcs_utf8_next(p, n, &cp);
        if(!k || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
            return 0;
        p += k;
        n -= k;
    }
    return 1;
}

/* Terminal columns taken by UTF-8 text (CJK names are two wide). */
size_t cli_dwidth(const char *s)
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

void cli_pad(size_t n)
{
    while(n--)
        fputc(' ', stdout);
}
/* Parses a whole, finite decimal number (no leading blanks, nothing after).
 * Returns 0 or MCS_EINVAL. */
int cli_parse_num(const char *s, double *out)
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

/* Checks one option value (o, index i of its table) and stores it in a. */
static int take_opt(struct cli_args *a, const struct cli_opt *o, size_t i, const char *value)
{
    char sb[48];
    int rc = 0;

    if(a->set[i]) {
        rc = cli_fail(MCS_EINVAL, "%s given twice", o->flag);
        goto out;
    }
    if(o->kind == CLI_OPT_STR) {
        size_t len = strlen(value);
        if(len > o->max) {
            rc = cli_fail(MCS_EINVAL, "%s: %zu bytes, at most %zu allowed", o->flag, len, o->max);
            goto out;
        }
        if(!len && !o->empty_ok) {
            rc = cli_fail(MCS_EINVAL, "%s: must not be empty", o->flag);
            goto out;
        }
        if(!cli_text_ok(value)) {
            rc =
                cli_fail(MCS_EINVAL, "%s '%s': not valid UTF-8 text or contains control characters",
                         o->flag, cli_shown(value, sb, sizeof(sb)));
            goto out;
        }
        a->val[i] = value;
    }
    else if(o->nullable && !strcmp(value, "none")) {
        a->val[i] = NULL;
    }
    else {
        if(cli_parse_num(value, &a->num[i])) {
            rc = cli_fail(MCS_EINVAL, "%s '%s': not a finite decimal number%s", o->flag,
                          cli_shown(value, sb, sizeof(sb)), o->nullable ? " (or none)" : "");
            goto out;
        }
        if(o->positive && !(a->num[i] > 0)) {
            rc = cli_fail(MCS_EINVAL, "%s '%s': must be greater than 0", o->flag,
                          cli_shown(value, sb, sizeof(sb)));
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

/* See mcs_util.h. */
int cli_parse_args(int argc, char **argv, int i, unsigned allow, const struct cli_opt *opts,
                   size_t nopts, const char *cmd, struct cli_args *a)
{
    int rc = 0, opts_done = 0;
    char sb[48];

    memset(a, 0, sizeof(*a));
    if(nopts > CLI_OPTS_MAX) {
        rc = cli_fail(MCS_EINVAL, "`mcs %s`: too many options in its table", cmd);
        goto out;
    }
    for(; i < argc; i++) {
        const char *arg = argv[i];
        if(!opts_done && !strcmp(arg, "--")) {
            opts_done = 1;
            continue;
        }
        if(!opts_done && !strncmp(arg, "--", 2)) {
            const char *eq = strchr(arg, '=');
            size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
            size_t k = nopts;
            const char *value = NULL;

            if(flen == 6 && !strncmp(arg, "--json", 6) && (allow & CLI_A_JSON)) {
                if(eq) {
                    rc = cli_fail(MCS_EINVAL, "--json takes no value");
                    goto out;
                }
                a->json = 1;
                continue;
            }
            if(allow & CLI_A_OPTS)
                for(k = 0; k < nopts; k++)
                    if(strlen(opts[k].flag) == flen && !strncmp(arg, opts[k].flag, flen))
                        break;
            if(k == nopts && (!strcmp(arg, "--set") || !strcmp(arg, "--env-file"))) {
                /* mcs_config_load leaves these only when their value is missing. */
                rc = cli_fail(MCS_EINVAL, "option %s needs a value", arg);
                goto out;
            }
            if(k == nopts) {
                rc = cli_fail(MCS_EINVAL, "unknown option '%s' for `mcs %s` (see `mcs --help`)",
                              cli_shown(arg, sb, sizeof(sb)), cmd);
                goto out;
            }
            /* A following "--x" is taken for a forgotten value, not a value;
             * negative numbers have a single dash. */
            if(eq)
                value = eq + 1;
            else if(i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                value = argv[++i];
            else {
                rc = cli_fail(MCS_EINVAL, "option %s needs a value", opts[k].flag);
                goto out;
            }
            rc = take_opt(a, &opts[k], k, value);
            if(rc)
                goto out;
            continue;
        }
        if(!(allow & CLI_A_SN) || a->sn) {
            rc = cli_fail(MCS_EINVAL, "unexpected argument '%s' for `mcs %s` (see `mcs --help`)",
                          cli_shown(arg, sb, sizeof(sb)), cmd);
            goto out;
        }
        a->sn = arg;
    }
    if(allow & CLI_A_SN) {
        if(!a->sn) {
            rc = cli_fail(MCS_EINVAL, "`mcs %s` needs a serial number (see `mcs --help`)", cmd);
            goto out;
        }
        if(mcs_sn_reserved(a->sn, strlen(a->sn))) {
            rc = cli_fail(MCS_EINVAL,
                          "serial number '%s' is reserved: %s/broadcast/cmd is the command "
                          "topic of the whole fleet",
                          a->sn, "{prefix}");
            goto out;
        }
        if(!mcs_sn_valid(a->sn, strlen(a->sn))) {
            rc = cli_fail(MCS_EINVAL, "invalid serial number '%s': 1 to 32 of A-Z a-z 0-9 _ -",
                          cli_shown(a->sn, sb, sizeof(sb)));
            goto out;
        }
    }
out:
    return rc;
}

/* Appends to a statement being built from constant pieces. */
__attribute__((format(printf, 4, 5))) int cli_sql_cat(char *buf, size_t n, size_t *len,
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

int cli_db_open(struct cli *c)
{
    char err[512];
    if(c->pg)
        return 0;
    c->pg = mcs_pg_connect(&c->cfg, "mcs", err, sizeof(err));
    if(!c->pg)
        return cli_fail(MCS_EDB, "cannot connect to PostgreSQL (%s:%d, database %s): %s",
                        c->cfg.db_host, c->cfg.db_port, c->cfg.db_name, err);
    return 0;
}

/* Runs one parameterised statement. Returns 0 with *res set (the caller
 * PQclears it), MCS_EDUP on a unique violation without printing (the caller
 * words it), or MCS_EDB after printing the server's reason. */
int cli_pg_query(struct cli *c, const char *sql, int n, const char *const *vals, PGresult **res)
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
        cli_fail(rc, "schema missing: start mcsd once or run `mcsd --migrate` (%s)", line);
    else if(state && !strcmp(state, "42703"))
        cli_fail(rc, "schema out of date: start the current mcsd once or run `mcsd --migrate` (%s)",
                 line);
    else
        cli_fail(rc, "database: %s", line);
out:
    PQclear(r);
    return rc;
}

int cli_pg_simple(struct cli *c, const char *sql)
{
    PGresult *r = NULL;
    int rc = cli_pg_query(c, sql, 0, NULL, &r);
    PQclear(r);
    return rc;
}

/* freeReplyObject that accepts NULL whatever the hiredis version. */
void cli_reply_free(void *rep)
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
__attribute__((format(printf, 2, 3))) redisReply *cli_redis_cmd(struct cli *c, const char *fmt, ...)
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
        cli_reply_free(rep);
        return NULL;
    }
    return rep;
}

/* Adds item to a JSON object or array; frees it when that fails. */
int cli_jadd(cJSON *to, const char *key, cJSON *item)
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
cJSON *cli_jnum_or_str(const char *s)
{
    double d;
    if(!cli_parse_num(s, &d))
        return cJSON_CreateNumber(d);
    return cJSON_CreateString(s);
}

int cli_print_json(cJSON *j)
{
    char *s = cJSON_Print(j);
    if(!s)
        return MCS_ENOMEM;
    puts(s);
    cJSON_free(s);
    return 0;
}
