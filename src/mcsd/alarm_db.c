/* alarm_db.c - the alarm engine inside the store batch transaction (see
 * alarm_db.h). Owns the open-alarm hints between batches (alarm_state) and
 * the scratch of the devices one batch decides; reads the registry.
 * Must not touch the journal or the store's own statements. Thread: store
 * (alarm_eval_batch); the settings are shared under a mutex. */
#include "alarm_db.h"
#include "alarm_state.h"
#include "err.h"
#include "hmap.h"
#include "log.h"
#include "timeutil.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPEN_REFRESH_MS 5000 /* re-read open alarms (other instances' raises) */
#define STAT(e, f)                    \
    do {                              \
        pthread_mutex_lock(&(e)->mu); \
        (e)->stats.f++;               \
        pthread_mutex_unlock(&(e)->mu); \
    } while(0)

/* One device the current batch must decide (it has an open-alarm hint or a
 * sample that meets a condition): its full limits, read in the batch's
 * transaction, and the truth of its open alarms, locked by lock_open. Lives
 * in the batch scratch only: devices without alarms leave nothing behind. */
struct aldev {
    char sn[MCS_SN_MAX + 1];
    uint8_t known; /* a devices row exists */
    struct alarm_limits lim;
    struct alarm_open st[AL_NTYPES];
    long long id[AL_NTYPES];
    int pend_count[AL_NTYPES];
    double pend_last[AL_NTYPES];
    int64_t pend_ts[AL_NTYPES];
    uint32_t praise_i[AL_NTYPES]; /* id -1: its entry in the batch's raises */
};

/* A raise decided but not yet written: raises are inserted together (one
 * statement for the alarms, one for their notifications) so that a storm
 * costs two round trips per batch, not two per alarm. */
struct pend_raise {
    struct aldev *d;
    int t, level;
    double value, thr;
    int64_t ts;
};

#define SCRATCH_KEEP 1024 /* scratch entries kept between batches */

struct alarm_engine {
    char instance[64];
    pthread_mutex_t mu;
    struct alarm_cfg cfg;     /* under mu */
    struct alarm_state state; /* between batches: open-alarm hints */
    struct mcs_registry *reg; /* borrowed: alarm_high/alarm_low per device */
    /* The batch scratch: the devices it decides, found by SN through bmap
     * (emptied again at the end of the batch), and each record's device. */
    struct aldev *scr;
    size_t nscr, scr_cap;
    struct hmap bmap;  /* sn -> uint32_t index into scr */
    uint32_t *rec_dev; /* per record: index into scr, or UINT32_MAX */
    size_t rec_cap;
    PGconn *last_pg;
    int last_pid;
    int64_t next_open_ms;
    int64_t sig_first, sig_last; /* the previous batch, to notice its retry */
    struct pend_raise *praise;   /* raises of this batch not yet inserted */
    size_t npraise, praise_cap;
    size_t sig_n;
    char err[512];
    struct alarm_stats stats;
};

/* ---- settings ---- */

void alarm_cfg_defaults(struct alarm_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->debounce_s = 600;
    c->hyst_pct = 2;
    c->offline_s = 90;
    c->reminders = 1;
    c->level2_override = 1;
    c->sched.enabled = 0;
    c->sched.days = 0x7f;
    c->sched.start_min = 0;
    c->sched.end_min = 1440;
    snprintf(c->tz, sizeof(c->tz), "Asia/Shanghai");
    c->tz_offset_s = 8 * 3600;
    c->escalation = 0;
    c->escalate_after_s = 1800;
    c->max_attempts = 6;
    c->backoff_s = 2;
    c->backoff_max_s = 300;
    c->digest_threshold = 3;
}

