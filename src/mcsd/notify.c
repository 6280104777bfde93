/* notify.c - the notifier threads of mcsd (see notify.h). Owns one
 * PostgreSQL connection per thread and the relay's Redis connection; must
 * not touch the journal or the store's connection. Threads: one per channel
 * plus one housekeeping thread. */
#include "pglocks.h"
#include "notify.h"
#include "alarm_db.h"
#include "conn.h"
#include "err.h"
#include "log.h"
#include "notify_chan.h"
#include "secret.h"
#include "sysalarm.h"
#include "timeutil.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLAIM_MAX 2000        /* outbox rows per transaction: a storm goes in few digests */
#define SEND_BUDGET_MS 5000   /* stop starting sends after this long in one transaction */
#define RELAY_LOCK MCS_LOCK_ALARM_RELAY /* the one instance relaying events */
#define MAX_CHANNELS 8

struct mcs_notify;

struct chan_worker {
    struct mcs_notify *nt;
    const struct notify_channel *ch;
    pthread_t th;
    int started;
    PGconn *pg;
    int64_t sent_ms[128]; /* ring of recent send times, for the platform limits */
    unsigned sent_i;
    int64_t throttled_until_ms;
    double query_after_s; /* sms: wait before QuerySendDetails */
    int daily_cap;        /* sms: texts per number and day */
};

struct mcs_notify {
    struct mcsd *d;
    struct alarm_engine *eng;
    struct mcs_secret_key key;
    _Atomic int stop;
    pthread_t hk;
    int hk_started;
    struct chan_worker w[MAX_CHANNELS];
    int nw;
};

static void sleep_unless_stopped(struct mcs_notify *nt, int64_t ms)
{
    while(ms > 0 && !atomic_load(&nt->stop)) {
        int64_t step = ms < 50 ? ms : 50;
        mcs_sleep_ms(step);
        ms -= step;
    }
}

static PGconn *connect_pg(struct mcs_notify *nt, const char *app)
{
    char err[512];
    PGconn *pg = mcs_pg_connect(nt->d->cfg, app, err, sizeof(err));
    if(!pg)
        LOG_W("notify", "database unavailable", LS("thread", app), LS("error", err));
    return pg;
}

static int exec(PGconn *pg, const char *sql)
{
    char err[256];
    return mcs_pg_exec(pg, sql, err, sizeof(err));
}

static PGresult *qp(PGconn *pg, const char *sql, int n, const char *const *p)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, p, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    LOG_W("notify", "statement failed", LS("error", PQresultErrorMessage(r)));
    PQclear(r);
    return NULL;
}

/* ---- channel workers ---- */

/* 1 when a message may go now under the platform limits. */
static int rate_ok(struct chan_worker *w, int64_t now)
{
    const struct notify_channel *ch = w->ch;
    unsigned ring = sizeof(w->sent_ms) / sizeof(w->sent_ms[0]);
    if(now < w->throttled_until_ms)
        return 0;
    if(ch->per_min && (unsigned)ch->per_min <= ring) {
        int64_t t = w->sent_ms[(w->sent_i + ring - (unsigned)ch->per_min) % ring];
        if(t && now - t < 60000)
            return 0;
    }
    if(ch->per_sec && (unsigned)ch->per_sec <= ring) {
        int64_t t = w->sent_ms[(w->sent_i + ring - (unsigned)ch->per_sec) % ring];
        if(t && now - t < 1000)
            return 0;
    }
    return 1;
}

static void rate_note(struct chan_worker *w, int64_t now)
{
    unsigned ring = sizeof(w->sent_ms) / sizeof(w->sent_ms[0]);
    w->sent_ms[w->sent_i % ring] = now;
    w->sent_i = (w->sent_i + 1) % ring;
}

struct row {
    long long id, alarm_id;
    int level, attempts;
    int was_unknown; /* an earlier send timed out: ask the platform first */
    struct notify_msg msg;
    char recipients[512];
    /* outcome */
    int done;      /* tried in this transaction */
    struct notify_result res;
    long long digest_id;
    int dur_ms;
};

