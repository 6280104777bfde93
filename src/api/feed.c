/* feed.c - realtime ticker and alarm subscriber threads (see feed.h).
 * Owns struct api_feed, its mailbox and the threads' connections.
 * Thread: two threads of its own; the take_* functions run on the loop. */
#include "feed.h"
#include "conn.h"
#include "err.h"
#include "log.h"
#include "timeutil.h"

#include <libwebsockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALARM_QMAX 256
#define RING 64 /* seconds of worker counter samples */
#define REDIS_CHUNK 500

struct api_feed {
    struct api_ctx *ctx;
    pthread_t tick, sub;
    int tick_started, sub_started;
    atomic_int stop;
    pthread_mutex_t mu;
    struct api_msg *rt;
    struct api_msg *alarms[ALARM_QMAX];
    int ah, an;
    uint64_t alarm_events, alarm_dropped, rt_frames;
    /* Worker counter samples: (mono ms, sum of accepted). */
    int64_t s_ms[RING];
    long long s_acc[RING];
    int s_n, s_h;
};

struct api_msg *msg_new(const char *s, size_t len)
{
    struct api_msg *m = malloc(sizeof(*m) + LWS_PRE + len + 1);
    if(!m)
        return NULL;
    atomic_init(&m->refs, 1);
    m->built_ms = 0;
    m->len = len;
    m->data = m->buf + LWS_PRE;
    memcpy(m->data, s, len);
    m->data[len] = '\0';
    return m;
}

void msg_ref(struct api_msg *m)
{
    atomic_fetch_add(&m->refs, 1);
}

void msg_unref(struct api_msg *m)
{
    if(m && atomic_fetch_sub(&m->refs, 1) == 1)
        free(m);
}

