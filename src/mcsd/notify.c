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
#include "utf8.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <poll.h>
#include <sodium.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLAIM_MAX 2000  /* level-1 raises in one digest: a storm goes in few messages */
#define LEASE_EXTRA_S 5 /* a lease outlasts the request's time limit by this much */
#define DROP_EVERY_MS 10000 /* a switched-off channel drops its pending rows */
#define STOP_CANCEL_BEFORE_MS 1000 /* at stop, requests in flight end by then */
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
    int64_t next_drop_ms; /* off: when its pending rows are dropped next */
    int daily_cap;        /* sms: texts per number and day */
};

struct mcs_notify {
    struct mcsd *d;
    struct alarm_engine *eng;
    struct mcs_secret_key key;
    _Atomic int stop;   /* no new work; every wait ends */
    _Atomic int cancel; /* requests in flight are aborted (libcurl) */
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

/* Milliseconds until a message may go under the platform limits (0: now). */
static int64_t rate_wait_ms(struct chan_worker *w, int64_t now)
{
    const struct notify_channel *ch = w->ch;
    unsigned ring = sizeof(w->sent_ms) / sizeof(w->sent_ms[0]);
    int64_t wait = w->throttled_until_ms - now;
    if(ch->per_min && (unsigned)ch->per_min <= ring) {
        int64_t t = w->sent_ms[(w->sent_i + ring - (unsigned)ch->per_min) % ring];
        if(t && t + 60000 - now > wait)
            wait = t + 60000 - now;
    }
    if(ch->per_sec && (unsigned)ch->per_sec <= ring) {
        int64_t t = w->sent_ms[(w->sent_i + ring - (unsigned)ch->per_sec) % ring];
        if(t && t + 1000 - now > wait)
            wait = t + 1000 - now;
    }
    return wait > 0 ? wait : 0;
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
    struct notify_result res;
    long long digest_id;
    int dur_ms;
};

/* The claim (issue #15): one statement in its own transaction takes due rows
 * of the channel and leases them (due_at moved past the request's time
 * limit, claimed_by = this connection), so no lock is held while sending
 * and a crash leaves rows that are due again when the lease ends. $4: the
 * channel must not resend blindly (SMS): its rows turn 'unknown' before the
 * request leaves. $5 picks the rows: 'any' (the first due row), 'single'
 * (the first due row that is not a pending level-1 raise), 'digest' (the
 * pending level-1 raises), 'test' (test sends only: channel switched off). */
static const char claim_sql[] =
    "WITH c AS (UPDATE alarm_outbox o SET due_at = now() + make_interval(secs => $3::float8),"
    " claimed_by = current_setting('application_name'), claimed_at = now(),"
    " status = CASE WHEN $4::bool THEN 'unknown' ELSE o.status END"
    " FROM (SELECT id, status FROM alarm_outbox WHERE channel = $1"
    "  AND status IN ('pending', 'unknown') AND due_at <= now() AND CASE $5"
    "  WHEN 'single' THEN NOT (status = 'pending' AND level < 2 AND event = 'raise')"
    "  WHEN 'digest' THEN status = 'pending' AND level < 2 AND event = 'raise'"
    "  WHEN 'test' THEN event = 'test' ELSE true END"
    "  ORDER BY level DESC, id LIMIT $2::int FOR UPDATE SKIP LOCKED) s"
    " WHERE o.id = s.id"
    " RETURNING o.id, o.alarm_id, o.event, o.level, o.attempts, o.recipients, s.status AS was)"
    " SELECT c.id, c.alarm_id, c.event, c.level, c.attempts, COALESCE(c.recipients, ''),"
    " COALESCE(a.sn, ''), COALESCE(a.alarm_type, 'TEST'), COALESCE(a.category, 'system'),"
    " COALESCE(d.name, ''), COALESCE(d.location, ''), COALESCE(d.unit, ''),"
    " COALESCE(trim_scale(round((CASE WHEN c.event = 'raise' THEN a.value ELSE"
    "  a.last_value END)::numeric, 2))::text, ''),"
    " COALESCE(trim_scale(round(a.threshold::numeric, 2))::text, ''),"
    " to_char(COALESCE(CASE WHEN c.event = 'clear' THEN a.cleared_at END, a.triggered_at,"
    "  now()) AT TIME ZONE $6, 'YYYY-MM-DD HH24:MI:SS'),"
    " COALESCE(a.count, 0), c.was, COALESCE(a.message, ''),"
    " COALESCE(to_char(d.last_seen AT TIME ZONE $6, 'YYYY-MM-DD HH24:MI:SS'), '')"
    " FROM c LEFT JOIN alarm_logs a ON a.id = c.alarm_id LEFT JOIN devices d ON d.sn = a.sn"
    " ORDER BY c.level DESC, c.id";

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
    if(!strcmp(r->msg.event, "test") && !r->alarm_id) {
        /* The channel test of mcs-api (h_cfg_alarm_test): a made-up gas
         * alarm through the same path as real ones. */
        snprintf(r->msg.sn, sizeof(r->msg.sn), "TEST");
        snprintf(r->msg.name, sizeof(r->msg.name), "测试设备");
        snprintf(r->msg.location, sizeof(r->msg.location), "测试位置");
        snprintf(r->msg.unit, sizeof(r->msg.unit), "ppm");
        snprintf(r->msg.type, sizeof(r->msg.type), "HIGH");
        snprintf(r->msg.category, sizeof(r->msg.category), "gas");
        snprintf(r->msg.val, sizeof(r->msg.val), "0");
        snprintf(r->msg.threshold, sizeof(r->msg.threshold), "0");
    }
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
    res->cancel = &w->nt->cancel;
    w->ch->send(cfg, &w->nt->key, m, w->nt->d->cfg->notify_timeout_ms, res);
    {
        char clean[sizeof(res->detail)];
        mcs_utf8_clean(res->detail, clean, sizeof(clean));
        memcpy(res->detail, clean, sizeof(clean));
    }
    if(sms && res->ok)
        sms_count(w, phones);
    m->recipients = given; /* phones is about to go out of scope */
    *dur = (int)(mcs_mono_ms() - t0);
    rate_note(w, mcs_now_ms());
    if(res->throttled)
        w->throttled_until_ms = mcs_now_ms() + (!strcmp(w->ch->name, "dingtalk") ? 600000 : 60000);
}