static void fill_row(struct row *r, PGresult *res, int i)
{
    memset(r, 0, sizeof(*r));
    r->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    r->alarm_id = PQgetisnull(res, i, 1) ? 0 : strtoll(PQgetvalue(res, i, 1), NULL, 10);
    snprintf(r->msg.event, sizeof(r->msg.event), "%s", PQgetvalue(res, i, 2));
    r->level = (int)strtol(PQgetvalue(res, i, 3), NULL, 10);
    r->attempts = (int)strtol(PQgetvalue(res, i, 4), NULL, 10);
    snprintf(r->recipients, sizeof(r->recipients), "%s", PQgetvalue(res, i, 5));
    snprintf(r->msg.sn, sizeof(r->msg.sn), "%s", PQgetvalue(res, i, 6));
    snprintf(r->msg.type, sizeof(r->msg.type), "%s", PQgetvalue(res, i, 7));
    snprintf(r->msg.category, sizeof(r->msg.category), "%s", PQgetvalue(res, i, 8));
    snprintf(r->msg.name, sizeof(r->msg.name), "%s", PQgetvalue(res, i, 9));
    snprintf(r->msg.location, sizeof(r->msg.location), "%s", PQgetvalue(res, i, 10));
    snprintf(r->msg.unit, sizeof(r->msg.unit), "%s", PQgetvalue(res, i, 11));
    snprintf(r->msg.val, sizeof(r->msg.val), "%s", PQgetvalue(res, i, 12));
    snprintf(r->msg.threshold, sizeof(r->msg.threshold), "%s", PQgetvalue(res, i, 13));
    snprintf(r->msg.time, sizeof(r->msg.time), "%s", PQgetvalue(res, i, 14));
    r->msg.count = strtoll(PQgetvalue(res, i, 15), NULL, 10);
    r->was_unknown = !strcmp(PQgetvalue(res, i, 16), "unknown");
    snprintf(r->msg.detail, sizeof(r->msg.detail), "%s", PQgetvalue(res, i, 17));
    snprintf(r->msg.last_seen, sizeof(r->msg.last_seen), "%s", PQgetvalue(res, i, 18));
    r->msg.level = r->level;
    r->msg.alarm_id = r->alarm_id;
    r->msg.recipients = r->recipients[0] ? r->recipients : NULL;
}

/* SMS: the configured (or escalation) numbers still under the daily cap
 * (Aliyun: 50 notification texts per signature, template and number a day).
 * Returns 0 with out set ("" when none is left) or MCS_EDB. */
