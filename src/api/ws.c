/* ws.c - the dashboard WebSocket protocol (see ws.h).
 * Owns the client list and their queues. Thread: the lws loop thread. */
#include "ws.h"
#include "api.h"
#include "audit.h"
#include "auth.h"
#include "err.h"
#include "feed.h"
#include "http.h"
#include "log.h"
#include "reqparse.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WSQ 64            /* queued alarm/reply frames per client */
#define RECHECK_S 2       /* an authenticated client's user is checked this often */
#define MAX_BAD 10        /* garbage frames before the server closes */
#define UNAUTHED_GRACE_MS 1000 /* a socket this young is not closed to make room */
#define SILENCE_BURST 5   /* silence frames a client may send at once ... */
#define SILENCE_EVERY_MS 1000 /* ... then one per this interval */
#define SILENCE_MAX 1000  /* alarm ids in one silence frame */
#define ID_MAX 9007199254740991.0 /* 2^53 - 1: exact in a JSON number */

struct ws_client {
    struct lws *wsi;
    struct ws_client *prev, *next;
    int linked; /* in the list and counted (ESTABLISHED); a refused upgrade never is */
    int authed, bad, closing;
    char user[65];
    char ip[64]; /* the client's address, for audit rows */
    enum api_role role;
    long gen; /* the token's session generation (auth_user_valid) */
    long exp; /* the token's expiry: the feed stops with it */
    int64_t opened_ms;
    int64_t silence_ms; /* the silence token bucket: full at now - BURST * EVERY */
    struct api_msg *q[WSQ];
    int qh, qn;
    struct api_msg *rt; /* newest realtime frame not yet written */
    struct api_msg *cur; /* the message being written, fragment by fragment */
    size_t off;          /* bytes of cur written */
    int64_t done_ms;     /* monotonic: a message last completed (or the open) */
    size_t rxlen;
    int rx_over;
    char rx[WS_RX_MAX + 1];
};

struct api_ws {
    struct ws_client *head;
    struct api_ws_stats st;
    /* A fragment after the first is copied here: lws writes the fragment's
     * header into the LWS_PRE bytes before it, which in the shared frame
     * are bytes of the message other clients have still to send. */
    unsigned char tx[LWS_PRE + WS_TX_CHUNK];
};

const size_t ws_pss_size = sizeof(struct ws_client);

static struct api_ctx *ctx_of(struct lws *wsi)
{
    return (struct api_ctx *)lws_context_user(lws_get_context(wsi));
}

int ws_init(struct api_ctx *ctx)
{
    ctx->ws = calloc(1, sizeof(*ctx->ws));
    return ctx->ws ? 0 : MCS_ENOMEM;
}

void ws_cleanup(struct api_ctx *ctx)
{
    free(ctx->ws);
    ctx->ws = NULL;
}

void ws_stats(struct api_ctx *ctx, struct api_ws_stats *out)
{
    if(ctx->ws)
        *out = ctx->ws->st;
    else
        memset(out, 0, sizeof(*out));
}

/* Closes a client that cannot keep up (counted, logged). */
static void drop(struct api_ctx *ctx, struct ws_client *c, const char *why)
{
    c->closing = 1;
    ctx->ws->st.dropped++;
    LOG_W("ws", "slow dashboard client dropped", LS("user", c->user), LS("ip", c->ip),
          LS("reason", why));
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* Queues a frame (takes the reference). Returns 0, or -1 when the client is
 * too far behind and is being dropped. */
static int enqueue(struct api_ctx *ctx, struct ws_client *c, struct api_msg *m)
{
    if(c->closing) {
        msg_unref(m);
        return -1;
    }
    if(c->qn == WSQ) {
        msg_unref(m);
        drop(ctx, c, "alarm backlog");
        return -1;
    }
    c->q[(c->qh + c->qn) % WSQ] = m;
    c->qn++;
    lws_callback_on_writable(c->wsi);
    return 0;
}

static void send_json(struct api_ctx *ctx, struct ws_client *c, cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if(!s)
        return;
    struct api_msg *m = msg_new(s, strlen(s));
    free(s);
    if(m)
        enqueue(ctx, c, m);
}

static void send_error(struct api_ctx *ctx, struct ws_client *c, int code, const char *detail)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", "error");
    cJSON_AddNumberToObject(j, "code", code);
    cJSON_AddStringToObject(j, "message", api_code_message(code));
    cJSON_AddStringToObject(j, "detail", detail);
    send_json(ctx, c, j);
}