static double jnum(const cJSON *o, const char *k, double def, double lo, double hi)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if(!cJSON_IsNumber(v) || isnan(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return def;
    return v->valuedouble;
}

static int jbool(const cJSON *o, const char *k, int def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

int alarm_cfg_parse(struct alarm_cfg *c, const char *json)
{
    cJSON *root = cJSON_Parse(json);
    const cJSON *o;
    if(!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return MCS_EPARSE;
    }
    c->debounce_s = jnum(root, "debounce_min", c->debounce_s / 60, 0, 1440) * 60;
    c->hyst_pct = jnum(root, "hysteresis_pct", c->hyst_pct, 0, 50);
    c->offline_s = jnum(root, "offline_s", c->offline_s, 1, 86400);
    c->reminders = jbool(root, "reminders", c->reminders);
    c->level2_override = jbool(root, "level2_ignores_schedule", c->level2_override);
    o = cJSON_GetObjectItemCaseSensitive(root, "schedule");
    if(cJSON_IsObject(o)) {
        const cJSON *days = cJSON_GetObjectItemCaseSensitive(o, "days");
        const cJSON *tz = cJSON_GetObjectItemCaseSensitive(o, "tz");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "start");
        const cJSON *en = cJSON_GetObjectItemCaseSensitive(o, "end");
        c->sched.enabled = jbool(o, "enabled", c->sched.enabled);
        if(cJSON_IsArray(days)) {
            const cJSON *d;
            c->sched.days = 0;
            cJSON_ArrayForEach(d, days)
            {
                if(cJSON_IsNumber(d) && d->valuedouble >= 1 && d->valuedouble <= 7)
                    c->sched.days |= (uint8_t)(1u << ((int)d->valuedouble - 1));
            }
        }
        if(cJSON_IsString(st) && alarm_hhmm_parse(st->valuestring) >= 0)
            c->sched.start_min = alarm_hhmm_parse(st->valuestring);
        if(cJSON_IsString(en) && alarm_hhmm_parse(en->valuestring) >= 0)
            c->sched.end_min = alarm_hhmm_parse(en->valuestring);
        if(c->sched.start_min == 0 && c->sched.end_min == 1440)
            c->sched.end_min = 0; /* all day */
        if(cJSON_IsString(tz) && strlen(tz->valuestring) < sizeof(c->tz))
            snprintf(c->tz, sizeof(c->tz), "%s", tz->valuestring);
    }
    o = cJSON_GetObjectItemCaseSensitive(root, "escalation");
    if(cJSON_IsObject(o)) {
        c->escalation = jbool(o, "enabled", c->escalation);
        c->escalate_after_s = jnum(o, "after_min", c->escalate_after_s / 60, 0, 100000) * 60;
    }
    o = cJSON_GetObjectItemCaseSensitive(root, "retry");
    if(cJSON_IsObject(o)) {
        c->max_attempts = (int)jnum(o, "max_attempts", c->max_attempts, 1, 100);
        c->backoff_s = jnum(o, "backoff_s", c->backoff_s, 0, 3600);
        c->backoff_max_s = jnum(o, "backoff_max_s", c->backoff_max_s, 0, 86400);
    }
    o = cJSON_GetObjectItemCaseSensitive(root, "digest");
    if(cJSON_IsObject(o))
        c->digest_threshold = (int)jnum(o, "threshold", c->digest_threshold, 1, 100000);
    cJSON_Delete(root);
    return 0;
}

int alarm_cfg_load(PGconn *pg, struct alarm_cfg *c)
{
    PGresult *r = PQexec(pg, "SELECT value::text FROM system_config WHERE key = 'alarm.general'");
    int rc = 0;
    if(PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return MCS_EDB;
    }
    alarm_cfg_defaults(c);
    if(PQntuples(r) == 1 && alarm_cfg_parse(c, PQgetvalue(r, 0, 0)))
        LOG_W("alarm", "alarm.general is not a JSON object; defaults used");
    PQclear(r);
    {
        /* The zone's offset now, from PostgreSQL's tz data (DST included). */
        const char *p[1] = {c->tz};
        r = PQexecParams(pg,
                         "SELECT EXTRACT(EPOCH FROM (now() AT TIME ZONE $1) -"
                         " (now() AT TIME ZONE 'UTC'))::int",
                         1, NULL, p, NULL, NULL, 0);
        if(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            c->tz_offset_s = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
        else {
            LOG_W("alarm", "unknown schedule time zone; Asia/Shanghai used", LS("tz", c->tz));
            snprintf(c->tz, sizeof(c->tz), "Asia/Shanghai");
            c->tz_offset_s = 8 * 3600;
            rc = PQstatus(pg) == CONNECTION_BAD ? MCS_EDB : 0;
        }
        PQclear(r);
    }
    return rc;
}

/* Growable text for array literals. */
struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if(b->oom)
        return;
    if(b->len + n + 1 > b->cap) {
        size_t nc = (b->cap + n + 1) * 2;
        char *np = realloc(b->p, nc);
        if(!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Appends one element of a PostgreSQL array literal: quoted text, or NULL. */
static void sb_elem(struct sbuf *b, const char *v)
{
    sb_add(b, b->len ? "," : "{", 1);
    if(!v) {
        sb_add(b, "NULL", 4);
        return;
    }
    sb_add(b, "\"", 1);
    for(; *v; v++) {
        if(*v == '"' || *v == '\\')
            sb_add(b, "\\", 1);
        sb_add(b, v, 1);
    }
    sb_add(b, "\"", 1);
}

static void sb_end(struct sbuf *b)
{
    if(!b->len)
        sb_add(b, "{", 1);
    sb_add(b, "}", 1);
}

/* ---- engine ---- */

struct alarm_engine *alarm_engine_new(const char *instance_id, struct mcs_registry *reg)
{
    struct alarm_engine *e = calloc(1, sizeof(*e));
    if(!e)
        return NULL;
    snprintf(e->instance, sizeof(e->instance), "%s", instance_id);
    pthread_mutex_init(&e->mu, NULL);
    alarm_cfg_defaults(&e->cfg);
    e->reg = reg;
    if(alarm_state_init(&e->state) || hmap_init(&e->bmap, sizeof(uint32_t), 0, 0)) {
        pthread_mutex_destroy(&e->mu);
        free(e);
        return NULL;
    }
    return e;
}

void alarm_engine_free(struct alarm_engine *e)
{
    if(!e)
        return;
    alarm_state_cleanup(&e->state);
    hmap_cleanup(&e->bmap);
    free(e->scr);
    free(e->rec_dev);
    free(e->praise);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

void alarm_engine_set_cfg(struct alarm_engine *e, const struct alarm_cfg *c)
{
    pthread_mutex_lock(&e->mu);
    e->cfg = *c;
    pthread_mutex_unlock(&e->mu);
}

void alarm_engine_get_cfg(struct alarm_engine *e, struct alarm_cfg *c)
{
    pthread_mutex_lock(&e->mu);
    *c = e->cfg;
    pthread_mutex_unlock(&e->mu);
}

void alarm_engine_stats(struct alarm_engine *e, struct alarm_stats *out)
{
    pthread_mutex_lock(&e->mu);
    *out = e->stats;
    pthread_mutex_unlock(&e->mu);
}

/* The scratch entry of sn in this batch, or NULL. */
static struct aldev *scr_find(struct alarm_engine *e, const char *sn)
{
    const uint32_t *v;
    if(!e->nscr)
        return NULL;
    v = hmap_find(&e->bmap, sn, strlen(sn));
    return v ? &e->scr[*v] : NULL;
}

/* Adds sn to the batch scratch (once). Returns 0 or MCS_ENOMEM. Entries
 * must not be added once decisions started (they hold pointers into scr). */
static int scr_add(struct alarm_engine *e, const char *sn)
{
    size_t len = strlen(sn);
    uint32_t *v;
    int created = 0, rc;
    struct aldev *d;

    if(len == 0 || len > MCS_SN_MAX)
        return 0; /* no such device: nothing to decide */
    if(e->nscr == e->scr_cap) {
        size_t nc = e->scr_cap ? e->scr_cap * 2 : 64;
        struct aldev *np = realloc(e->scr, nc * sizeof(*np));
        if(!np)
            return MCS_ENOMEM;
        e->scr = np;
        e->scr_cap = nc;
    }
    if((rc = hmap_insert(&e->bmap, sn, len, (void **)&v, &created)))
        return rc;
    if(!created)
        return 0;
    *v = (uint32_t)e->nscr;
    d = &e->scr[e->nscr++];
    memset(d, 0, sizeof(*d));
    memcpy(d->sn, sn, len + 1);
    return 0;
}

/* Empties the scratch; gives back what a storm made it grow to. */
static void scr_reset(struct alarm_engine *e)
{
    for(size_t i = 0; i < e->nscr; i++)
        hmap_delete(&e->bmap, e->scr[i].sn, strlen(e->scr[i].sn), NULL);
    e->nscr = 0;
    if(e->scr_cap > SCRATCH_KEEP) {
        free(e->scr);
        e->scr = NULL;
        e->scr_cap = 0;
        hmap_cleanup(&e->bmap);
    }
}

static void fmt_num(char *buf, size_t n, double v, const char **param)
{
    if(isnan(v)) {
        *param = NULL;
        return;
    }
    snprintf(buf, n, "%.17g", v);
    *param = buf;
}

static double col_num(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NAN : strtod(PQgetvalue(r, row, col), NULL);
}

/* Runs one statement; NULL on failure with the message in e->err. */
static PGresult *q(struct alarm_engine *e, PGconn *pg, const char *sql, int np,
                   const char *const *p)
{
    PGresult *r = PQexecParams(pg, sql, np, NULL, p, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    if(e) {
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(e->err, sizeof(e->err), "%s %s", code ? code : "", PQresultErrorMessage(r));
    }
    PQclear(r);
    return NULL;
}

/* Builds a PostgreSQL text array literal of the SNs of the scratch
 * (validated to [A-Za-z0-9_-], never needing quotes). Caller frees. */
static char *sn_array(const struct aldev *devs, size_t n, int (*want)(const struct aldev *))
{
    size_t cap = 3 + n * (MCS_SN_MAX + 1), len = 0;
    char *a = malloc(cap);
    if(!a)
        return NULL;
    a[len++] = '{';
    for(size_t i = 0; i < n; i++) {
        if(want && !want(&devs[i]))
            continue;
        size_t l = strlen(devs[i].sn);
        if(len > 1)
            a[len++] = ',';
        memcpy(a + len, devs[i].sn, l);
        len += l;
    }
    a[len++] = '}';
    a[len] = '\0';
    return a;
}

static int want_known(const struct aldev *d)
{
    return d->known;
}

/* The gas limits of one devices row (columns from col on: high_limit,
 * high_limit2, low_limit, low_limit2). */
static void row_gas_limits(const PGresult *r, int row, int col, struct alarm_limits *lim)
{
    lim->high1 = col_num(r, row, col);
    lim->high2 = col_num(r, row, col + 1);
    lim->low1 = col_num(r, row, col + 2);
    lim->low2 = col_num(r, row, col + 3);
}

/* Reads the full limits of the devices of the scratch (in the batch's
 * transaction: the limits the decisions use are the committed ones). A
 * device without a row is not known: no alarms of its own. */
static int load_limits(struct alarm_engine *e, PGconn *pg)
{
    char *arr = sn_array(e->scr, e->nscr, NULL);
    const char *p[1] = {arr};
    PGresult *r;
    if(!arr)
        return MCS_ENOMEM;
    r = q(e, pg,
          "SELECT sn, high_limit, high_limit2, low_limit, low_limit2, hysteresis, range_max"
          " FROM devices WHERE sn = ANY($1::text[])",
          1, p);
    free(arr);
    if(!r)
        return MCS_EDB;
    for(int i = 0; i < PQntuples(r); i++) {
        struct aldev *d = scr_find(e, PQgetvalue(r, i, 0));
        if(!d)
            continue;
        d->known = 1;
        row_gas_limits(r, i, 1, &d->lim);
        d->lim.hysteresis = col_num(r, i, 5);
        d->lim.range_max = col_num(r, i, 6);
    }
    PQclear(r);
    return 0;
}

static int refresh_open(struct alarm_engine *e, PGconn *pg)
{
    PGresult *r = q(e, pg, "SELECT sn, alarm_type FROM alarm_logs WHERE cleared_at IS NULL", 0,
                    NULL);
    if(!r)
        return MCS_EDB;
    alarm_state_clear_open(&e->state);
    for(int i = 0; i < PQntuples(r); i++) {
        int t = alarm_type_parse(PQgetvalue(r, i, 1));
        if(t < 0)
            continue;
        if(alarm_state_add_open(&e->state, PQgetvalue(r, i, 0), (uint8_t)(1u << t)) ==
           MCS_ENOMEM) {
            PQclear(r);
            snprintf(e->err, sizeof(e->err), "out of memory");
            return MCS_EDB;
        }
    }
    PQclear(r);
    return 0;
}

/* Reads the open alarms of the known devices of the scratch and locks them,
 * in the global lock order (sn, alarm type) that raises follow too. */
static int lock_open(struct alarm_engine *e, PGconn *pg)
{
    char *arr = sn_array(e->scr, e->nscr, want_known);
    const char *p[1] = {arr};
    PGresult *r;
    if(!arr)
        return MCS_ENOMEM;
    r = q(e, pg,
          "SELECT id, sn, alarm_type, level, peak_value FROM alarm_logs"
          " WHERE cleared_at IS NULL AND sn = ANY($1::text[])"
          " ORDER BY sn COLLATE \"C\", alarm_type COLLATE \"C\" FOR UPDATE",
          1, p);
    free(arr);
    if(!r)
        return MCS_EDB;
    for(size_t i = 0; i < e->nscr; i++) {
        struct aldev *d = &e->scr[i];
        for(int t = 0; t < AL_NTYPES; t++) {
            d->st[t].open = 0;
            d->st[t].level = 0;
            d->st[t].peak = NAN;
            d->id[t] = 0;
            d->pend_count[t] = 0;
        }
    }
    for(int i = 0; i < PQntuples(r); i++) {
        struct aldev *d = scr_find(e, PQgetvalue(r, i, 1));
        int t = alarm_type_parse(PQgetvalue(r, i, 2));
        if(!d || !d->known || t < 0)
            continue;
        d->id[t] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        d->st[t].open = 1;
        d->st[t].level = (int)strtol(PQgetvalue(r, i, 3), NULL, 10);
        d->st[t].peak = col_num(r, i, 4);
    }
    PQclear(r);
    return 0;
}

int alarm_notify_event(PGconn *pg, const struct alarm_cfg *cfg, long long alarm_id,
                       const char *sn, const char *type, const char *event, int level,
                       int force)
{
    char id[24], lv[8], win[32];
    PGresult *r;
    int rows;
    int64_t now_s = mcs_now_ms() / 1000;
    int allowed = alarm_may_send(&cfg->sched, cfg->level2_override, level, now_s,
                                 cfg->tz_offset_s);

    snprintf(id, sizeof(id), "%lld", alarm_id);
    snprintf(lv, sizeof(lv), "%d", level);
    snprintf(win, sizeof(win), "%.3f", cfg->debounce_s);
    if(!allowed) {
        /* Outside the schedule: recorded as held, not sent (manual §4.4);
         * the debounce window does not start. */
        const char *p[3] = {id, event, lv};
        r = q(NULL, pg,
              "INSERT INTO alarm_outbox (alarm_id, channel, event, level, status)"
              " SELECT $1, substr(key, 15), $2, $3, 'held' FROM system_config"
              " WHERE key LIKE 'alarm.channel.%' AND value->>'enabled' = 'true'",
              3, p);
    }
    else {
        /* Debounce in one statement: the row of (sn, type) decides, under
         * its lock, whether this event notifies (alarm_debounce_ok). */
        const char *p[7] = {id, event, lv, sn, type, force ? "t" : "f", win};
        r = q(NULL, pg,
              "WITH s AS (INSERT INTO alarm_notify_state AS ns (sn, alarm_type, last_notified_at)"
              " VALUES ($4, $5, now()) ON CONFLICT (sn, alarm_type) DO UPDATE SET"
              " suppressed = CASE WHEN $6::bool OR ns.last_notified_at <="
              "  now() - make_interval(secs => $7::float8) THEN 0 ELSE ns.suppressed + 1 END,"
              " last_notified_at = CASE WHEN $6::bool OR ns.last_notified_at <="
              "  now() - make_interval(secs => $7::float8) THEN now() ELSE ns.last_notified_at END"
              " RETURNING (ns.suppressed = 0 AND ns.last_notified_at = now()) AS go)"
              " INSERT INTO alarm_outbox (alarm_id, channel, event, level)"
              " SELECT $1, substr(c.key, 15), $2, $3::smallint FROM system_config c, s"
              " WHERE s.go AND c.key LIKE 'alarm.channel.%' AND c.value->>'enabled' = 'true'",
              7, p);
    }
    if(!r)
        return MCS_EDB;
    rows = (int)strtol(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return allowed ? rows : 0;
}

static void message_of(char *buf, size_t n, int type, int level, double v, double thr)
{
    if(isnan(v))
        snprintf(buf, n, "%s L%d", alarm_type_name(type), level);
    else if(isnan(thr))
        snprintf(buf, n, "%s L%d value %.6g", alarm_type_name(type), level, v);
    else
        snprintf(buf, n, "%s L%d value %.6g threshold %.6g", alarm_type_name(type), level, v,
                 thr);
}

/* INSERT of a new alarm; returns its id, 0 when (sn, type) is already open
 * (another instance raised it), or MCS_EDB. */
static long long insert_alarm(struct alarm_engine *e, PGconn *pg, const char *instance,
                              const char *sn, int type, int level, double value, double thr,
                              int64_t ts)
{
    char lv[8], vb[32], tb[32], tsb[24], msg[128];
    const char *p[9];
    PGresult *r;
    long long id = 0;

    snprintf(lv, sizeof(lv), "%d", level);
    snprintf(tsb, sizeof(tsb), "%" PRId64, ts);
    message_of(msg, sizeof(msg), type, level, value, thr);
    p[0] = sn;
    p[1] = alarm_type_name(type);
    p[2] = alarm_category_name(alarm_type_category(type));
    p[3] = lv;
    fmt_num(vb, sizeof(vb), value, &p[4]);
    fmt_num(tb, sizeof(tb), thr, &p[5]);
    p[6] = tsb;
    p[7] = msg;
    p[8] = instance;
    r = q(e, pg,
          "INSERT INTO alarm_logs (sn, alarm_type, category, level, value, threshold,"
          " triggered_at, last_at, peak_value, last_value, message, instance)"
          " VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7), to_timestamp($7), $5, $5, $8, $9)"
          " ON CONFLICT (sn, alarm_type) WHERE cleared_at IS NULL AND"
              " alarm_type <> 'UNKNOWN_DEVICE' DO NOTHING RETURNING id",
          9, p);
    if(!r)
        return MCS_EDB;
    if(PQntuples(r) == 1)
        id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return id;
}

int alarm_raise_one(PGconn *pg, const struct alarm_cfg *cfg, const char *instance,
                    const char *sn, int type, int level, double value, double threshold)
{
    long long id = insert_alarm(NULL, pg, instance, sn, type, level, value, threshold,
                                mcs_now_ms() / 1000);
    if(id < 0)
        return MCS_EDB;
    if(id == 0)
        return 0;
    if(alarm_notify_event(pg, cfg, id, sn, alarm_type_name(type), "raise", level, 0) < 0)
        return MCS_EDB;
    return 1;
}

/* Writes the repeats accumulated for (d, t) since the last write. */
static int flush_pending(struct alarm_engine *e, PGconn *pg, struct aldev *d, int t)
{
    char id[24], cnt[16], last[32], ts[24], peak[32], lv[8];
    const char *p[6];
    PGresult *r;

    if(!d->pend_count[t] || d->id[t] <= 0)
        return 0;
    snprintf(id, sizeof(id), "%lld", d->id[t]);
    snprintf(cnt, sizeof(cnt), "%d", d->pend_count[t]);
    snprintf(ts, sizeof(ts), "%" PRId64, d->pend_ts[t]);
    snprintf(lv, sizeof(lv), "%d", d->st[t].level ? d->st[t].level : 1);
    p[0] = id;
    p[1] = cnt;
    fmt_num(last, sizeof(last), d->pend_last[t], &p[2]);
    p[3] = ts;
    fmt_num(peak, sizeof(peak), d->st[t].peak, &p[4]);
    p[5] = lv;
    r = q(e, pg,
          "UPDATE alarm_logs SET count = count + $2, last_value = COALESCE($3, last_value),"
          " last_at = to_timestamp($4), peak_value = COALESCE($5, peak_value),"
          " level = GREATEST(level, $6::smallint) WHERE id = $1",
          6, p);
    if(!r)
        return MCS_EDB;
    PQclear(r);
    d->pend_count[t] = 0;
    return 0;
}

static int do_clear(struct alarm_engine *e, PGconn *pg, struct aldev *d, int t, double value,
                    int64_t ts)
{
    char id[24], vb[32], tsb[24];
    const char *p[3];
    PGresult *r;

    if(flush_pending(e, pg, d, t))
        return MCS_EDB;
    snprintf(id, sizeof(id), "%lld", d->id[t]);
    snprintf(tsb, sizeof(tsb), "%" PRId64, ts);
    p[0] = id;
    fmt_num(vb, sizeof(vb), value, &p[1]);
    p[2] = tsb;
    r = q(e, pg,
          "UPDATE alarm_logs SET cleared_at = GREATEST(to_timestamp($3), triggered_at),"
          " last_value = COALESCE($2, last_value) WHERE id = $1 AND cleared_at IS NULL",
          3, p);
    if(!r)
        return MCS_EDB;
    PQclear(r);
    if(alarm_type_category(t) == AL_CAT_GAS) {
        /* The recovery message (issue #15): the channels that were paged
         * for this alarm (a row not held back by the schedule) learn that
         * it is over, unless their "recovery" switch is off. Same outbox,
         * same transaction as the clear: exactly once with it. */
        r = q(e, pg,
              "INSERT INTO alarm_outbox (alarm_id, channel, event, level)"
              " SELECT a.id, substr(c.key, 15), 'clear', a.level"
              " FROM alarm_logs a, system_config c WHERE a.id = $1"
              " AND c.key LIKE 'alarm.channel.%' AND c.value->>'enabled' = 'true'"
              " AND COALESCE(c.value->>'recovery', 'true') <> 'false'"
              " AND EXISTS (SELECT 1 FROM alarm_outbox o WHERE o.alarm_id = a.id"
              " AND o.channel = substr(c.key, 15) AND o.event <> 'clear'"
              " AND o.status NOT IN ('held', 'dropped'))",
              1, p);
        if(!r)
            return MCS_EDB;
        PQclear(r);
    }
    d->id[t] = 0;
    STAT(e, cleared);
    return 0;
}

/* Re-reads (and locks) the open alarm of (d, t) that another instance just
 * raised, after our INSERT conflicted. */
static int adopt_open(struct alarm_engine *e, PGconn *pg, struct aldev *d, int t)
{
    const char *p[2] = {d->sn, alarm_type_name(t)};
    PGresult *r = q(e, pg,
                    "SELECT id, level, peak_value FROM alarm_logs WHERE sn = $1 AND"
                    " alarm_type = $2 AND cleared_at IS NULL FOR UPDATE",
                    2, p);
    if(!r)
        return MCS_EDB;
    if(PQntuples(r) == 1) {
        d->id[t] = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        d->st[t].open = 1;
        d->st[t].level = (int)strtol(PQgetvalue(r, 0, 1), NULL, 10);
        d->st[t].peak = col_num(r, 0, 2);
    }
    PQclear(r);
    return 0;
}


/* Notifications of newly raised alarms (ids set in their devices), in one
 * statement per kind: held outside the schedule, else debounced (level 1)
 * or at once (level 2: more severe, never held back by the window). */
static int notify_raises(struct alarm_engine *e, PGconn *pg, const struct alarm_cfg *cfg)
{
    struct sbuf a[2][4] = {{{0}}}, h[2] = {{0}};
    int64_t now_s = mcs_now_ms() / 1000;
    int nallowed[2] = {0, 0}, nheld = 0, rc = 0;
    char win[32];
    PGresult *r;

    for(size_t i = 0; i < e->npraise; i++) {
        struct pend_raise *pr = &e->praise[i];
        char id[24], lv[8];
        if(pr->d->id[pr->t] <= 0 || pr->level == 0)
            continue; /* adopted from the other instance: it notifies */
        snprintf(id, sizeof(id), "%lld", pr->d->id[pr->t]);
        snprintf(lv, sizeof(lv), "%d", pr->level);
        if(alarm_may_send(&cfg->sched, cfg->level2_override, pr->level, now_s, cfg->tz_offset_s)) {
            int k = alarm_raise_forced(pr->t, pr->level);
            sb_elem(&a[k][0], id);
            sb_elem(&a[k][1], pr->d->sn);
            sb_elem(&a[k][2], alarm_type_name(pr->t));
            sb_elem(&a[k][3], lv);
            nallowed[k]++;
        }
        else {
            sb_elem(&h[0], id);
            sb_elem(&h[1], lv);
            nheld++;
        }
    }
    for(int k = 0; k < 2; k++) {
        for(int j = 0; j < 4; j++) {
            sb_end(&a[k][j]);
            if(a[k][j].oom)
                rc = MCS_ENOMEM;
        }
        sb_end(&h[k]);
        if(h[k].oom)
            rc = MCS_ENOMEM;
    }
    if(rc)
        goto out;
    snprintf(win, sizeof(win), "%.3f", cfg->debounce_s);
    for(int k = 0; k < 2; k++) {
        if(!nallowed[k])
            continue;
        const char *p[6] = {a[k][0].p, a[k][1].p, a[k][2].p, a[k][3].p, win, k ? "t" : "f"};
        r = q(e, pg,
              "WITH ev AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[],"
              " $4::smallint[]) AS x(id, sn, typ, lvl)),"
              " s AS (INSERT INTO alarm_notify_state AS ns (sn, alarm_type, last_notified_at)"
              " SELECT sn, typ, now() FROM ev ORDER BY sn COLLATE \"C\", typ COLLATE \"C\""
              " ON CONFLICT (sn, alarm_type) DO UPDATE SET"
              " suppressed = CASE WHEN $6::bool OR ns.last_notified_at <= now() -"
              "  make_interval(secs => $5::float8) THEN 0 ELSE ns.suppressed + 1 END,"
              " last_notified_at = CASE WHEN $6::bool OR ns.last_notified_at <= now() -"
              "  make_interval(secs => $5::float8) THEN now() ELSE ns.last_notified_at END"
              " RETURNING ns.sn, ns.alarm_type, (ns.suppressed = 0 AND ns.last_notified_at = now())"
              " AS go),"
              " o AS (INSERT INTO alarm_outbox (alarm_id, channel, event, level)"
              " SELECT ev.id, substr(c.key, 15), 'raise', ev.lvl FROM ev JOIN s ON s.sn = ev.sn"
              " AND s.alarm_type = ev.typ, system_config c WHERE s.go AND c.key LIKE"
              " 'alarm.channel.%' AND c.value->>'enabled' = 'true' RETURNING alarm_id)"
              " SELECT (SELECT count(*) FROM s WHERE go), (SELECT count(*) FROM s WHERE NOT go)",
              6, p);
        if(!r) {
            rc = MCS_EDB;
            goto out;
        }
        pthread_mutex_lock(&e->mu);
        e->stats.notified += strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        e->stats.suppressed += strtoull(PQgetvalue(r, 0, 1), NULL, 10);
        pthread_mutex_unlock(&e->mu);
        PQclear(r);
    }
    if(nheld) {
        const char *p[2] = {h[0].p, h[1].p};
        r = q(e, pg,
              "WITH o AS (INSERT INTO alarm_outbox (alarm_id, channel, event, level, status)"
              " SELECT x.id, substr(c.key, 15), 'raise', x.lvl, 'held'"
              " FROM unnest($1::bigint[], $2::smallint[]) AS x(id, lvl), system_config c"
              " WHERE c.key LIKE 'alarm.channel.%' AND c.value->>'enabled' = 'true'"
              " RETURNING alarm_id, channel)"
              " UPDATE alarm_logs a SET channels = h.list FROM (SELECT alarm_id,"
              " string_agg(channel || ':held', ',' ORDER BY channel) AS list FROM o"
              " GROUP BY alarm_id) h WHERE a.id = h.alarm_id",
              2, p);
        if(!r) {
            rc = MCS_EDB;
            goto out;
        }
        PQclear(r);
    }
out:
    for(int k = 0; k < 2; k++) {
        for(int j = 0; j < 4; j++)
            free(a[k][j].p);
        free(h[k].p);
    }
    return rc;
}

/* Inserts the raises of the batch so far in one statement, in the global
 * lock order (sn, alarm type): two instances raising crossing devices wait
 * for each other in the same order instead of deadlocking (issue #15).
 * Adopts the ones another instance raised meanwhile, then writes their
 * notifications. */
static int flush_raises(struct alarm_engine *e, PGconn *pg, const struct alarm_cfg *cfg)
{
    struct sbuf c[8] = {{0}};
    char ts[24], vb[32], tb[32], lv[8], msg[128];
    PGresult *r = NULL;
    int rc = 0;

    if(!e->npraise)
        return 0;
    for(size_t i = 0; i < e->npraise; i++) {
        struct pend_raise *pr = &e->praise[i];
        const char *v, *th;
        snprintf(ts, sizeof(ts), "%" PRId64, pr->ts);
        snprintf(lv, sizeof(lv), "%d", pr->level);
        fmt_num(vb, sizeof(vb), pr->value, &v);
        fmt_num(tb, sizeof(tb), pr->thr, &th);
        message_of(msg, sizeof(msg), pr->t, pr->level, pr->value, pr->thr);
        sb_elem(&c[0], pr->d->sn);
        sb_elem(&c[1], alarm_type_name(pr->t));
        sb_elem(&c[2], alarm_category_name(alarm_type_category(pr->t)));
        sb_elem(&c[3], lv);
        sb_elem(&c[4], v);
        sb_elem(&c[5], th);
        sb_elem(&c[6], ts);
        sb_elem(&c[7], msg);
    }
    for(int k = 0; k < 8; k++) {
        sb_end(&c[k]);
        if(c[k].oom)
            rc = MCS_ENOMEM;
    }
    if(rc)
        goto out;
    {
        const char *p[9] = {c[0].p, c[1].p, c[2].p, c[3].p, c[4].p,
                            c[5].p, c[6].p, c[7].p, e->instance};
        r = q(e, pg,
              "INSERT INTO alarm_logs (sn, alarm_type, category, level, value, threshold,"
              " triggered_at, last_at, peak_value, last_value, message, instance)"
              " SELECT sn, typ, cat, lvl, val, thr, to_timestamp(ts), to_timestamp(ts), val, val,"
              " msg, $9 FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[],"
              " $5::float8[], $6::float8[], $7::bigint[], $8::text[])"
              " AS x(sn, typ, cat, lvl, val, thr, ts, msg)"
              " ORDER BY sn COLLATE \"C\", typ COLLATE \"C\""
              " ON CONFLICT (sn, alarm_type) WHERE cleared_at IS NULL AND"
              " alarm_type <> 'UNKNOWN_DEVICE' DO NOTHING"
              " RETURNING id, sn, alarm_type",
              9, p);
    }
    if(!r) {
        rc = MCS_EDB;
        goto out;
    }
    for(int i = 0; i < PQntuples(r); i++) {
        struct aldev *d = scr_find(e, PQgetvalue(r, i, 1));
        int t = alarm_type_parse(PQgetvalue(r, i, 2));
        if(d && t >= 0)
            d->id[t] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    }
    pthread_mutex_lock(&e->mu);
    e->stats.raised += (unsigned long long)PQntuples(r);
    pthread_mutex_unlock(&e->mu);
    PQclear(r);
    for(size_t i = 0; i < e->npraise; i++) {
        struct pend_raise *pr = &e->praise[i];
        struct aldev *d = pr->d;
        if(d->id[pr->t] > 0)
            continue;
        /* Raised by the other instance meanwhile: ours to update, not to
         * raise or notify again. The raising reading counts as a repeat. */
        int cnt = d->pend_count[pr->t], lvl = pr->level;
        if(adopt_open(e, pg, d, pr->t)) {
            rc = MCS_EDB;
            goto out;
        }
        if(lvl > d->st[pr->t].level && d->id[pr->t] > 0 && pr->t != AL_OVER_RANGE) {
            /* Our reading took the other instance's alarm to level 2. */
            d->st[pr->t].level = lvl;
            if(alarm_notify_event(pg, cfg, d->id[pr->t], d->sn, alarm_type_name(pr->t),
                                  "level2", lvl, 1) < 0) {
                snprintf(e->err, sizeof(e->err), "%s", PQerrorMessage(pg));
                rc = MCS_EDB;
                goto out;
            }
        }
        d->pend_count[pr->t] = cnt + 1;
        d->pend_last[pr->t] = pr->value;
        d->pend_ts[pr->t] = pr->ts;
        pr->level = 0; /* no notification of ours */
    }
    rc = notify_raises(e, pg, cfg);
out:
    for(int k = 0; k < 8; k++)
        free(c[k].p);
    e->npraise = 0;
    return rc;
}

static void sample_of(const struct mcs_jrec *r, struct alarm_sample *s)
{
    memset(s, 0, sizeof(*s));
    s->is_status = r->type == MCS_JREC_STATUS;
    s->online = r->online;
    s->ppm = r->ppm;
    s->over_range = (r->flags & 1) != 0; /* MCS_FLAG_OVER_RANGE */
    s->err = r->err;
    s->bat = r->bat;
}

static int eval_record(struct alarm_engine *e, PGconn *pg, const struct alarm_cfg *cfg,
                       struct aldev *d, const struct mcs_jrec *rec)
{
    struct alarm_sample s;
    sample_of(rec, &s);
    for(int t = 0; t < AL_NTYPES; t++) {
        struct alarm_decision dec;
        alarm_decide(t, &d->lim, cfg->hyst_pct, &d->st[t], &s, &dec);
        switch(dec.action) {
        case AL_ACT_NONE:
            break;
        case AL_ACT_RAISE: {
            if(e->npraise == e->praise_cap) {
                size_t nc = e->praise_cap ? e->praise_cap * 2 : 256;
                struct pend_raise *np = realloc(e->praise, nc * sizeof(*np));
                if(!np) {
                    snprintf(e->err, sizeof(e->err), "out of memory");
                    return MCS_EDB;
                }
                e->praise = np;
                e->praise_cap = nc;
            }
            d->praise_i[t] = (uint32_t)e->npraise;
            struct pend_raise *pr = &e->praise[e->npraise++];
            pr->d = d;
            pr->t = t;
            pr->level = dec.level;
            pr->value = dec.value;
            pr->thr = dec.threshold;
            pr->ts = rec->ts;
            alarm_apply(t, &d->st[t], &dec);
            d->id[t] = -1; /* inserted by flush_raises */
            break;
        }
        case AL_ACT_UPDATE:
            alarm_apply(t, &d->st[t], &dec);
            d->pend_count[t]++;
            d->pend_last[t] = dec.value;
            d->pend_ts[t] = rec->ts;
            break;
        case AL_ACT_LEVEL2: {
            char thr[32], id[24];
            const char *p[2];
            if(d->id[t] < 0) {
                /* Raised in this batch and not inserted yet: it is raised at
                 * level 2 (notified at once), in memory, so that the batch
                 * inserts its raises in one ordered statement. */
                struct pend_raise *pr = &e->praise[d->praise_i[t]];
                pr->level = dec.level;
                pr->value = dec.value; /* what the level-2 message reports */
                pr->thr = dec.threshold;
                alarm_apply(t, &d->st[t], &dec);
                d->pend_count[t]++;
                d->pend_last[t] = dec.value;
                d->pend_ts[t] = rec->ts;
                break;
            }
            if(d->id[t] == 0)
                break; /* raced away by the other instance: nothing of ours */
            alarm_apply(t, &d->st[t], &dec);
            d->pend_count[t]++;
            d->pend_last[t] = dec.value;
            d->pend_ts[t] = rec->ts;
            snprintf(id, sizeof(id), "%lld", d->id[t]);
            p[0] = id;
            fmt_num(thr, sizeof(thr), dec.threshold, &p[1]);
            /* A rise to level 2 is a new alarm condition (GB 16808): an
             * acknowledgement of level 1 no longer silences it. It is kept in
             * ack1_*, and the alarm is unacknowledged again, in the statement
             * that raises the level, so that the screens' event says both
             * (issue #15). */
            PGresult *r = q(e, pg,
                            "UPDATE alarm_logs SET threshold = COALESCE($2, threshold),"
                            " level = GREATEST(level, 2),"
                            " ack1_at = COALESCE(ack_at, ack1_at),"
                            " ack1_by = CASE WHEN ack_at IS NULL THEN ack1_by ELSE ack_by END,"
                            " ack1_note = CASE WHEN ack_at IS NULL THEN ack1_note ELSE ack_note END,"
                            " ack_at = NULL, ack_by = NULL, ack_note = NULL WHERE id = $1",
                            2, p);
            if(!r)
                return MCS_EDB;
            PQclear(r);
            if(flush_pending(e, pg, d, t))
                return MCS_EDB;
            /* Level 2 notifies at once, whatever the debounce window. */
            if(alarm_notify_event(pg, cfg, d->id[t], d->sn, alarm_type_name(t), "level2", 2,
                                  1) < 0) {
                snprintf(e->err, sizeof(e->err), "%s", PQerrorMessage(pg));
                return MCS_EDB;
            }
            STAT(e, notified);
            break;
        }
        case AL_ACT_CLEAR:
            if(d->id[t] < 0 && flush_raises(e, pg, cfg))
                return MCS_EDB;
            if(d->id[t] > 0 && do_clear(e, pg, d, t, dec.value, rec->ts))
                return MCS_EDB;
            alarm_apply(t, &d->st[t], &dec);
            break;
        }
    }
    return 0;
}

/* The repeats of every open alarm of the batch in one statement (a device
 * that stays over its limit costs no round trip of its own). */
static int flush_all_pending(struct alarm_engine *e, PGconn *pg)
{
    struct sbuf c[6] = {{0}};
    int n = 0, rc = 0;

    for(size_t i = 0; i < e->nscr; i++) {
        struct aldev *d = &e->scr[i];
        uint8_t mask = 0;
        if(!d->known)
            continue;
        for(int t = 0; t < AL_NTYPES; t++) {
            if(d->pend_count[t] && d->id[t] > 0) {
                char id[24], cnt[16], last[32], ts[24], peak[32], lv[8];
                const char *pl, *pp;
                snprintf(id, sizeof(id), "%lld", d->id[t]);
                snprintf(cnt, sizeof(cnt), "%d", d->pend_count[t]);
                snprintf(ts, sizeof(ts), "%" PRId64, d->pend_ts[t]);
                snprintf(lv, sizeof(lv), "%d", d->st[t].level ? d->st[t].level : 1);
                fmt_num(last, sizeof(last), d->pend_last[t], &pl);
                fmt_num(peak, sizeof(peak), d->st[t].peak, &pp);
                sb_elem(&c[0], id);
                sb_elem(&c[1], cnt);
                sb_elem(&c[2], pl);
                sb_elem(&c[3], ts);
                sb_elem(&c[4], pp);
                sb_elem(&c[5], lv);
                d->pend_count[t] = 0;
                n++;
            }
            if(d->st[t].open)
                mask |= (uint8_t)(1u << t);
        }
        /* The hint that makes the device's next readings interesting (a
         * clear needs them); without room for it, re-read them all soon. */
        if(alarm_state_set_open(&e->state, d->sn, mask))
            e->next_open_ms = 0;
    }
    for(int k = 0; k < 6; k++) {
        sb_end(&c[k]);
        if(c[k].oom)
            rc = MCS_ENOMEM;
    }
    if(!rc && n) {
        const char *p[6] = {c[0].p, c[1].p, c[2].p, c[3].p, c[4].p, c[5].p};
        PGresult *r = q(e, pg,
                        "UPDATE alarm_logs a SET count = a.count + x.cnt,"
                        " last_value = COALESCE(x.last, a.last_value), last_at = to_timestamp(x.ts),"
                        " peak_value = COALESCE(x.peak, a.peak_value),"
                        " level = GREATEST(a.level, x.lvl) FROM unnest($1::bigint[], $2::int[],"
                        " $3::float8[], $4::bigint[], $5::float8[], $6::smallint[])"
                        " AS x(id, cnt, last, ts, peak, lvl) WHERE a.id = x.id",
                        6, p);
        if(!r)
            rc = MCS_EDB;
        PQclear(r);
    }
    for(int k = 0; k < 6; k++)
        free(c[k].p);
    return rc == MCS_ENOMEM ? MCS_EDB : rc;
}

/* Whether rec needs decisions: an open-alarm hint of its device, or a
 * condition under the device's limits as the registry has them (kept
 * current by devsync's LISTEN mcs_device: a limit edited in the database
 * applies without a restart). */
static int rec_interesting(struct alarm_engine *e, const struct mcs_jrec *rec, const char *sn)
{
    struct alarm_sample s;
    double high = NAN, low = NAN;
    if(e->reg)
        registry_get_alarm_limits(e->reg, sn, &high, &low);
    sample_of(rec, &s);
    return alarm_state_interesting(&e->state, sn, high, low, &s);
}

/* The decisions of the batch; MCS_EDB on any statement failure (e->err). */
static int eval_inner(struct alarm_engine *e, PGconn *pg, const struct mcs_jrec *recs, size_t n,
                      int need_open)
{
    struct alarm_cfg cfg;

    alarm_engine_get_cfg(e, &cfg);
    if(need_open) {
        if(refresh_open(e, pg))
            return MCS_EDB;
        e->next_open_ms = mcs_mono_ms() + OPEN_REFRESH_MS;
    }
    /* The devices to decide: an open-alarm hint, or a sample that meets a
     * condition under their limits; every record of such a device is then
     * decided, in journal order. */
    for(size_t i = 0; i < n; i++) {
        char sn[MCS_SN_MAX + 1];
        jrec_sn(&recs[i], sn);
        if(rec_interesting(e, &recs[i], sn) && scr_add(e, sn)) {
            snprintf(e->err, sizeof(e->err), "out of memory");
            return MCS_EDB;
        }
    }
    if(!e->nscr)
        return 0;
    if(e->rec_cap < n) {
        uint32_t *nr = realloc(e->rec_dev, n * sizeof(*nr));
        if(!nr) {
            snprintf(e->err, sizeof(e->err), "out of memory");
            return MCS_EDB;
        }
        e->rec_dev = nr;
        e->rec_cap = n;
    }
    for(size_t i = 0; i < n; i++) {
        char sn[MCS_SN_MAX + 1];
        jrec_sn(&recs[i], sn);
        struct aldev *d = scr_find(e, sn);
        e->rec_dev[i] = d ? (uint32_t)(d - e->scr) : UINT32_MAX;
    }
    if(load_limits(e, pg) || lock_open(e, pg))
        return MCS_EDB;
    for(size_t i = 0; i < n; i++) {
        struct aldev *d = e->rec_dev[i] == UINT32_MAX ? NULL : &e->scr[e->rec_dev[i]];
        if(d && d->known && eval_record(e, pg, &cfg, d, &recs[i]))
            return MCS_EDB;
    }
    if(flush_raises(e, pg, &cfg))
        return MCS_EDB;
    return flush_all_pending(e, pg);
}

static void publish_sizes(struct alarm_engine *e)
{
    size_t nopen = alarm_state_nopen(&e->state);
    size_t bytes = alarm_state_bytes(&e->state) + e->scr_cap * sizeof(*e->scr) +
                   e->bmap.cap * e->bmap.slot_size + e->rec_cap * sizeof(*e->rec_dev) +
                   e->praise_cap * sizeof(*e->praise);
    pthread_mutex_lock(&e->mu);
    e->stats.dev_open = nopen;
    e->stats.state_bytes = bytes;
    pthread_mutex_unlock(&e->mu);
}

int alarm_eval_batch(struct alarm_engine *e, PGconn *pg, const struct mcs_jrec *recs, size_t n,
                     char *err, size_t errn)
{
    int need_open = 0, rc = 0, any;

    if(!e || !n)
        return 0;
    if(pg != e->last_pg || PQbackendPID(pg) != e->last_pid) {
        /* A new connection: anything may have changed meanwhile. */
        e->last_pg = pg;
        e->last_pid = PQbackendPID(pg);
        need_open = 1;
    }
    if(mcs_mono_ms() >= e->next_open_ms)
        need_open = 1;
    if(n == e->sig_n && recs[0].recv_us == e->sig_first && recs[n - 1].recv_us == e->sig_last) {
        /* The store retries a batch whose transaction failed after our
         * decisions: what we remember of it was rolled back too. */
        need_open = 1;
    }
    e->sig_n = n;
    e->sig_first = recs[0].recv_us;
    e->sig_last = recs[n - 1].recv_us;
    e->nscr = 0;
    e->npraise = 0;
    any = need_open;
    /* The common case: no open alarm, no reading over a limit: only the
     * conditions, in memory. */
    for(size_t i = 0; i < n && !any; i++) {
        char sn[MCS_SN_MAX + 1];
        jrec_sn(&recs[i], sn);
        any = rec_interesting(e, &recs[i], sn);
    }
    if(!any || !eval_inner(e, pg, recs, n, need_open))
        goto out;
    /* No savepoint: a batch's readings and its decisions commit together or
     * not at all (issue #15). A failed evaluation (deadlock, lock or
     * statement timeout, any refused statement) fails the whole batch; the
     * store rolls it back and tries the same batch again, the journal does
     * not advance, and the retry decides again from what is committed. */
    rc = PQstatus(pg) == CONNECTION_BAD ? MCS_EDB : MCS_EAGAIN;
    LOG_W("alarm", "alarm decisions of a batch failed; the batch is rolled back and retried",
          LS("error", e->err));
    STAT(e, errors);
    e->next_open_ms = 0;
out:
    scr_reset(e);
    publish_sizes(e);
    if(rc)
        snprintf(err, errn, "alarm engine: %s", e->err);
    return rc;
}