static int sms_under_cap(struct chan_worker *w, const cJSON *cfg, const struct notify_msg *m,
                         char *out, size_t outn)
{
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(cfg, "phones");
    const char *phones = m->recipients ? m->recipients : cJSON_IsString(ph) ? ph->valuestring : "";
    char cap[16];
    const char *p[2] = {phones, cap};
    snprintf(cap, sizeof(cap), "%d", w->daily_cap);
    PGresult *r = qp(w->pg,
                     "SELECT COALESCE(string_agg(p, ',' ORDER BY o), '') FROM unnest(string_to_array("
                     " replace(replace($1, ' ', ''), ';', ','), ',')) WITH ORDINALITY AS x(p, o)"
                     " WHERE p <> '' AND COALESCE((SELECT sent FROM alarm_sms_daily WHERE day ="
                     " (now() AT TIME ZONE 'Asia/Shanghai')::date AND phone = p), 0) < $2::int",
                     2, p);
    if(!r)
        return MCS_EDB;
    snprintf(out, outn, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

static void sms_count(struct chan_worker *w, const char *phones)
{
    const char *p[1] = {phones};
    PGresult *r = qp(w->pg,
                     "INSERT INTO alarm_sms_daily (day, phone, sent) SELECT (now() AT TIME ZONE"
                     " 'Asia/Shanghai')::date, p, 1 FROM unnest(string_to_array($1, ',')) p"
                     " ON CONFLICT (day, phone) DO UPDATE SET sent = alarm_sms_daily.sent + 1",
                     1, p);
    PQclear(r);
}

static void do_send(struct chan_worker *w, const cJSON *cfg, struct notify_msg *m,
                    struct notify_result *res, int *dur)
{
    int64_t t0 = mcs_mono_ms();
    char phones[512];
    const char *given = m->recipients;
    int sms = !strcmp(w->ch->name, "sms");
    memset(res, 0, sizeof(*res));
    if(sms) {
        if(sms_under_cap(w, cfg, m, phones, sizeof(phones))) {
            snprintf(res->detail, sizeof(res->detail), "daily cap check failed");
            res->retry = 1;
            return;
        }
        if(!phones[0]) {
            snprintf(res->detail, sizeof(res->detail), "daily cap of %d texts reached for every number",
                     w->daily_cap);
            return; /* not retried: tomorrow is too late for this alarm */
        }
        m->recipients = phones;
    }
    res->cancel = &w->nt->stop;
    w->ch->send(cfg, &w->nt->key, m, w->nt->d->cfg->notify_timeout_ms, res);
    if(sms && res->ok)
        sms_count(w, phones);
    m->recipients = given; /* phones is about to go out of scope */
    *dur = (int)(mcs_mono_ms() - t0);
    rate_note(w, mcs_now_ms());
    if(res->throttled)
        w->throttled_until_ms = mcs_now_ms() + (!strcmp(w->ch->name, "dingtalk") ? 600000 : 60000);
}

/* Writes the outcome of row r (inside the claim transaction). */
static int write_outcome(struct chan_worker *w, const struct alarm_cfg *ac, struct row *r)
{
    char id[24], att[16], http[16], dur[16], due[32], dig[24];
    const char *status;
    double backoff = 0;
    PGresult *res;

    r->attempts++;
    if(r->res.ok)
        status = r->digest_id && r->digest_id != r->id ? "digested" : "sent";
    else if(r->res.unknown) {
        /* Not resent blindly: asked about (verify) after query_after_s. */
        status = "unknown";
        backoff = r->attempts >= ac->max_attempts ? 1e9 : w->query_after_s;
    }
    else if(r->res.throttled || (r->res.retry && r->attempts < ac->max_attempts)) {
        status = "pending";
        backoff = ac->backoff_s * pow(2, r->attempts - 1);
        if(backoff > ac->backoff_max_s)
            backoff = ac->backoff_max_s;
        if(r->res.throttled && w->throttled_until_ms > mcs_now_ms())
            backoff = (double)(w->throttled_until_ms - mcs_now_ms()) / 1000.0;
    }
    else
        status = "failed";
    snprintf(id, sizeof(id), "%lld", r->id);
    snprintf(att, sizeof(att), "%d", r->attempts);
    snprintf(http, sizeof(http), "%ld", r->res.http);
    snprintf(dur, sizeof(dur), "%d", r->dur_ms);
    snprintf(due, sizeof(due), "%.3f", backoff);
    snprintf(dig, sizeof(dig), "%lld", r->digest_id);
    const char *p[9] = {id,   status, att,  r->res.ok ? "t" : "f",
                        http, dur,    due,  r->res.detail,
                        r->res.provider_id[0] ? r->res.provider_id : NULL};
    const char *p2[10] = {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8],
                          r->digest_id ? dig : NULL};
    res = qp(w->pg,
             "WITH u AS (UPDATE alarm_outbox SET status = $2, attempts = $3::int,"
             " due_at = now() + make_interval(secs => $7::float8),"
             " sent_at = CASE WHEN $4::bool THEN now() ELSE sent_at END,"
             " last_error = CASE WHEN $4::bool THEN NULL ELSE $8 END,"
             " provider_id = COALESCE($9, provider_id), digest_id = $10::bigint"
             " WHERE id = $1::bigint RETURNING id)"
             " INSERT INTO alarm_attempts (outbox_id, instance, ok, http_status, duration_ms, detail)"
             " SELECT id, current_setting('application_name'), $4::bool, $5::int, $6::int, $8 FROM u",
             10, p2);
    if(!res)
        return MCS_EDB;
    PQclear(res);
    if(!strcmp(status, "failed")) {
        /* The failure is an alarm of its own, visible on screens. */
        char sn[32], msg[256];
        snprintf(sn, sizeof(sn), "channel:%s", w->ch->name);
        snprintf(msg, sizeof(msg), "notification %lld (alarm %lld) failed: %.160s", r->id, r->alarm_id,
                 r->res.detail);
        const char *p3[2] = {sn, msg};
        res = qp(w->pg,
                 "INSERT INTO alarm_logs (sn, alarm_type, category, level, message)"
                 " VALUES ($1, 'NOTIFY_FAILED', 'system', 1, $2)"
                 " ON CONFLICT (sn, alarm_type) WHERE cleared_at IS NULL AND"
              " alarm_type <> 'UNKNOWN_DEVICE' DO UPDATE"
                 " SET count = alarm_logs.count + 1, message = EXCLUDED.message",
                 2, p3);
        if(!res)
            return MCS_EDB;
        PQclear(res);
    }
    else if(r->res.ok) {
        /* A channel that works again clears its failure alarm. */
        char sn[32];
        snprintf(sn, sizeof(sn), "channel:%s", w->ch->name);
        const char *p3[1] = {sn};
        res = qp(w->pg,
                 "UPDATE alarm_logs SET cleared_at = now() WHERE sn = $1 AND"
                 " alarm_type = 'NOTIFY_FAILED' AND cleared_at IS NULL",
                 1, p3);
        if(!res)
            return MCS_EDB;
        PQclear(res);
    }
    return 0;
}

/* alarm_logs.channels := the newest outcome per channel, after commit, one
 * row per statement (never two alarm rows locked at once: no deadlock with
 * the store thread's batch). */
static void update_summary(struct chan_worker *w, long long alarm_id)
{
    char id[24];
    const char *p[1] = {id};
    snprintf(id, sizeof(id), "%lld", alarm_id);
    PGresult *r = qp(w->pg,
                     "UPDATE alarm_logs SET channels = COALESCE((SELECT string_agg(channel || ':'"
                     " || status, ',' ORDER BY channel) FROM (SELECT DISTINCT ON (channel)"
                     " channel, status FROM alarm_outbox WHERE alarm_id = $1::bigint ORDER BY"
                     " channel, id DESC) x), ''), notified = notified OR EXISTS (SELECT 1 FROM"
                     " alarm_outbox WHERE alarm_id = $1::bigint AND status IN ('sent','digested'))"
                     " WHERE id = $1::bigint",
                     1, p);
    PQclear(r);
}

static cJSON *load_channel_cfg(PGconn *pg, const char *name, int *ok)
{
    char key[64];
    const char *p[1] = {key};
    cJSON *c = NULL;
    snprintf(key, sizeof(key), "alarm.channel.%s", name);
    PGresult *r = qp(pg, "SELECT value::text FROM system_config WHERE key = $1", 1, p);
    *ok = r != NULL;
    if(r && PQntuples(r) == 1)
        c = cJSON_Parse(PQgetvalue(r, 0, 0));
    PQclear(r);
    return c;
}

/* One claim-send-record round. Returns rows handled, 0 when idle, or
 * MCS_EDB. */
static int chan_round(struct chan_worker *w, const cJSON *cfg, const struct alarm_cfg *ac)
{
    struct row *rows = NULL;
    int n = 0, rc = 0;
    PGresult *res;
    char lim[16];
    const char *p[3] = {w->ch->name, ac->tz, lim};
    int64_t t0 = mcs_mono_ms();

    /* A channel that must not resend blindly (SMS) takes one row at a time:
     * see the 'unknown' mark below. */
    snprintf(lim, sizeof(lim), "%d", w->ch->verify ? 1 : CLAIM_MAX);
    if(exec(w->pg, "BEGIN"))
        return MCS_EDB;
    res = qp(w->pg,
             "SELECT o.id, o.alarm_id, o.event, o.level, o.attempts, COALESCE(o.recipients, ''),"
             " COALESCE(a.sn, ''), COALESCE(a.alarm_type, 'TEST'), COALESCE(a.category, 'system'),"
             " COALESCE(d.name, ''), COALESCE(d.location, ''), COALESCE(d.unit, ''),"
             " COALESCE(trim_scale(round((CASE WHEN o.event = 'raise' THEN a.value ELSE"
             "  a.last_value END)::numeric, 2))::text, ''),"
             " COALESCE(trim_scale(round(a.threshold::numeric, 2))::text, ''),"
             " to_char(COALESCE(CASE WHEN o.event = 'clear' THEN a.cleared_at END, a.triggered_at,"
             "  now()) AT TIME ZONE $2, 'YYYY-MM-DD HH24:MI:SS'),"
             " COALESCE(a.count, 0), o.status, COALESCE(a.message, ''),"
             " COALESCE(to_char(d.last_seen AT TIME ZONE $2, 'YYYY-MM-DD HH24:MI:SS'), '')"
             " FROM alarm_outbox o LEFT JOIN alarm_logs a ON a.id = o.alarm_id"
             " LEFT JOIN devices d ON d.sn = a.sn"
             " WHERE o.channel = $1 AND o.status IN ('pending', 'unknown') AND o.due_at <= now()"
             " ORDER BY o.level DESC, o.id LIMIT $3::int FOR UPDATE OF o SKIP LOCKED",
             3, p);
    if(!res) {
        rc = MCS_EDB;
        goto fail;
    }
    n = PQntuples(res);
    if(n == 0) {
        PQclear(res);
        return exec(w->pg, "COMMIT") ? MCS_EDB : 0;
    }
    rows = calloc((size_t)n, sizeof(*rows));
    if(!rows) {
        PQclear(res);
        rc = MCS_ENOMEM;
        goto fail;
    }
    for(int i = 0; i < n; i++) {
        fill_row(&rows[i], res, i);
        rows[i].msg.tz_offset_s = ac->tz_offset_s;
    }
    PQclear(res);
    if(w->ch->verify) {
        /* Committed as 'unknown' before the request leaves: a crash while
         * sending leaves a row that is verified (QuerySendDetails) before
         * any second text. Its due time keeps other instances away until
         * this request has surely ended. */
        char id[24], due[32];
        double d = w->query_after_s;
        double min_d = w->nt->d->cfg->notify_timeout_ms / 1000.0 + 5;
        snprintf(id, sizeof(id), "%lld", rows[0].id);
        snprintf(due, sizeof(due), "%.3f", d > min_d ? d : min_d);
        const char *pm[2] = {id, due};
        PGresult *m = qp(w->pg,
                         "UPDATE alarm_outbox SET status = 'unknown', due_at = now() +"
                         " make_interval(secs => $2::float8) WHERE id = $1::bigint",
                         2, pm);
        if(!m || exec(w->pg, "COMMIT") || exec(w->pg, "BEGIN")) {
            PQclear(m);
            rc = MCS_EDB;
            goto fail;
        }
        PQclear(m);
    }

    /* Level 2 (and tests, escalations) first and each on its own; level-1
     * alarms beyond the digest threshold go as one message. */
    int n1 = 0;
    for(int i = 0; i < n; i++)
        if(rows[i].level < 2 && !strcmp(rows[i].msg.event, "raise") && !rows[i].was_unknown)
            n1++;
    int digest = n1 > ac->digest_threshold;
    for(int i = 0; i < n; i++) {
        struct row *r = &rows[i];
        if(digest && r->level < 2 && !strcmp(r->msg.event, "raise") && !r->was_unknown)
            continue;
        if(mcs_mono_ms() - t0 > SEND_BUDGET_MS || !rate_ok(w, mcs_now_ms()) ||
           atomic_load(&w->nt->stop))
            break;
        if(r->was_unknown && w->ch->verify) {
            /* Never a second text for one alarm: ask first. */
            int64_t v0 = mcs_mono_ms();
            memset(&r->res, 0, sizeof(r->res));
            r->res.cancel = &w->nt->stop;
            int found = w->ch->verify(cfg, &w->nt->key, &r->msg, w->nt->d->cfg->notify_timeout_ms,
                                      &r->res);
            memset(&r->res, 0, sizeof(r->res));
            r->dur_ms = (int)(mcs_mono_ms() - v0);
            r->done = 1;
            if(found == 1) {
                r->res.ok = 1;
                snprintf(r->res.detail, sizeof(r->res.detail), "delivered (QuerySendDetails)");
                continue;
            }
            if(found < 0) {
                r->res.unknown = 1;
                snprintf(r->res.detail, sizeof(r->res.detail), "QuerySendDetails failed");
                continue;
            }
        }
        do_send(w, cfg, &r->msg, &r->res, &r->dur_ms);
        r->done = 1;
    }
    if(digest && rate_ok(w, mcs_now_ms()) && !atomic_load(&w->nt->stop)) {
        size_t cap = 4000, len = 0;
        char *text = malloc(cap);
        struct row *first = NULL;
        int cnt = 0;
        if(text) {
            len = (size_t)snprintf(text, cap, "【报警汇总】%d 条一级报警：\n", n1);
            for(int i = 0; i < n; i++) {
                struct row *r = &rows[i];
                char line[600];
                if(r->level >= 2 || strcmp(r->msg.event, "raise") || r->was_unknown)
                    continue;
                notify_render("{type_text} {name}({sn}) {location} {val}{unit} / {threshold}{unit}"
                              " {time}\n",
                              &r->msg, 0, line, sizeof(line));
                if(len + strlen(line) + 16 < cap) {
                    memcpy(text + len, line, strlen(line) + 1);
                    len += strlen(line);
                }
                else if(len + 16 < cap) {
                    len += (size_t)snprintf(text + len, cap - len, "……\n");
                    cap = len; /* full */
                }
                if(!first)
                    first = r;
                cnt++;
            }
            struct notify_msg dm = first->msg;
            snprintf(dm.event, sizeof(dm.event), "digest");
            dm.text = text;
            dm.count = cnt;
            dm.recipients = NULL;
            struct notify_result dres;
            int dur = 0;
            do_send(w, cfg, &dm, &dres, &dur);
            for(int i = 0; i < n; i++) {
                struct row *r = &rows[i];
                if(r->level >= 2 || strcmp(r->msg.event, "raise") || r->was_unknown)
                    continue;
                r->res = dres;
                r->dur_ms = dur;
                r->done = 1;
                r->digest_id = first->id;
            }
            free(text);
        }
    }
    for(int i = 0; i < n; i++)
        if(rows[i].done && write_outcome(w, ac, &rows[i])) {
            rc = MCS_EDB;
            goto fail;
        }
    if(exec(w->pg, "COMMIT")) {
        rc = MCS_EDB;
        goto fail;
    }
    for(int i = 0; i < n; i++) {
        if(!rows[i].done)
            continue;
        if(rows[i].alarm_id)
            update_summary(w, rows[i].alarm_id);
        if(rows[i].res.ok)
            LOG_I("notify", "sent", LS("channel", w->ch->name), LI("outbox", rows[i].id),
                  LI("alarm", rows[i].alarm_id), LS("event", rows[i].msg.event));
        else
            LOG_W("notify", "send failed", LS("channel", w->ch->name), LI("outbox", rows[i].id),
                  LI("alarm", rows[i].alarm_id), LS("detail", rows[i].res.detail));
    }
    free(rows);
    return n;
fail:
    free(rows);
    if(PQstatus(w->pg) != CONNECTION_BAD)
        exec(w->pg, "ROLLBACK");
    return rc;
}

static void *chan_main(void *arg)
{
    struct chan_worker *w = arg;
    struct mcs_notify *nt = w->nt;
    char app[96];
    cJSON *cfg = NULL;
    int64_t next_cfg = 0;
    int enabled = 0;

    snprintf(app, sizeof(app), "%s/notify-%s", nt->d->cfg->instance_id, w->ch->name);
    while(!atomic_load(&nt->stop)) {
        if(!w->pg || PQstatus(w->pg) == CONNECTION_BAD) {
            PQfinish(w->pg);
            w->pg = connect_pg(nt, app);
            if(!w->pg) {
                sleep_unless_stopped(nt, 2000);
                continue;
            }
            next_cfg = 0;
        }
        if(mcs_mono_ms() >= next_cfg) {
            int ok;
            cJSON *c = load_channel_cfg(w->pg, w->ch->name, &ok);
            if(ok) {
                cJSON_Delete(cfg);
                cfg = c;
                const cJSON *en = cJSON_GetObjectItemCaseSensitive(cfg, "enabled");
                const cJSON *qa = cJSON_GetObjectItemCaseSensitive(cfg, "query_after_s");
                const cJSON *dc = cJSON_GetObjectItemCaseSensitive(cfg, "daily_cap");
                enabled = cJSON_IsTrue(en);
                w->query_after_s = cJSON_IsNumber(qa) ? qa->valuedouble : 30;
                w->daily_cap = cJSON_IsNumber(dc) ? (int)dc->valuedouble : 50;
                if(!enabled) {
                    /* Rows written while it was on are not sent later by
                     * surprise: dropped, visibly. */
                    const char *p[1] = {w->ch->name};
                    PGresult *r = qp(w->pg,
                                     "UPDATE alarm_outbox SET status = 'dropped', last_error ="
                                     " 'channel off' WHERE channel = $1 AND status = 'pending'",
                                     1, p);
                    PQclear(r);
                }
            }
            next_cfg = mcs_mono_ms() + 1000;
        }
        if(!enabled || mcs_now_ms() < w->throttled_until_ms) {
            sleep_unless_stopped(nt, enabled ? 200 : 500);
            continue;
        }
        struct alarm_cfg ac;
        alarm_engine_get_cfg(nt->eng, &ac);
        int n = chan_round(w, cfg, &ac);
        if(n <= 0)
            sleep_unless_stopped(nt, n < 0 ? 1000 : nt->d->cfg->notify_poll_ms);
    }
    cJSON_Delete(cfg);
    PQfinish(w->pg);
    w->pg = NULL;
    return NULL;
}

/* ---- housekeeping ---- */

struct hk {
    struct mcs_notify *nt;
    PGconn *pg;
    redisContext *rds;
    int relay;        /* holds the relay lock and LISTENs */
    int64_t next_redis_ms;
    char last_mirror[40]; /* alarm_notify_state mirrored up to this time */
    struct sysalarm_cfg sys;
};

static int ensure_redis(struct hk *h)
{
    if(!h->rds && mcs_mono_ms() >= h->next_redis_ms) {
        char err[256];
        h->rds = mcs_redis_connect(h->nt->d->cfg, err, sizeof(err));
        if(!h->rds)
            h->next_redis_ms = mcs_mono_ms() + 2000;
    }
    return h->rds != NULL;
}

/* The seed's debounce key alarm:last:{sn}:{type} (R-AL-2) as a mirror of
 * alarm_notify_state, for operators and tools: the decision itself is made
 * in PostgreSQL, in the alarm's transaction. Relay instance only. */
static void mirror_last(struct hk *h, const struct alarm_cfg *ac)
{
    const char *p[1] = {h->last_mirror[0] ? h->last_mirror : "-infinity"};
    if(!h->relay || !ensure_redis(h))
        return;
    PGresult *r = qp(h->pg,
                     "SELECT sn, alarm_type, extract(epoch FROM last_notified_at)::bigint,"
                     " last_notified_at::text FROM alarm_notify_state"
                     " WHERE last_notified_at > $1::timestamptz ORDER BY last_notified_at LIMIT 5000",
                     1, p);
    if(!r)
        return;
    long long ex = (long long)ac->debounce_s + 1;
    for(int i = 0; i < PQntuples(r); i++) {
        redisReply *rep = redisCommand(h->rds, "SET alarm:last:%s:%s %s EX %lld",
                                       PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                                       PQgetvalue(r, i, 2), ex > 0 ? ex : 1);
        if(!rep) {
            redisFree(h->rds);
            h->rds = NULL;
            break;
        }
        freeReplyObject(rep);
        snprintf(h->last_mirror, sizeof(h->last_mirror), "%s", PQgetvalue(r, i, 3));
    }
    PQclear(r);
}

static void relay_events(struct hk *h)
{
    PGnotify *n;
    if(!h->relay)
        return;
    PQconsumeInput(h->pg);
    while((n = PQnotifies(h->pg))) {
        if(ensure_redis(h)) {
            redisReply *r = redisCommand(h->rds, "PUBLISH mcs:alarm %s", n->extra);
            if(!r) {
                redisFree(h->rds);
                h->rds = NULL;
            }
            freeReplyObject(r);
        }
        PQfreemem(n);
    }
}

static void take_relay(struct hk *h)
{
    if(h->relay)
        return;
    PGresult *r = PQexec(h->pg, "SELECT pg_try_advisory_lock(" RELAY_LOCK ")");
    if(PQresultStatus(r) == PGRES_TUPLES_OK && !strcmp(PQgetvalue(r, 0, 0), "t")) {
        if(!exec(h->pg, "LISTEN mcs_alarm")) {
            h->relay = 1;
            LOG_I("notify", "relaying alarm events to Redis mcs:alarm");
        }
    }
    PQclear(r);
}

static void offline_scan(struct hk *h, const struct alarm_cfg *ac)
{
    char secs[32];
    const char *p[1] = {secs};
    snprintf(secs, sizeof(secs), "%.3f", ac->offline_s);
    PGresult *r = qp(h->pg,
                     "SELECT d.sn FROM devices d WHERE d.enabled AND d.last_seen IS NOT NULL"
                     " AND d.last_seen < now() - make_interval(secs => $1::float8)"
                     " AND NOT EXISTS (SELECT 1 FROM alarm_logs a WHERE a.sn = d.sn AND"
                     "  a.alarm_type = 'OFFLINE' AND a.cleared_at IS NULL)"
                     " AND NOT EXISTS (SELECT 1 FROM sensor_data s WHERE s.sn = d.sn AND"
                     "  s.time > now() - make_interval(secs => $1::float8))"
                     " LIMIT 500",
                     1, p);
    if(!r)
        return;
    for(int i = 0; i < PQntuples(r) && !atomic_load(&h->nt->stop); i++) {
        if(exec(h->pg, "BEGIN"))
            break;
        int rc = alarm_raise_one(h->pg, ac, h->nt->d->cfg->instance_id, PQgetvalue(r, i, 0),
                                 AL_OFFLINE, 1, NAN, ac->offline_s);
        if(rc < 0 || exec(h->pg, "COMMIT"))
            exec(h->pg, "ROLLBACK");
    }
    PQclear(r);
}

static void reminders(struct hk *h, const struct alarm_cfg *ac)
{
    char secs[32];
    const char *p[1] = {secs};
    if(!ac->reminders)
        return;
    snprintf(secs, sizeof(secs), "%.3f", ac->debounce_s);
    PGresult *r = qp(h->pg,
                     "SELECT a.id, a.sn, a.alarm_type, a.level FROM alarm_logs a"
                     " LEFT JOIN alarm_notify_state s ON s.sn = a.sn AND s.alarm_type = a.alarm_type"
                     " WHERE a.cleared_at IS NULL AND a.ack_at IS NULL AND a.category <> 'system'"
                     " AND COALESCE(s.last_notified_at, '-infinity') <="
                     "  now() - make_interval(secs => $1::float8)"
                     " AND a.triggered_at <= now() - make_interval(secs => $1::float8)"
                     " ORDER BY a.id LIMIT 200",
                     1, p);
    if(!r)
        return;
    for(int i = 0; i < PQntuples(r) && !atomic_load(&h->nt->stop); i++) {
        int level = (int)strtol(PQgetvalue(r, i, 3), NULL, 10);
        if(!alarm_may_send(&ac->sched, ac->level2_override, level, mcs_now_ms() / 1000,
                           ac->tz_offset_s))
            continue; /* outside the schedule: the next window reminds */
        const char *p2[1] = {PQgetvalue(r, i, 0)};
        if(exec(h->pg, "BEGIN"))
            break;
        PGresult *l = qp(h->pg,
                         "SELECT 1 FROM alarm_logs WHERE id = $1::bigint AND cleared_at IS NULL"
                         " AND ack_at IS NULL FOR UPDATE SKIP LOCKED",
                         1, p2);
        int rc = l && PQntuples(l) == 1
                     ? alarm_notify_event(h->pg, ac, strtoll(PQgetvalue(r, i, 0), NULL, 10),
                                          PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), "reminder",
                                          level, 0)
                     : 0;
        PQclear(l);
        if(!l || rc < 0 || exec(h->pg, "COMMIT"))
            exec(h->pg, "ROLLBACK");
    }
    PQclear(r);
}