static void unlink_client(struct api_ws *w, struct ws_client *c)
{
    if(c->prev)
        c->prev->next = c->next;
    else if(w->head == c)
        w->head = c->next;
    if(c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* Unauthenticated sockets are bounded apart from the dashboards
 * (WS_UNAUTHED_MAX, WS_UNAUTHED_PER_ADDR): while a bound is passed, the
 * oldest unauthenticated socket (of the newcomer's address, for the second
 * bound) is closed. A socket younger than UNAUTHED_GRACE_MS is spared: 200
 * screens opening at once behind one address (a restart of mcs-api) are
 * all established before libwebsockets reads their auth frames. So
 * strangers who open sockets and never authenticate cannot keep a
 * dashboard out, and hold at most the bounds plus what they open within
 * the grace. */
static void make_room(struct api_ctx *ctx, const struct ws_client *c)
{
    int64_t young = mcs_mono_ms() - UNAUTHED_GRACE_MS;

    for(;;) {
        struct ws_client *oldest = NULL, *oldest_here = NULL;
        int all = 0, here = 0;

        for(struct ws_client *o = ctx->ws->head; o; o = o->next) {
            if(o->authed || o->closing)
                continue;
            all++;
            here += !strcmp(o->ip, c->ip);
            if(o->opened_ms > young)
                continue;
            if(!oldest || o->opened_ms <= oldest->opened_ms)
                oldest = o;
            if(!strcmp(o->ip, c->ip) &&
               (!oldest_here || o->opened_ms <= oldest_here->opened_ms))
                oldest_here = o;
        }
        if(here > ctx->cfg.ws_unauthed_per_addr && oldest_here)
            oldest = oldest_here;
        else if(all <= ctx->cfg.ws_unauthed_max)
            return;
        if(!oldest)
            return;
        ctx->ws->st.unauthed_closed++;
        oldest->closing = 1;
        lws_set_timeout(oldest->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

/* Runs sql with the one text parameter v on pg: the rows, or NULL after
 * an error frame `fail` (90007) to c. */
static PGresult *query1(struct api_ctx *ctx, struct ws_client *c, PGconn *pg, const char *sql,
                        const char *v, const char *fail)
{
    PGresult *r = PQexecParams(pg, sql, 1, NULL, &v, NULL, NULL, 0);
    if(PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    PQclear(r);
    api_pg_check(ctx);
    send_error(ctx, c, E_UNAVAIL, fail);
    return NULL;
}

static void history(struct api_ctx *ctx, struct ws_client *c, const char *sn)
{
    PGconn *pg = api_pg(ctx);
    const char *v[1] = {sn};
    PGresult *r;
    cJSON *j, *pts;

    if(!rq_sn_valid(sn)) {
        send_error(ctx, c, E_BAD_REQ, "sn must match ^[A-Za-z0-9_-]{1,32}$");
        return;
    }
    if(!pg) {
        send_error(ctx, c, E_UNAVAIL, "database unavailable");
        return;
    }
    r = PQexecParams(pg, "SELECT 1 FROM devices WHERE sn = $1", 1, NULL, v, NULL, NULL, 0);
    if(PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        int bad = PQresultStatus(r) != PGRES_TUPLES_OK;
        PQclear(r);
        api_pg_check(ctx);
        send_error(ctx, c, bad ? E_UNAVAIL : E_DEV_NOTFOUND, sn);
        return;
    }
    PQclear(r);
    r = query1(ctx, c, pg,
               "SELECT to_char(b AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
               "round(avg(ppm)::numeric, 3), round(avg(temp)::numeric, 2) FROM ("
               "SELECT date_bin('1 minute', time, TIMESTAMPTZ 'epoch') b, ppm, temp "
               "FROM sensor_data WHERE sn = $1 AND time >= now() - interval '1 hour' "
               "AND time <= now()) s GROUP BY b ORDER BY b",
               sn, "history query failed");
    if(!r)
        return;
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", "history");
    cJSON_AddStringToObject(j, "sn", sn);
    cJSON_AddStringToObject(j, "interval", "1m");
    pts = cJSON_AddArrayToObject(j, "points");
    for(int i = 0; i < PQntuples(r); i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddItemToObject(p, "ts", api_pg_str(r, i, 0));
        cJSON_AddItemToObject(p, "ppm", api_pg_num(r, i, 1));
        cJSON_AddItemToObject(p, "temp", api_pg_num(r, i, 2));
        cJSON_AddItemToArray(pts, p);
    }
    PQclear(r);
    send_json(ctx, c, j);
}

/* Whether c's user still holds its token's role and gen: one whose user
 * was disabled, deleted, re-roled or changed password is marked closing
 * with the close reason 4001 set; the caller, in c's own callback, then
 * returns -1. Returns 1 when the user is still valid (or the database
 * cannot say). */
static int user_still_valid(struct api_ctx *ctx, struct ws_client *c)
{
    int v = auth_user_valid(ctx->auth, api_pg(ctx), c->user, c->role, c->gen, mcs_mono_ms());
    if(v < 0) {
        api_pg_check(ctx);
        return 1;
    }
    if(!v) {
        /* The caller (in c's own callback) returns -1: closed with 4001. */
        ctx->st.auth_rejected++;
        c->closing = 1;
        LOG_I("ws", "dashboard session ended with its user", LS("user", c->user),
              LS("ip", c->ip));
        lws_close_reason(c->wsi, 4001, (unsigned char *)"session ended", 13);
    }
    return v;
}

/* {"type":"silence","ids":[...]}: the wall screen's 消音 (issue #9). One
 * audit_logs row `alarm.silence` with the token's user (a "user" member of
 * the frame is ignored), as target the ids that are alarms on screen
 * (docs/ALARMS.md: open, or a latched gas alarm not yet acknowledged), and
 * the client address; answers {"type":"silenced","ids":[...],"ignored":[...]}.
 * Ids of no alarm on screen are ignored; when none is left, an error and no
 * row. SILENCE_BURST frames at once, then one a second per connection
 * (issue #16): more get an error and no row. Any authenticated role may
 * silence. */
static void silence(struct api_ctx *ctx, struct ws_client *c, const cJSON *j)
{
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "ids");
    const cJSON *id;
    cJSON *after = NULL, *list, *ignored = NULL, *o;
    char *arr = NULL, *target = NULL, *p;
    PGresult *r = NULL;
    PGconn *pg;
    int64_t now = mcs_mono_ms(), full = now - SILENCE_BURST * SILENCE_EVERY_MS;
    int n;

    n = cJSON_IsArray(ids) ? cJSON_GetArraySize(ids) : 0;
    if(n < 1 || n > SILENCE_MAX) {
        ctx->ws->st.bad_frames++;
        send_error(ctx, c, E_BAD_REQ, "silence needs ids: an array of 1..1000 alarm ids");
        return;
    }
    cJSON_ArrayForEach(id, ids)
    {
        double d = cJSON_IsNumber(id) ? id->valuedouble : 0;
        if(!(d >= 1 && d <= ID_MAX) || (double)(long long)d != d) {
            ctx->ws->st.bad_frames++;
            send_error(ctx, c, E_BAD_REQ, "alarm ids must be positive integers");
            return;
        }
    }
    if(c->silence_ms < full)
        c->silence_ms = full;
    if(c->silence_ms + SILENCE_EVERY_MS > now) {
        ctx->ws->st.bad_frames++;
        send_error(ctx, c, E_TOOMANY, "silence: at most one frame a second");
        return;
    }
    c->silence_ms += SILENCE_EVERY_MS;
    if(!user_still_valid(ctx, c))
        return;
    if(!(pg = api_pg(ctx))) {
        send_error(ctx, c, E_UNAVAIL, "database unavailable");
        return;
    }
    arr = malloc((size_t)n * 18 + 3); /* 16 digits and a comma each, braces */
    target = malloc((size_t)n * 18 + 1);
    after = cJSON_CreateObject();
    list = after ? cJSON_AddArrayToObject(after, "ids") : NULL;
    ignored = cJSON_CreateArray();
    if(!arr || !target || !list || !ignored) {
        send_error(ctx, c, E_INTERNAL, "out of memory");
        goto out;
    }
    p = arr;
    *p++ = '{';
    cJSON_ArrayForEach(id, ids)
        p += snprintf(p, 18, "%s%lld", p == arr + 1 ? "" : ",", (long long)id->valuedouble);
    snprintf(p, 2, "}");
    /* The ids in the order given, each once, that are alarms on screen
     * (the predicate spelled as in migration 022). */
    r = query1(ctx, c, pg,
               "SELECT i.id, a.id IS NOT NULL FROM (SELECT id, min(o) o FROM "
               "unnest($1::bigint[]) WITH ORDINALITY u(id, o) GROUP BY id) i "
               "LEFT JOIN alarm_logs a ON a.id = i.id AND (a.cleared_at IS NULL OR "
               "(a.category = 'gas' AND a.ack_at IS NULL)) ORDER BY i.o",
               arr, "silence not recorded");
    if(!r)
        goto out;
    p = target;
    *p = '\0';
    for(int i = 0; i < PQntuples(r); i++) {
        double d = strtod(PQgetvalue(r, i, 0), NULL);
        if(PQgetvalue(r, i, 1)[0] != 't') {
            cJSON_AddItemToArray(ignored, cJSON_CreateNumber(d));
            continue;
        }
        p += snprintf(p, 18, "%s%s", p == target ? "" : ",", PQgetvalue(r, i, 0));
        cJSON_AddItemToArray(list, cJSON_CreateNumber(d));
    }
    if(!cJSON_GetArraySize(list)) {
        send_error(ctx, c, E_NOTFOUND, "silence: no such alarm on screen");
        goto out;
    }
    if(audit_log_as(ctx, c->user, c->ip, "alarm.silence", target, NULL, after)) {
        api_pg_check(ctx);
        send_error(ctx, c, E_UNAVAIL, "silence not recorded");
        goto out;
    }
    LOG_I("ws", "alarms silenced", LS("user", c->user), LI("count", cJSON_GetArraySize(list)));
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "silenced");
    cJSON_AddItemToObject(o, "ids", cJSON_Duplicate(list, 1));
    cJSON_AddItemToObject(o, "ignored", ignored);
    ignored = NULL;
    cJSON_AddStringToObject(o, "user", c->user);
    cJSON_AddNumberToObject(o, "ts", (double)(mcs_now_ms() / 1000));
    send_json(ctx, c, o);
out:
    PQclear(r);
    free(arr);
    free(target);
    cJSON_Delete(after);
    cJSON_Delete(ignored);
}

static int on_message(struct lws *wsi, struct api_ctx *ctx, struct ws_client *c)
{
    char err[128];
    cJSON *j = rq_json_object((const unsigned char *)c->rx, c->rxlen, err, sizeof(err));
    const cJSON *type = j ? cJSON_GetObjectItemCaseSensitive(j, "type") : NULL;

    if(!cJSON_IsString(type)) {
        ctx->ws->st.bad_frames++;
        cJSON_Delete(j);
        if(++c->bad > MAX_BAD || !c->authed) {
            lws_close_reason(wsi, c->authed ? LWS_CLOSE_STATUS_POLICY_VIOLATION : 4001,
                             (unsigned char *)"bad frames", 10);
            return -1;
        }
        send_error(ctx, c, E_BAD_REQ, j ? "frame needs a string type" : err);
        return 0;
    }
    if(!strcmp(type->valuestring, "auth")) {
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "token");
        if(c->authed) {
            send_error(ctx, c, E_BAD_REQ, "already authenticated");
        } else if(!cJSON_IsString(tok) ||
                  auth_verify(&ctx->cfg, tok->valuestring, mcs_now_ms() / 1000, c->user,
                              &c->role, &c->gen, &c->exp, err, sizeof(err)) ||
                  !user_still_valid(ctx, c)) {
            ctx->st.auth_rejected++;
            cJSON_Delete(j);
            lws_close_reason(wsi, 4001, (unsigned char *)"unauthorized", 12);
            return -1;
        } else if(ctx->ws->st.clients >= ctx->cfg.ws_max_clients) {
            LOG_W("ws", "dashboard client refused: WS_MAX_CLIENTS reached", LS("user", c->user),
                  LS("ip", c->ip));
            cJSON_Delete(j);
            lws_close_reason(wsi, (enum lws_close_status)1013, (unsigned char *)"full", 4);
            return -1;
        } else {
            cJSON *o = cJSON_CreateObject();
            c->authed = 1;
            ctx->ws->st.unauthed--;
            ctx->ws->st.clients++;
            lws_set_timer_usecs(wsi, (lws_usec_t)RECHECK_S * LWS_USEC_PER_SEC);
            cJSON_AddStringToObject(o, "type", "connected");
            cJSON_AddStringToObject(o, "user", c->user);
            cJSON_AddStringToObject(o, "role", auth_role_name(c->role));
            cJSON_AddNumberToObject(o, "ts", (double)(mcs_now_ms() / 1000));
            send_json(ctx, c, o);
        }
    } else if(!c->authed) {
        cJSON_Delete(j);
        lws_close_reason(wsi, 4001, (unsigned char *)"authenticate first", 18);
        return -1;
    } else if(!strcmp(type->valuestring, "ping")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "pong");
        cJSON_AddNumberToObject(o, "ts", (double)(mcs_now_ms() / 1000));
        send_json(ctx, c, o);
    } else if(!strcmp(type->valuestring, "subscribe")) {
        const cJSON *sn = cJSON_GetObjectItemCaseSensitive(j, "sn");
        if(!cJSON_IsString(sn))
            send_error(ctx, c, E_BAD_REQ, "subscribe needs sn");
        else
            history(ctx, c, sn->valuestring);
    } else if(!strcmp(type->valuestring, "silence")) {
        silence(ctx, c, j);
    } else {
        ctx->ws->st.bad_frames++;
        send_error(ctx, c, E_BAD_REQ, "unknown type");
    }
    cJSON_Delete(j);
    return c->closing ? -1 : 0; /* the session ended (user_still_valid) */
}

/* New frames from the feed: realtime replaces a client's unsent one (a slow
 * client skips frames), alarms queue. */
static void fan_out(struct api_ctx *ctx)
{
    struct api_msg *rt = ctx->feed ? feed_take_realtime(ctx->feed) : NULL;
    struct api_msg *al[64];
    int na;

    do {
        na = ctx->feed ? feed_take_alarms(ctx->feed, al, 64) : 0;
        for(struct ws_client *c = ctx->ws->head, *next; c; c = next) {
            next = c->next;
            if(!c->authed || c->closing)
                continue;
            for(int i = 0; i < na; i++) {
                msg_ref(al[i]);
                if(enqueue(ctx, c, al[i]))
                    break;
            }
        }
        for(int i = 0; i < na; i++)
            msg_unref(al[i]);
    } while(na == 64);
    if(!rt)
        return;
    for(struct ws_client *c = ctx->ws->head; c; c = c->next) {
        if(!c->authed || c->closing)
            continue;
        if(c->exp <= mcs_now_ms() / 1000) {
            /* The token expired: the client must authenticate again. */
            c->closing = 1;
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            continue;
        }
        if(c->rt || c->cur) {
            /* Behind. One that completes nothing for WS_STALL_S would hold
             * an old frame (its message in progress) for ever. */
            if(mcs_mono_ms() - c->done_ms > (int64_t)ctx->cfg.ws_stall_s * 1000) {
                drop(ctx, c, "stalled");
                continue;
            }
        }
        if(c->rt) {
            ctx->ws->st.realtime_skipped++;
            msg_unref(c->rt);
        }
        msg_ref(rt);
        c->rt = rt;
        lws_callback_on_writable(c->wsi);
    }
    msg_unref(rt);
}

static void delivered(struct api_ws_stats *st, int64_t ms)
{
    static const int64_t bound[WS_NDELIVERY] = WS_DELIVERY_BUCKETS;
    int i = 0;
    if(ms < 0)
        ms = 0; /* the wall clock stepped back */
    while(i < WS_NDELIVERY && ms > bound[i])
        i++;
    st->delivered[i]++;
    st->delivered_ms_sum += (uint64_t)ms;
}

/* Writes the client's messages, alarms and replies before realtime, each
 * in fragments of WS_TX_CHUNK, until the socket would block. A message
 * once begun is finished before the next (fragments of two messages cannot
 * interleave). Returns 0, or -1 to close. */
static int writable(struct lws *wsi, struct api_ctx *ctx, struct ws_client *c)
{
    struct api_ws *w = ctx->ws;

    if(c->closing)
        return -1;
    for(;;) {
        struct api_msg *m;
        unsigned char *p;
        size_t left, k;
        int flags;

        if(!c->cur) {
            if(c->qn) {
                c->cur = c->q[c->qh];
                c->qh = (c->qh + 1) % WSQ;
                c->qn--;
            } else if(c->rt) {
                c->cur = c->rt;
                c->rt = NULL;
            } else {
                return 0;
            }
            c->off = 0;
        }
        m = c->cur;
        left = m->len - c->off;
        k = left < WS_TX_CHUNK ? left : WS_TX_CHUNK;
        flags = c->off ? LWS_WRITE_CONTINUATION : LWS_WRITE_TEXT;
        if(k < left)
            flags |= LWS_WRITE_NO_FIN;
        if(c->off) {
            memcpy(w->tx + LWS_PRE, m->data + c->off, k);
            p = w->tx + LWS_PRE;
        } else {
            p = m->data; /* its LWS_PRE bytes are the frame's own */
        }
        if(lws_write(wsi, p, k, (enum lws_write_protocol)flags) < (int)k)
            return -1;
        c->off += k;
        if(c->off == m->len) {
            if(m->built_ms)
                delivered(&w->st, mcs_now_ms() - m->built_ms);
            c->cur = NULL;
            msg_unref(m);
            w->st.frames_sent++;
            c->done_ms = mcs_mono_ms();
        }
        if(lws_send_pipe_choked(wsi)) {
            if(c->cur || c->qn || c->rt)
                lws_callback_on_writable(wsi);
            return 0;
        }
    }
}

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                size_t len)
{
    struct ws_client *c = user;
    struct api_ctx *ctx;
    char uri[64];

    switch(reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        ctx = ctx_of(wsi);
        if(lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0 ||
           strcmp(uri, "/ws/dashboard") != 0)
            return 1;
        if(ctx->ws->st.clients >= ctx->cfg.ws_max_clients) {
            LOG_W("ws", "dashboard client refused: WS_MAX_CLIENTS reached");
            return 1;
        }
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
        ctx = ctx_of(wsi);
        memset(c, 0, sizeof(*c));
        c->wsi = wsi;
        c->done_ms = c->opened_ms = mcs_mono_ms();
        http_client_ip(wsi, ctx, c->ip, sizeof(c->ip));
        c->next = ctx->ws->head;
        if(c->next)
            c->next->prev = c;
        ctx->ws->head = c;
        c->linked = 1;
        ctx->ws->st.unauthed++;
        lws_set_timer_usecs(wsi, (lws_usec_t)ctx->cfg.ws_auth_timeout_s * LWS_USEC_PER_SEC);
        make_room(ctx, c);
        return 0;
    case LWS_CALLBACK_TIMER:
        if(c && c->linked && !c->authed) {
            lws_close_reason(wsi, 4001, (unsigned char *)"authentication timeout", 22);
            return -1;
        }
        if(c && c->authed && !c->closing) {
            if(!user_still_valid(ctx_of(wsi), c))
                return -1;
            lws_set_timer_usecs(wsi, (lws_usec_t)RECHECK_S * LWS_USEC_PER_SEC);
        }
        return 0;
    case LWS_CALLBACK_RECEIVE:
        ctx = ctx_of(wsi);
        if(c->rxlen + len > WS_RX_MAX || c->rx_over) {
            ctx->ws->st.bad_frames++;
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                             (unsigned char *)"frame too large", 15);
            return -1;
        }
        memcpy(c->rx + c->rxlen, in, len);
        c->rxlen += len;
        if(!lws_is_final_fragment(wsi))
            return 0;
        c->rx[c->rxlen] = '\0';
        {
            int rc = on_message(wsi, ctx, c);
            c->rxlen = 0;
            return rc;
        }
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return writable(wsi, ctx_of(wsi), c);
    case LWS_CALLBACK_CLOSED:
        ctx = ctx_of(wsi);
        if(!c || !c->linked)
            return 0; /* a refused upgrade: never counted */
        unlink_client(ctx->ws, c);
        c->linked = 0;
        if(c->authed)
            ctx->ws->st.clients--;
        else
            ctx->ws->st.unauthed--;
        while(c->qn) {
            msg_unref(c->q[c->qh]);
            c->qh = (c->qh + 1) % WSQ;
            c->qn--;
        }
        msg_unref(c->rt);
        c->rt = NULL;
        msg_unref(c->cur);
        c->cur = NULL;
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        ctx = ctx_of(wsi);
        if(ctx->ws)
            fan_out(ctx);
        return 0;
    default:
        break;
    }
    return 0;
}