/* Statement of write_outcome: the row's new status and its attempt. */
static const char outcome_sql[] =
    "WITH u AS (UPDATE alarm_outbox SET attempts = $3::int,"
    /* Acknowledged (or channel switched off) while in flight: a message that
     * did not go is not tried again. */
    " status = CASE WHEN status = 'dropped' AND NOT $4::bool THEN status ELSE $2 END,"
    " due_at = now() + make_interval(secs => $7::float8), claimed_by = NULL,"
    " sent_at = CASE WHEN $4::bool THEN now() ELSE sent_at END,"
    " last_error = CASE WHEN $4::bool THEN NULL ELSE $8 END,"
    " provider_id = COALESCE($9, provider_id), digest_id = $10::bigint"
    " WHERE id = $1::bigint RETURNING id)"
    " INSERT INTO alarm_attempts (outbox_id, instance, ok, http_status, duration_ms, detail)"
    " SELECT id, current_setting('application_name'), $4::bool, $5::int, $6::int, $8 FROM u";

/* The channel's delivery state for the admin page (GET
 * /api/config/alarm/channels): one row per channel, counters per local day
 * (tz). Counts requests: a digest is one message. */
static const char state_sql[] =
    "INSERT INTO alarm_channel_state AS s (channel, last_ok_at, last_fail_at, last_fail_detail,"
    " day, sent_day, failed_day) VALUES ($1, CASE WHEN $2::bool THEN now() END,"
    " CASE WHEN $2::bool THEN NULL ELSE now() END, CASE WHEN $2::bool THEN NULL ELSE $3 END,"
    " (now() AT TIME ZONE $4)::date, $2::bool::int, (NOT $2::bool)::int)"
    " ON CONFLICT (channel) DO UPDATE SET"
    " last_ok_at = COALESCE(EXCLUDED.last_ok_at, s.last_ok_at),"
    " last_fail_at = COALESCE(EXCLUDED.last_fail_at, s.last_fail_at),"
    " last_fail_detail = COALESCE(EXCLUDED.last_fail_detail, s.last_fail_detail),"
    " sent_day = CASE WHEN s.day = EXCLUDED.day THEN s.sent_day ELSE 0 END + EXCLUDED.sent_day,"
    " failed_day = CASE WHEN s.day = EXCLUDED.day THEN s.failed_day ELSE 0 END"
    "  + EXCLUDED.failed_day, day = EXCLUDED.day";