static void escalation(struct hk *h, const struct alarm_cfg *ac)
{
    char secs[32];
    const char *p[1] = {secs};
    if(!ac->escalation)
        return;
    snprintf(secs, sizeof(secs), "%.3f", ac->escalate_after_s);
    /* One statement: whoever marks escalated_at writes the rows. */
    PGresult *r = qp(h->pg,
                     "WITH e AS (UPDATE alarm_logs SET escalated_at = now() WHERE id IN"
                     " (SELECT id FROM alarm_logs WHERE cleared_at IS NULL AND ack_at IS NULL"
                     "  AND escalated_at IS NULL AND category <> 'system'"
                     "  AND triggered_at <= now() - make_interval(secs => $1::float8)"
                     "  ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING id, level)"
                     " INSERT INTO alarm_outbox (alarm_id, channel, event, level, recipients)"
                     " SELECT e.id, substr(c.key, 15), 'escalate', e.level, c.value->>'escalate_to'"
                     " FROM e, system_config c WHERE c.key LIKE 'alarm.channel.%'"
                     " AND c.value->>'enabled' = 'true' AND COALESCE(c.value->>'escalate_to', '') <> ''",
                     1, p);
    PQclear(r);
}

static void sys_cfg_load(struct hk *h)
{
    PGresult *r = qp(h->pg, "SELECT value::text FROM system_config WHERE key = 'alarm.general'",
                     0, NULL);
    sysalarm_cfg_parse(&h->sys, r && PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : NULL);
    PQclear(r);
}