/* A growing string with a hard maximum (STYLE rule 7). */
struct sbuf {
    char *p;
    size_t n, cap, max;
    int bad;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if(b->bad)
        return;
    if(b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        char *np;
        while(cap < b->n + n + 1)
            cap *= 2;
        if(cap > b->max || !(np = realloc(b->p, cap))) {
            b->bad = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

struct devrow {
    char sn[33];
    char type[25]; /* of the most severe alarm on screen, "" when none */
    int level;
};

static void sleep_or_stop(struct api_feed *f, int64_t ms)
{
    int64_t until = mcs_mono_ms() + ms;
    while(!atomic_load(&f->stop) && mcs_mono_ms() < until)
        mcs_sleep_ms(50);
}

static void sample_workers(struct api_feed *f, redisContext *r)
{
    redisReply *m = redisCommand(r, "SMEMBERS mcs:instances");
    long long sum = 0;
    int ok = 0;
    if(m && m->type == REDIS_REPLY_ARRAY) {
        for(size_t i = 0; i < m->elements; i++) {
            redisReply *v = redisCommand(r, "HGET mcs:metrics:%s accepted", m->element[i]->str);
            if(v && v->type == REDIS_REPLY_STRING) {
                sum += strtoll(v->str, NULL, 10);
                ok = 1;
            }
            freeReplyObject(v);
        }
    }
    freeReplyObject(m);
    if(!ok)
        return;
    pthread_mutex_lock(&f->mu);
    f->s_ms[f->s_h] = mcs_mono_ms();
    f->s_acc[f->s_h] = sum;
    f->s_h = (f->s_h + 1) % RING;
    if(f->s_n < RING)
        f->s_n++;
    pthread_mutex_unlock(&f->mu);
}

long feed_msgs_per_min(struct api_feed *f)
{
    long out = -1;
    if(!f)
        return -1;
    pthread_mutex_lock(&f->mu);
    if(f->s_n >= 2) {
        int newest = (f->s_h + RING - 1) % RING;
        int oldest = (f->s_h + RING - f->s_n) % RING;
        /* The sample nearest to a minute before the newest one. */
        for(int k = f->s_n - 1; k >= 1; k--) {
            int i = (f->s_h + RING - 1 - k) % RING;
            if(f->s_ms[newest] - f->s_ms[i] <= 60000) {
                oldest = i;
                break;
            }
        }
        int64_t dt = f->s_ms[newest] - f->s_ms[oldest];
        long long d = f->s_acc[newest] - f->s_acc[oldest];
        if(dt > 0 && d >= 0)
            out = (long)(d * 60000 / dt);
    }
    pthread_mutex_unlock(&f->mu);
    return out;
}

void feed_counts(struct api_feed *f, uint64_t *ev, uint64_t *dropped, uint64_t *frames)
{
    pthread_mutex_lock(&f->mu);
    *ev = f->alarm_events;
    *dropped = f->alarm_dropped;
    *frames = f->rt_frames;
    pthread_mutex_unlock(&f->mu);
}

/* Queues m for every screen, in order with the events before it (alarm
 * counts it in alarm_events); the mailbox takes the reference. */
static void push_msg(struct api_feed *f, struct api_msg *m, int alarm)
{
    pthread_mutex_lock(&f->mu);
    f->alarm_events += alarm ? 1 : 0;
    if(f->an == ALARM_QMAX) {
        /* The loop is behind: the oldest event goes (counted). */
        msg_unref(f->alarms[f->ah]);
        f->ah = (f->ah + 1) % ALARM_QMAX;
        f->an--;
        f->alarm_dropped++;
    }
    f->alarms[(f->ah + f->an) % ALARM_QMAX] = m;
    f->an++;
    pthread_mutex_unlock(&f->mu);
    lws_cancel_service(f->ctx->lws);
}

/* A fixed event (the `config` ones) for every screen. */
static void push_event(struct api_feed *f, const char *json)
{
    struct api_msg *m = msg_new(json, strlen(json));
    if(m)
        push_msg(f, m, 0);
}

static void push_alarm(struct api_feed *f, const char *payload, size_t len)
{
    struct sbuf b = {NULL, 0, 0, 1 << 20, 0};
    cJSON *j = cJSON_ParseWithLength(payload, len);
    struct api_msg *m;

    sb_str(&b, "{\"type\":\"alarm\",\"data\":");
    if(j && cJSON_IsObject(j)) {
        sb_add(&b, payload, len);
    } else {
        LOG_W("feed", "mcs:alarm event is not a JSON object");
        cJSON_Delete(j);
        free(b.p);
        return;
    }
    cJSON_Delete(j);
    sb_str(&b, "}");
    if(b.bad || !(m = msg_new(b.p, b.n))) {
        free(b.p);
        return;
    }
    free(b.p);
    push_msg(f, m, 1);
}

/* One realtime frame. Returns 0 or an error (connections then reopened). */
static int build_frame(struct api_feed *f, PGconn *pg, redisContext *r, struct devrow **devs,
                       int *ndev, int64_t *dev_at)
{
    struct sbuf b = {NULL, 0, 0, (size_t)64 << 20, 0};
    PGresult *res;
    int64_t built;
    char num[128];
    int rc = MCS_EDB;

    /* The device list is reloaded when the devices trigger says it changed
     * (LISTEN mcs_device on this connection), and once a minute anyway.
     * Screens hear of device and layout changes (mcs_device, mcs_config)
     * through one `config` event per kind and tick. */
    {
        int changed = 0, layout = 0, bg = 0;
        PGnotify *nt;
        PQconsumeInput(pg);
        while((nt = PQnotifies(pg))) {
            if(!strcmp(nt->relname, "mcs_device") || !strcmp(nt->extra, "devices"))
                changed = 1;
            else if(!strcmp(nt->extra, "layout"))
                layout = 1;
            else if(!strcmp(nt->extra, "background"))
                bg = 1;
            else
                LOG_W("feed", "unknown mcs_config event", LS("what", nt->extra));
            PQfreemem(nt);
        }
        if(changed)
            *dev_at = 0;
        if(changed)
            push_event(f, "{\"type\":\"config\",\"what\":\"devices\"}");
        if(layout)
            push_event(f, "{\"type\":\"config\",\"what\":\"layout\"}");
        if(bg)
            push_event(f, "{\"type\":\"config\",\"what\":\"background\"}");
    }
    if(!*devs || !*dev_at || mcs_mono_ms() - *dev_at > 60000) {
        res = PQexec(pg, "SELECT sn FROM devices WHERE enabled ORDER BY sn");
        if(PQresultStatus(res) != PGRES_TUPLES_OK) {
            PQclear(res);
            return MCS_EDB;
        }
        free(*devs);
        *ndev = PQntuples(res);
        *devs = calloc((size_t)(*ndev ? *ndev : 1), sizeof(**devs));
        if(!*devs) {
            PQclear(res);
            return MCS_ENOMEM;
        }
        for(int i = 0; i < *ndev; i++)
            snprintf((*devs)[i].sn, sizeof((*devs)[i].sn), "%s", PQgetvalue(res, i, 0));
        PQclear(res);
        *dev_at = mcs_mono_ms();
    }
    for(int i = 0; i < *ndev; i++)
        (*devs)[i].type[0] = '\0';
    /* Alarms shown on screens (docs/ALARMS.md): open, or latched gas alarms
     * not acknowledged; the most severe per device. */
    res = PQexec(pg, "SELECT DISTINCT ON (sn) sn, alarm_type, level FROM alarm_logs "
                     "WHERE cleared_at IS NULL OR (category = 'gas' AND ack_at IS NULL) "
                     "ORDER BY sn, level DESC, triggered_at DESC");
    if(PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return MCS_EDB;
    }
    /* Both lists are sorted by sn (COLLATE "C"): merge. */
    for(int i = 0, j = 0; i < PQntuples(res) && j < *ndev;) {
        int c = strcmp(PQgetvalue(res, i, 0), (*devs)[j].sn);
        if(c == 0) {
            snprintf((*devs)[j].type, sizeof((*devs)[j].type), "%s", PQgetvalue(res, i, 1));
            (*devs)[j].level = (int)strtol(PQgetvalue(res, i, 2), NULL, 10);
            i++;
            j++;
        } else if(c < 0) {
            i++;
        } else {
            j++;
        }
    }
    PQclear(res);

    built = mcs_now_ms();
    {
        int64_t ms = built;
        /* ts_ms: when the frame was built, for clients' staleness checks. */
        snprintf(num, sizeof(num), "{\"type\":\"realtime\",\"ts\":%lld,\"ts_ms\":%lld,\"data\":[",
                 (long long)(ms / 1000), (long long)ms);
    }
    sb_str(&b, num);
    for(int base = 0; base < *ndev; base += REDIS_CHUNK) {
        int n = *ndev - base < REDIS_CHUNK ? *ndev - base : REDIS_CHUNK;
        const char **argv = malloc(sizeof(char *) * (size_t)(n + 1));
        size_t *argl = malloc(sizeof(size_t) * (size_t)(n + 1));
        char (*keys)[48] = malloc(sizeof(*keys) * (size_t)n * 2);
        redisReply *rt = NULL, *on = NULL;
        if(!argv || !argl || !keys) {
            free(argv);
            free(argl);
            free(keys);
            rc = MCS_ENOMEM;
            goto out;
        }
        for(int pass = 0; pass < 2; pass++) {
            argv[0] = "MGET";
            argl[0] = 4;
            for(int i = 0; i < n; i++) {
                char *k = keys[pass * n + i];
                snprintf(k, 48, "%s:%s", pass ? "online" : "realtime", (*devs)[base + i].sn);
                argv[i + 1] = k;
                argl[i + 1] = strlen(k);
            }
            redisAppendCommandArgv(r, n + 1, argv, argl);
        }
        if(redisGetReply(r, (void **)&rt) != REDIS_OK || redisGetReply(r, (void **)&on) != REDIS_OK ||
           !rt || !on || rt->type != REDIS_REPLY_ARRAY || on->type != REDIS_REPLY_ARRAY ||
           rt->elements != (size_t)n || on->elements != (size_t)n) {
            freeReplyObject(rt);
            freeReplyObject(on);
            free(argv);
            free(argl);
            free(keys);
            rc = MCS_EREDIS;
            goto out;
        }
        for(int i = 0; i < n; i++) {
            const struct devrow *d = &(*devs)[base + i];
            const char *status;
            char ppm[40] = "null";
            if(rt->element[i]->type == REDIS_REPLY_STRING) {
                cJSON *j = cJSON_ParseWithLength(rt->element[i]->str, rt->element[i]->len);
                cJSON *p = j ? cJSON_GetObjectItemCaseSensitive(j, "ppm") : NULL;
                if(cJSON_IsNumber(p))
                    snprintf(ppm, sizeof(ppm), "%.10g", p->valuedouble);
                cJSON_Delete(j);
            }
            status = d->type[0] ? "alarm"
                     : on->element[i]->type == REDIS_REPLY_STRING ? "online"
                                                                 : "offline";
            if(base + i)
                sb_str(&b, ",");
            sb_str(&b, "{\"sn\":\"");
            sb_str(&b, d->sn); /* SNs are [A-Za-z0-9_-]: nothing to escape */
            sb_str(&b, "\",\"ppm\":");
            sb_str(&b, ppm);
            sb_str(&b, ",\"status\":\"");
            sb_str(&b, status);
            if(d->type[0]) {
                char esc[64], lv[48];
                mcs_json_escape(esc, sizeof(esc), d->type, 24);
                snprintf(lv, sizeof(lv), "\",\"level\":%d,\"alarm_type\":\"", d->level);
                sb_str(&b, lv);
                sb_str(&b, esc);
                sb_str(&b, "\"}");
            } else {
                /* level/alarm_type only with an alarm: a third of the bytes
                 * of a 10,000-device frame. */
                sb_str(&b, "\"}");
            }
        }
        freeReplyObject(rt);
        freeReplyObject(on);
        free(argv);
        free(argl);
        free(keys);
    }
    sb_str(&b, "]}");
    if(b.bad) {
        rc = MCS_ETOOBIG;
        goto out;
    }
    {
        struct api_msg *m = msg_new(b.p, b.n), *old;
        if(!m) {
            rc = MCS_ENOMEM;
            goto out;
        }
        m->built_ms = built; /* its ts_ms: delivery times are counted from it */
        pthread_mutex_lock(&f->mu);
        old = f->rt;
        f->rt = m;
        f->rt_frames++;
        pthread_mutex_unlock(&f->mu);
        msg_unref(old);
        lws_cancel_service(f->ctx->lws);
    }
    rc = 0;
out:
    free(b.p);
    return rc;
}

static void *tick_main(void *arg)
{
    struct api_feed *f = arg;
    PGconn *pg = NULL;
    redisContext *r = NULL;
    struct devrow *devs = NULL;
    int ndev = 0;
    int64_t dev_at = 0, next = mcs_mono_ms();
    char err[256];

    while(!atomic_load(&f->stop)) {
        int64_t now = mcs_mono_ms();
        if(now < next) {
            sleep_or_stop(f, next - now < 50 ? next - now : 50);
            continue;
        }
        next += 1000;
        if(next < now)
            next = now + 1000;
        if(!pg || PQstatus(pg) != CONNECTION_OK) {
            if(pg)
                PQfinish(pg);
            pg = mcs_pg_connect(&f->ctx->cfg, "mcs-api-feed", err, sizeof(err));
            if(pg && (mcs_pg_exec(pg, "SET statement_timeout = '2s'", err, sizeof(err)) ||
                      mcs_pg_exec(pg, "LISTEN mcs_device", err, sizeof(err)) ||
                      mcs_pg_exec(pg, "LISTEN mcs_config", err, sizeof(err)))) {
                PQfinish(pg);
                pg = NULL;
            }
            dev_at = 0;
        }
        if(!r || r->err) {
            if(r)
                redisFree(r);
            r = mcs_redis_connect(&f->ctx->cfg, err, sizeof(err));
        }
        if(r)
            sample_workers(f, r);
        if(!pg || !r)
            continue;
        int rc = build_frame(f, pg, r, &devs, &ndev, &dev_at);
        if(rc == MCS_EREDIS) {
            redisFree(r);
            r = NULL;
        }
        if(rc)
            LOG_D("feed", "realtime frame not built", LS("error", mcs_strerror(rc)));
    }
    free(devs);
    if(pg)
        PQfinish(pg);
    if(r)
        redisFree(r);
    return NULL;
}

static void handle_reply(struct api_feed *f, redisReply *rep)
{
    if(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
       rep->element[0]->type == REDIS_REPLY_STRING && !strcmp(rep->element[0]->str, "message") &&
       rep->element[2]->type == REDIS_REPLY_STRING)
        push_alarm(f, rep->element[2]->str, rep->element[2]->len);
}

/* Alarm events straight from the database: the trigger of migration 010
 * sends NOTIFY mcs_alarm in the transaction of every change, so each mcs-api
 * instance hears every committed event (API_ALARM_SOURCE=pg). */
static void *listen_main(void *arg)
{
    struct api_feed *f = arg;
    PGconn *pg = NULL;
    char err[256];

    while(!atomic_load(&f->stop)) {
        struct pollfd pfd;
        PGnotify *n;
        if(!pg || PQstatus(pg) != CONNECTION_OK) {
            if(pg)
                PQfinish(pg);
            pg = mcs_pg_connect(&f->ctx->cfg, "mcs-api-listen", err, sizeof(err));
            if(!pg || mcs_pg_exec(pg, "LISTEN mcs_alarm", err, sizeof(err))) {
                sleep_or_stop(f, 1000);
                continue;
            }
        }
        pfd.fd = PQsocket(pg);
        pfd.events = POLLIN;
        pfd.revents = 0;
        if(poll(&pfd, 1, 200) <= 0)
            continue;
        if(!PQconsumeInput(pg))
            continue;
        while((n = PQnotifies(pg))) {
            push_alarm(f, n->extra, strlen(n->extra));
            PQfreemem(n);
        }
    }
    if(pg)
        PQfinish(pg);
    return NULL;
}

static void *sub_main(void *arg)
{
    struct api_feed *f = arg;
    redisContext *r = NULL;
    char err[256];

    while(!atomic_load(&f->stop)) {
        struct pollfd pfd;
        redisReply *rep = NULL;
        if(!r || r->err) {
            if(r)
                redisFree(r);
            r = mcs_redis_connect(&f->ctx->cfg, err, sizeof(err));
            if(!r) {
                sleep_or_stop(f, 1000);
                continue;
            }
            rep = redisCommand(r, "SUBSCRIBE mcs:alarm");
            if(!rep) {
                freeReplyObject(rep);
                continue;
            }
            freeReplyObject(rep);
            rep = NULL;
            /* Blocking reads from here on are gated by poll(). */
            struct timeval tv = {0, 0};
            redisSetTimeout(r, tv);
        }
        pfd.fd = r->fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if(poll(&pfd, 1, 200) <= 0)
            continue;
        if(redisBufferRead(r) != REDIS_OK)
            continue;
        while(redisGetReplyFromReader(r, (void **)&rep) == REDIS_OK && rep) {
            handle_reply(f, rep);
            freeReplyObject(rep);
            rep = NULL;
        }
    }
    if(r)
        redisFree(r);
    return NULL;
}

int feed_start(struct api_ctx *ctx)
{
    struct api_feed *f = calloc(1, sizeof(*f));
    if(!f)
        return MCS_ENOMEM;
    f->ctx = ctx;
    pthread_mutex_init(&f->mu, NULL);
    ctx->feed = f;
    if(pthread_create(&f->tick, NULL, tick_main, f) == 0)
        f->tick_started = 1;
    if(pthread_create(&f->sub, NULL, strcmp(ctx->cfg.api_alarm_source, "redis") ? listen_main
                                                                              : sub_main,
                      f) == 0)
        f->sub_started = 1;
    return f->tick_started && f->sub_started ? 0 : MCS_ENOMEM;
}

void feed_stop(struct api_ctx *ctx)
{
    struct api_feed *f = ctx->feed;
    if(!f)
        return;
    atomic_store(&f->stop, 1);
    if(f->tick_started)
        pthread_join(f->tick, NULL);
    if(f->sub_started)
        pthread_join(f->sub, NULL);
    msg_unref(f->rt);
    while(f->an) {
        msg_unref(f->alarms[f->ah]);
        f->ah = (f->ah + 1) % ALARM_QMAX;
        f->an--;
    }
    pthread_mutex_destroy(&f->mu);
    free(f);
    ctx->feed = NULL;
}

struct api_msg *feed_take_realtime(struct api_feed *f)
{
    struct api_msg *m;
    pthread_mutex_lock(&f->mu);
    m = f->rt;
    f->rt = NULL;
    pthread_mutex_unlock(&f->mu);
    return m;
}

int feed_take_alarms(struct api_feed *f, struct api_msg **out, int max)
{
    int n = 0;
    pthread_mutex_lock(&f->mu);
    while(f->an && n < max) {
        out[n++] = f->alarms[f->ah];
        f->ah = (f->ah + 1) % ALARM_QMAX;
        f->an--;
    }
    pthread_mutex_unlock(&f->mu);
    return n;
}