static int note_state(struct chan_worker *w, const struct alarm_cfg *ac,
                      const struct notify_result *res)
{
    const char *p[4] = {w->ch->name, res->ok ? "t" : "f", res->detail, ac->tz};
    PGresult *r = qp(w->pg, state_sql, 4, p);
    if(!r)
        return MCS_EDB;
    PQclear(r);
    return 0;
}

/* Writes the outcome of row r (inside the caller's outcome transaction). */
static int write_outcome(struct chan_worker *w, const struct alarm_cfg *ac, struct row *r)
{
    char id[24], att[16], http[16], dur[16], due[32], dig[24];
    const char *status;
    double backoff = 0;
    PGresult *res;
    /* A test send is answered with its first outcome (mcs-api waits for
     * it): never retried later, and not an alarm of its own. */
    int test = !strcmp(r->msg.event, "test");

    r->attempts++;
    if(r->res.ok)
        status = r->digest_id && r->digest_id != r->id ? "digested" : "sent";
    else if(r->res.unknown) {
        /* Not resent blindly: asked about (verify) after query_after_s. */
        status = "unknown";
        backoff = r->attempts >= ac->max_attempts ? 1e9 : w->query_after_s;
    }
    else if(!test && (r->res.throttled || (r->res.retry && r->attempts < ac->max_attempts))) {
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
    const char *p[10] = {id,   status, att,  r->res.ok ? "t" : "f",
                         http, dur,    due,  r->res.detail,
                         r->res.provider_id[0] ? r->res.provider_id : NULL,
                         r->digest_id ? dig : NULL};
    res = qp(w->pg, outcome_sql, 10, p);
    if(!res)
        return MCS_EDB;
    PQclear(res);
    if(!strcmp(status, "failed") && !test) {
        /* The failure is an alarm of its own, visible on screens. */
        char sn[32], msg[256];
        snprintf(sn, sizeof(sn), "channel:%s", w->ch->name);
        snprintf(msg, sizeof(msg), "notification %lld (alarm %lld) failed: ", r->id, r->alarm_id);
        mcs_utf8_clean(r->res.detail, msg + strlen(msg), 160);
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

/* Claims rows of mode (see claim_sql), at most lim. Returns the number
 * claimed (rows in *out, to free) or MCS_EDB / MCS_ENOMEM. */
static int claim(struct chan_worker *w, const struct alarm_cfg *ac, const char *mode, int lim,
                 struct row **out)
{
    char lims[16], lease[32];
    double lease_s = w->nt->d->cfg->notify_timeout_ms / 1000.0 + LEASE_EXTRA_S;
    /* An SMS row's lease is also its wait before QuerySendDetails. */
    if(w->ch->verify && w->query_after_s > lease_s)
        lease_s = w->query_after_s;
    snprintf(lims, sizeof(lims), "%d", lim);
    snprintf(lease, sizeof(lease), "%.3f", lease_s);
    const char *p[6] = {w->ch->name, lims, lease, w->ch->verify ? "t" : "f", mode, ac->tz};
    PGresult *res = qp(w->pg, claim_sql, 6, p);
    int n;
    *out = NULL;
    if(!res)
        return MCS_EDB;
    n = PQntuples(res);
    if(n > 0) {
        *out = calloc((size_t)n, sizeof(**out));
        if(!*out) {
            /* The lease ends and the rows are claimed again. */
            PQclear(res);
            return MCS_ENOMEM;
        }
        for(int i = 0; i < n; i++) {
            fill_row(&(*out)[i], res, i);
            (*out)[i].msg.tz_offset_s = ac->tz_offset_s;
        }
    }
    PQclear(res);
    return n;
}

/* Commits the outcomes of rows[0..n) (one request: a message, or a digest)
 * in one transaction, right after the request, then updates the alarms'
 * summaries. An outcome the database refuses is written again with a plain
 * detail and without the channel's state, so that one bad answer never
 * leaves a row to be sent again. Returns 0 or MCS_EDB (the leases end and
 * the rows are retried). */
static int settle(struct chan_worker *w, const struct alarm_cfg *ac, struct row *rows, int n)
{
    int rc = MCS_EDB;
    for(int attempt = 0; attempt < 2 && rc; attempt++) {
        rc = 0;
        if(attempt) {
            if(PQstatus(w->pg) == CONNECTION_BAD)
                break;
            for(int i = 0; i < n; i++)
                snprintf(rows[i].res.detail, sizeof(rows[i].res.detail),
                         "(the platform's answer could not be stored)");
        }
        if(exec(w->pg, "BEGIN")) {
            rc = MCS_EDB;
            continue;
        }
        for(int i = 0; i < n && !rc; i++) {
            struct row r = rows[i]; /* attempts++ once per committed try */
            rc = write_outcome(w, ac, &r);
        }
        if(!rc && !attempt) /* the second try keeps only what must not be lost */
            rc = note_state(w, ac, &rows[0].res);
        if(!rc)
            rc = exec(w->pg, "COMMIT") ? MCS_EDB : 0;
        if(rc && PQstatus(w->pg) != CONNECTION_BAD)
            exec(w->pg, "ROLLBACK");
    }
    if(rc) {
        LOG_E("notify", "outcome not stored: retried when its lease ends",
              LS("channel", w->ch->name), LI("outbox", rows[0].id));
        return rc;
    }
    for(int i = 0; i < n; i++) {
        if(rows[i].alarm_id)
            update_summary(w, rows[i].alarm_id);
        if(rows[i].res.ok)
            LOG_I("notify", "sent", LS("channel", w->ch->name), LI("outbox", rows[i].id),
                  LI("alarm", rows[i].alarm_id), LS("event", rows[i].msg.event));
        else
            LOG_W("notify", "send failed", LS("channel", w->ch->name), LI("outbox", rows[i].id),
                  LI("alarm", rows[i].alarm_id), LS("detail", rows[i].res.detail));
    }
    return 0;
}

/* Sends one claimed row (an SMS whose earlier send timed out is looked up
 * first: never a second text for one alarm). */
static void send_one(struct chan_worker *w, const cJSON *cfg, struct row *r)
{
    if(r->was_unknown && w->ch->verify) {
        int64_t v0 = mcs_mono_ms();
        memset(&r->res, 0, sizeof(r->res));
        r->res.cancel = &w->nt->cancel;
        int found = w->ch->verify(cfg, &w->nt->key, &r->msg, w->nt->d->cfg->notify_timeout_ms,
                                  &r->res);
        memset(&r->res, 0, sizeof(r->res));
        r->dur_ms = (int)(mcs_mono_ms() - v0);
        if(found == 1) {
            r->res.ok = 1;
            snprintf(r->res.detail, sizeof(r->res.detail), "delivered (QuerySendDetails)");
            return;
        }
        if(found < 0) {
            r->res.unknown = 1;
            snprintf(r->res.detail, sizeof(r->res.detail), "QuerySendDetails failed");
            return;
        }
    }
    do_send(w, cfg, &r->msg, &r->res, &r->dur_ms);
}

/* Sends the pending level-1 raises rows[0..n) as one message listing them. */
static void send_digest(struct chan_worker *w, const cJSON *cfg, struct row *rows, int n)
{
    size_t cap = 4000, len = 0;
    char *text = malloc(cap);
    struct notify_msg dm;
    struct notify_result dres;
    int dur = 0;

    memset(&dres, 0, sizeof(dres));
    if(!text) {
        snprintf(dres.detail, sizeof(dres.detail), "out of memory");
        dres.retry = 1;
        goto out;
    }
    len = (size_t)snprintf(text, cap, "【报警汇总】%d 条一级报警：\n", n);
    for(int i = 0; i < n; i++) {
        char line[600];
        notify_render("{type_text} {name}({sn}) {location} {val}{unit} / {threshold}{unit}"
                      " {time}\n",
                      &rows[i].msg, 0, line, sizeof(line));
        if(len + strlen(line) + 16 < cap) {
            memcpy(text + len, line, strlen(line) + 1);
            len += strlen(line);
        }
        else if(len + 16 < cap) {
            len += (size_t)snprintf(text + len, cap - len, "……\n");
            cap = len; /* full */
        }
    }
    dm = rows[0].msg;
    snprintf(dm.event, sizeof(dm.event), "digest");
    dm.text = text;
    dm.count = n;
    dm.recipients = NULL;
    do_send(w, cfg, &dm, &dres, &dur);
out:
    for(int i = 0; i < n; i++) {
        rows[i].res = dres;
        rows[i].dur_ms = dur;
        rows[i].digest_id = rows[0].id;
    }
    free(text);
}

/* One delivery: the most urgent due message of the channel, else a digest
 * of the pending level-1 raises when there are more than the digest
 * threshold, each claimed in a committed lease, sent, and its outcome
 * committed right after. Off (enabled 0): test sends only. Returns rows
 * handled, 0 when idle, or a negative MCS_E code. */
static int chan_round(struct chan_worker *w, const cJSON *cfg, const struct alarm_cfg *ac,
                      int enabled)
{
    struct row *rows = NULL;
    int n, rc, digest = 0;
    const char *mode = enabled ? "any" : "test";

    if(enabled && !w->ch->verify) {
        /* A storm goes out in few messages (SMS: one text per alarm). */
        char thr[16];
        const char *p[2] = {w->ch->name, thr};
        snprintf(thr, sizeof(thr), "%d", ac->digest_threshold);
        PGresult *r = qp(w->pg,
                         "SELECT count(*) > $2::int FROM (SELECT 1 FROM alarm_outbox"
                         " WHERE channel = $1 AND status = 'pending' AND due_at <= now()"
                         " AND level < 2 AND event = 'raise' LIMIT $2::int + 1) x",
                         2, p);
        if(!r)
            return MCS_EDB;
        digest = !strcmp(PQgetvalue(r, 0, 0), "t");
        PQclear(r);
        if(digest)
            mode = "single";
    }
    n = claim(w, ac, mode, 1, &rows);
    if(n == 1) {
        /* A test send follows a saved change at once: the settings as they
         * are now, not as read up to a second ago. */
        int ok = 0;
        cJSON *fresh = !strcmp(rows[0].msg.event, "test")
                           ? load_channel_cfg(w->pg, w->ch->name, &ok)
                           : NULL;
        send_one(w, fresh ? fresh : cfg, &rows[0]);
        cJSON_Delete(fresh);
        rc = settle(w, ac, rows, 1);
        free(rows);
        return rc ? rc : 1;
    }
    if(n < 0 || !digest)
        return n;
    n = claim(w, ac, "digest", CLAIM_MAX, &rows);
    if(n <= 0)
        return n;
    send_digest(w, cfg, rows, n);
    rc = settle(w, ac, rows, n);
    free(rows);
    return rc ? rc : n;
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
            /* Leases this instance held when it died (or lost its
             * connection) end now: that request is the one that may be
             * repeated (docs/ALARMS.md). SMS rows stay 'unknown' and are
             * looked up before any second text. */
            const char *p[1] = {w->ch->name};
            PQclear(qp(w->pg,
                       "UPDATE alarm_outbox SET due_at = now(), claimed_by = NULL"
                       " WHERE channel = $1 AND status = 'pending'"
                       " AND claimed_by = current_setting('application_name')",
                       1, p));
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
                int was = enabled;
                enabled = cJSON_IsTrue(en);
                w->query_after_s = cJSON_IsNumber(qa) ? qa->valuedouble : 30;
                w->daily_cap = cJSON_IsNumber(dc) ? (int)dc->valuedouble : 50;
                if(!enabled && (was || mcs_mono_ms() >= w->next_drop_ms)) {
                    /* Rows written while it was on (or by an engine that
                     * saw the switch a moment late) are not sent later by
                     * surprise: dropped, visibly (a test send still goes:
                     * a channel is tried before it is switched on). */
                    const char *p[1] = {w->ch->name};
                    PGresult *r = qp(w->pg,
                                     "UPDATE alarm_outbox SET status = 'dropped', last_error ="
                                     " 'channel off' WHERE channel = $1 AND status = 'pending'"
                                     " AND event <> 'test'",
                                     1, p);
                    w->next_drop_ms = mcs_mono_ms() + (r ? DROP_EVERY_MS : 0);
                    PQclear(r);
                }
            }
            next_cfg = mcs_mono_ms() + 1000;
        }
        /* Past the platform's limit the channel sleeps until its budget
         * refills, without claiming anything (wakes on stop; at most 1 s, so
         * a changed configuration is seen). */
        int64_t wait = rate_wait_ms(w, mcs_now_ms());
        if(wait > 0) {
            sleep_unless_stopped(nt, wait < 1000 ? wait : 1000);
            continue;
        }
        struct alarm_cfg ac;
        alarm_engine_get_cfg(nt->eng, &ac);
        int n = chan_round(w, cfg, &ac, enabled);
        if(n <= 0)
            sleep_unless_stopped(nt, n < 0                  ? 1000
                                     : enabled               ? nt->d->cfg->notify_poll_ms
                                     : nt->d->cfg->notify_poll_ms * 5);
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

/* ---- configuration check ---- */

int notify_check_secrets(const struct mcs_config *cfg, char *err, size_t errn)
{
    struct mcs_secret_key key;
    char cerr[256];
    size_t len = 0;
    int rc, bad = 0;
    PGconn *pg;
    PGresult *r;

    err[0] = '\0';
    rc = secret_key_load(&key, cfg->secret_key, cfg->secret_key_file);
    if(rc && rc != MCS_ENOTFOUND) {
        snprintf(err, errn, "MCS_SECRET_KEY / MCS_SECRET_KEY_FILE unusable: %s", mcs_strerror(rc));
        return MCS_EINVAL;
    }
    pg = mcs_pg_connect(cfg, "mcsd-check-config", cerr, sizeof(cerr));
    if(!pg) {
        snprintf(err, errn, "database unavailable: %s", cerr);
        return MCS_EDB;
    }
    r = PQexec(pg, "SELECT substr(key, 15), value::text FROM system_config"
                   " WHERE key LIKE 'alarm.channel.%' AND value->>'enabled' = 'true' ORDER BY key");
    if(PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errn, "cannot read the channels: %s", PQresultErrorMessage(r));
        rc = MCS_EDB;
        goto out;
    }
    rc = 0;
    for(int i = 0; i < PQntuples(r); i++) {
        const struct notify_channel *ch = notify_channel_find(PQgetvalue(r, i, 0));
        cJSON *c = ch ? cJSON_Parse(PQgetvalue(r, i, 1)) : NULL;
        if(c && notify_check_secret(ch, c, &key) && len + 1 < errn) {
            len += (size_t)snprintf(err + len, errn - len, "%s%s.%s", bad ? ", " : "", ch->name,
                                    ch->secret_field);
            if(len >= errn)
                len = errn - 1;
            bad++;
        }
        cJSON_Delete(c);
    }
    if(bad) {
        char list[256];
        snprintf(list, sizeof(list), "%s", err);
        snprintf(err, errn,
                 "secret of channel %s cannot be decrypted: MCS_SECRET_KEY (or"
                 " MCS_SECRET_KEY_FILE) is %s the key mcs-api and mcs encrypted it with",
                 list, key.set ? "not" : "missing; it must be");
        rc = MCS_EINVAL;
    }
out:
    PQclear(r);
    PQfinish(pg);
    sodium_memzero(&key, sizeof(key));
    return rc;
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
        /* Said once at start, not only on each alarm that fails. */
        char err[512];
        if(notify_check_secrets(d->cfg, err, sizeof(err)) == MCS_EINVAL)
            LOG_E("notify", "alarm channels cannot send", LS("error", err));
    }
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
    /* No new claims. A request in flight may finish and its outcome be
     * committed until a second before the deadline (cancelling it would
     * make a stop repeat it after the restart, like a crash); then it is
     * cancelled. One still running at the deadline is left: its lease ends
     * and it is retried (R-AL-6). */
    if(nt->hk_started && join_by(nt->hk, deadline_ms))
        left = 1;
    for(int i = 0; i < nt->nw; i++)
        if(nt->w[i].started && join_by(nt->w[i].th, deadline_ms - STOP_CANCEL_BEFORE_MS) == 0)
            nt->w[i].started = 0;
    atomic_store(&nt->cancel, 1);
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