static void *hk_main(void *arg)
{
    struct hk h;
    struct mcs_notify *nt = arg;
    int64_t next_cfg = 0, next_scan = 0;
    char app[96];

    memset(&h, 0, sizeof(h));
    h.nt = nt;
    snprintf(app, sizeof(app), "%s/notify-hk", nt->d->cfg->instance_id);
    while(!atomic_load(&nt->stop)) {
        if(!h.pg || PQstatus(h.pg) == CONNECTION_BAD) {
            PQfinish(h.pg);
            h.relay = 0;
            h.pg = connect_pg(nt, app);
            if(!h.pg) {
                sleep_unless_stopped(nt, 2000);
                continue;
            }
            next_cfg = 0;
        }
        int64_t now = mcs_mono_ms();
        if(now >= next_cfg) {
            struct alarm_cfg c;
            if(alarm_cfg_load(h.pg, &c) == 0)
                alarm_engine_set_cfg(nt->eng, &c);
            sys_cfg_load(&h);
            take_relay(&h);
            next_cfg = now + 2000;
        }
        if(now >= next_scan) {
            struct alarm_cfg c;
            alarm_engine_get_cfg(nt->eng, &c);
            offline_scan(&h, &c);
            reminders(&h, &c);
            escalation(&h, &c);
            mirror_last(&h, &c);
            sysalarm_digest_unknown(h.pg, &h.sys, c.tz);
            next_scan = mcs_mono_ms() + 1000;
        }
        relay_events(&h);
        struct pollfd pf = {PQsocket(h.pg), POLLIN, 0};
        if(pf.fd >= 0)
            poll(&pf, 1, 100);
        else
            sleep_unless_stopped(nt, 100);
    }
    PQfinish(h.pg);
    if(h.rds)
        redisFree(h.rds);
    return NULL;
}

int notify_start(struct mcsd *d, struct mcs_notify **out)
{
    struct mcs_notify *nt;
    int rc;

    *out = NULL;
    if(!d->cfg->alarms_enabled)
        return 0;
    nt = calloc(1, sizeof(*nt));
    if(!nt)
        return MCS_ENOMEM;
    nt->d = d;
    nt->eng = alarm_engine_new(d->cfg->instance_id, &d->reg);
    if(!nt->eng) {
        free(nt);
        return MCS_ENOMEM;
    }
    rc = secret_key_load(&nt->key, d->cfg->secret_key, d->cfg->secret_key_file);
    if(rc && rc != MCS_ENOTFOUND)
        LOG_E("notify", "MCS_SECRET_KEY unusable: encrypted channel secrets cannot be read",
              LS("error", mcs_strerror(rc)));
    {
        /* The settings before the first batch is decided (the housekeeping
         * thread refreshes them every 2 s from then on). */
        PGconn *pg = connect_pg(nt, "mcsd-notify-init");
        struct alarm_cfg c;
        if(pg && alarm_cfg_load(pg, &c) == 0)
            alarm_engine_set_cfg(nt->eng, &c);
        PQfinish(pg);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    d->alarm = nt->eng;
    if(pthread_create(&nt->hk, NULL, hk_main, nt) == 0)
        nt->hk_started = 1;
    for(const struct notify_channel *ch = notify_channels; ch->name && nt->nw < MAX_CHANNELS;
        ch++) {
        struct chan_worker *w = &nt->w[nt->nw++];
        w->nt = nt;
        w->ch = ch;
        if(pthread_create(&w->th, NULL, chan_main, w) == 0)
            w->started = 1;
    }
    *out = nt;
    return 0;
}

/* Joins th unless deadline_ms (mcs_mono_ms clock) passes first. */
static int join_by(pthread_t th, int64_t deadline_ms)
{
    struct timespec ts;
    int64_t left = deadline_ms - mcs_mono_ms();
    clock_gettime(CLOCK_REALTIME, &ts);
    if(left < 0)
        left = 0;
    ts.tv_sec += left / 1000;
    ts.tv_nsec += (long)(left % 1000) * 1000000L;
    if(ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_timedjoin_np(th, NULL, &ts) == 0 ? 0 : MCS_ETIMEDOUT;
}

int notify_stop(struct mcs_notify *nt, int64_t deadline_ms)
{
    int left = 0;
    if(!nt)
        return 0;
    atomic_store(&nt->stop, 1);
    /* A channel request still running at the deadline (a slow endpoint) is
     * left: its outbox row stays claimable, so it is sent or retried after
     * the restart (R-AL-6). */
    if(nt->hk_started && join_by(nt->hk, deadline_ms))
        left = 1;
    for(int i = 0; i < nt->nw; i++)
        if(nt->w[i].started && join_by(nt->w[i].th, deadline_ms))
            left = 1;
    if(left) {
        LOG_W("notify", "a notification request still running at stop; left to finish or retry");
        return MCS_ETIMEDOUT;
    }
    nt->d->alarm = NULL;
    alarm_engine_free(nt->eng);
    curl_global_cleanup();
    free(nt);
    return 0;
}
