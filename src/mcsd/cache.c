/* cache.c - pipelined Redis writes with hiredis (synchronous context).
 * Owns its connection. Thread: the owner thread only. */
#include "cache.h"
#include "conn.h"
#include "err.h"
#include "log.h"
#include "timeutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void cache_init(struct mcs_cache *k, const struct mcs_config *cfg)
{
    memset(k, 0, sizeof(*k));
    k->cfg = cfg;
    k->backoff_ms = 1000;
}

void cache_cleanup(struct mcs_cache *k)
{
    if(k->c)
        redisFree(k->c);
    k->c = NULL;
}

/* Redis trouble must not slow storage: attempts are bounded by
 * REDIS_TIMEOUT_MS and spaced 1 s, 2 s, 4 s ... up to 30 s apart. */
static void backoff(struct mcs_cache *k)
{
    k->next_try_ms = mcs_mono_ms() + k->backoff_ms;
    k->backoff_ms = k->backoff_ms < 15000 ? k->backoff_ms * 2 : 30000;
}

static void drop(struct mcs_cache *k, const char *why)
{
    LOG_W("cache", "redis connection lost", LS("error", why));
    redisFree(k->c);
    k->c = NULL;
    k->pending = 0;
    backoff(k);
}


int cache_ready(struct mcs_cache *k)
{
    char err[256];
    if(k->c)
        return 1;
    if(mcs_mono_ms() < k->next_try_ms)
        return 0;
    k->c = mcs_redis_connect(k->cfg, err, sizeof(err));
    if(!k->c) {
        backoff(k);
        LOG_W("cache", "redis unavailable", LS("error", err), LI("retry_ms", k->backoff_ms / 2));
        return 0;
    }
    k->backoff_ms = 1000;
    k->generation++;
    LOG_I("cache", "redis connected");
    return 1;
}

static void append(struct mcs_cache *k, int argc, const char **argv, const size_t *lens)
{
    if(!k->c)
        return;
    if(redisAppendCommandArgv(k->c, argc, argv, lens) == REDIS_OK)
        k->pending++;
}

/* Formats a reading value for JSON: at most 6 decimals, trailing zeros
 * dropped (3516.1, 0, -75). Integer arithmetic: printf's %g was half of the
 * store thread's time at 100k readings/s. NaN → null. */
static size_t fmt_num(char *dst, size_t n, double v)
{
    char tmp[40];
    size_t o = 0, t = 0;
    if(isnan(v))
        return (size_t)snprintf(dst, n, "null");
    if(!(fabs(v) < 1e12))
        return (size_t)snprintf(dst, n, "%.10g", v);
    uint64_t scaled = (uint64_t)llround(fabs(v) * 1e6);
    uint64_t ip = scaled / 1000000, fp = scaled % 1000000;
    if(v < 0 && scaled)
        tmp[t++] = '-';
    char digits[24];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + ip % 10);
        ip /= 10;
    } while(ip);
    while(nd)
        tmp[t++] = digits[--nd];
    if(fp) {
        char frac[6];
        int last = -1;
        for(int i = 5; i >= 0; i--) {
            frac[i] = (char)('0' + fp % 10);
            fp /= 10;
        }
        for(int i = 0; i < 6; i++)
            if(frac[i] != '0')
                last = i;
        tmp[t++] = '.';
        for(int i = 0; i <= last; i++)
            tmp[t++] = frac[i];
    }
    if(t >= n)
        t = n - 1;
    memcpy(dst + o, tmp, t);
    dst[t] = '\0';
    return t;
}

/* The realtime:{sn} value: the reading as JSON. Returns its length. */
static size_t realtime_json(const struct mcs_jrec *r, const char *sn, char *json, size_t n)
{
    size_t o = 0;
    o += (size_t)snprintf(json + o, n - o, "{\"sn\":\"%s\",\"ts\":%lld,\"ppm\":", sn,
                          (long long)r->ts);
    o += fmt_num(json + o, n - o, r->ppm);
    o += (size_t)snprintf(json + o, n - o, ",\"v_raw\":");
    o += fmt_num(json + o, n - o, r->v_raw);
    o += (size_t)snprintf(json + o, n - o, ",\"temp\":");
    o += fmt_num(json + o, n - o, r->temp);
    o += (size_t)snprintf(json + o, n - o, ",\"humi\":");
    o += fmt_num(json + o, n - o, r->humi);
    o += (size_t)snprintf(json + o, n - o, ",\"bat\":");
    o += fmt_num(json + o, n - o, r->bat == MCS_ABSENT_INT ? NAN : r->bat);
    o += (size_t)snprintf(json + o, n - o, ",\"rssi\":");
    o += fmt_num(json + o, n - o, r->rssi == MCS_ABSENT_INT ? NAN : r->rssi);
    o += (size_t)snprintf(json + o, n - o, ",\"seq\":%d,\"err\":%d,\"over_range\":%s}", r->seq,
                          r->err, (r->flags & MCS_FLAG_OVER_RANGE) ? "true" : "false");
    return o;
}

void cache_put_reading(struct mcs_cache *k, const struct mcs_jrec *r, int realtime, int online,
                       int64_t last_seen)
{
    char sn[MCS_SN_MAX + 1], key[48];
    if(!k->c)
        return;
    jrec_sn(r, sn);
    if(online) {
        char ts[24], ttl[16];
        snprintf(key, sizeof(key), "online:%s", sn);
        snprintf(ts, sizeof(ts), "%lld", (long long)last_seen);
        snprintf(ttl, sizeof(ttl), "%d", k->cfg->offline_after_s); /* R-PR-3: 90 s */
        const char *a[] = {"SETEX", key, ttl, ts};
        size_t l[] = {5, strlen(key), strlen(ttl), strlen(ts)};
        append(k, 4, a, l);
    }
    if(realtime) {
        /* Built only when written: most readings of a fast device are not. */
        char json[512];
        size_t o = realtime_json(r, sn, json, sizeof(json));
        snprintf(key, sizeof(key), "realtime:%s", sn);
        const char *a[] = {"SETEX", key, "30", json};
        size_t l[] = {5, strlen(key), 2, o};
        append(k, 4, a, l);
    }
}

void cache_put_offline(struct mcs_cache *k, const char *sn)
{
    char key[48];
    snprintf(key, sizeof(key), "online:%s", sn);
    const char *a[] = {"DEL", key};
    size_t l[] = {3, strlen(key)};
    append(k, 2, a, l);
}

void cache_put_calib(struct mcs_cache *k, const char *sn, const struct mcs_calib *c)
{
    char key[48], json[256];
    snprintf(key, sizeof(key), "calib:%s", sn);
    int n = snprintf(json, sizeof(json),
                     "{\"k\":%.10g,\"b\":%.10g,\"t_ref\":%.10g,\"t_comp\":%.10g,\"range_max\":%.10g}",
                     c->k, c->b, c->t_ref, c->t_comp, c->range_max);
    const char *a[] = {"SETEX", key, "3600", json};
    size_t l[] = {5, strlen(key), 4, (size_t)n};
    append(k, 4, a, l);
}

void cache_put_invalidate(struct mcs_cache *k, const char *sn)
{
    char k1[48], k2[48];
    snprintf(k1, sizeof(k1), "device:%s", sn);
    snprintf(k2, sizeof(k2), "calib:%s", sn);
    const char *a[] = {"DEL", k1, k2};
    size_t l[] = {3, strlen(k1), strlen(k2)};
    append(k, 3, a, l);
}

void cache_put_metrics(struct mcs_cache *k, struct mcs_metrics *m,
                       const struct mcs_metrics_extra *x)
{
    enum { NF = 40 + MCS_REJ_COUNT };
    char key[96], names[NF][32], vals[NF][32];
    const char *argv[2 + 2 * NF];
    size_t lens[2 + 2 * NF];
    int n = 0;

    if(!k->c)
        return;
#define FIELD(name, fmt, v)                                                  \
    do {                                                                     \
        snprintf(names[n], sizeof(names[n]), "%s", name);                    \
        snprintf(vals[n], sizeof(vals[n]), fmt, v);                          \
        n++;                                                                 \
    } while(0)
#define COUNTER(f) FIELD(#f, "%llu", (unsigned long long)atomic_load(&m->f))
    COUNTER(received);
    COUNTER(accepted);
    COUNTER(status_msgs);
    COUNTER(rejected);
    COUNTER(stored);
    COUNTER(duplicates);
    COUNTER(batches);
    COUNTER(store_failed);
    COUNTER(spool_lost);
    COUNTER(unacked_drops);
    COUNTER(store_retries);
    COUNTER(quarantined);
    COUNTER(unlicensed);
    COUNTER(journal_bad_records);
    COUNTER(journal_gap_bytes);
    FIELD("db_up", "%d", atomic_load(&m->db_up));
    FIELD("redis_up", "%d", 1);
    FIELD("mqtt_connected", "%d", atomic_load(&m->mqtt_connected));
    FIELD("devices", "%u", x->devices);
    FIELD("broker_dropped", "%lld", (long long)atomic_load(&m->broker_dropped));
    FIELD("broker_clients", "%lld", (long long)atomic_load(&m->broker_clients));
    FIELD("spool_bytes", "%lld", (long long)x->spool_bytes);
    FIELD("rss_kb", "%ld", x->rss_kb);
    FIELD("alarm_open_devs", "%zu", x->alarm_open_devs);
    FIELD("alarm_state_bytes", "%zu", x->alarm_state_bytes);
    FIELD("cmd_results", "%llu", (unsigned long long)x->cmd_results);
    FIELD("cmd_results_dropped", "%llu", (unsigned long long)x->cmd_results_dropped);
    FIELD("lat_count", "%llu", (unsigned long long)m->lat_count);
    FIELD("lat_p50_ms", "%.2f", metrics_latency_pct(m, 50));
    FIELD("lat_p99_ms", "%.2f", metrics_latency_pct(m, 99));
    FIELD("updated_ms", "%lld", (long long)mcs_now_ms());
    for(int i = 0; i < MCS_REJ_COUNT; i++) {
        snprintf(names[n], sizeof(names[n]), "rej_%s", mcs_reject_name(i));
        snprintf(vals[n], sizeof(vals[n]), "%llu", (unsigned long long)atomic_load(&m->rej[i]));
        n++;
    }
#undef COUNTER
#undef FIELD
    snprintf(key, sizeof(key), "mcs:metrics:%s", k->cfg->instance_id);
    argv[0] = "HSET";
    lens[0] = 4;
    argv[1] = key;
    lens[1] = strlen(key);
    for(int i = 0; i < n; i++) {
        argv[2 + 2 * i] = names[i];
        lens[2 + 2 * i] = strlen(names[i]);
        argv[3 + 2 * i] = vals[i];
        lens[3 + 2 * i] = strlen(vals[i]);
    }
    append(k, 2 + 2 * n, argv, lens);
    const char *sa[] = {"SADD", "mcs:instances", k->cfg->instance_id};
    size_t sl[] = {4, 13, strlen(k->cfg->instance_id)};
    append(k, 3, sa, sl);
}

int cache_send(struct mcs_cache *k)
{
    int done = 0;
    if(!k->c)
        return MCS_EREDIS;
    while(!done)
        if(redisBufferWrite(k->c, &done) != REDIS_OK) {
            drop(k, k->c->errstr);
            return MCS_EREDIS;
        }
    return 0;
}

int cache_collect(struct mcs_cache *k)
{
    if(!k->c)
        return MCS_EREDIS;
    while(k->pending > 0) {
        redisReply *rep = NULL;
        if(redisGetReply(k->c, (void **)&rep) != REDIS_OK) {
            drop(k, k->c->errstr);
            return MCS_EREDIS;
        }
        if(rep && rep->type == REDIS_REPLY_ERROR)
            LOG_W("cache", "redis command failed", LS("error", rep->str));
        freeReplyObject(rep);
        k->pending--;
    }
    return 0;
}

int cache_flush(struct mcs_cache *k)
{
    int rc = cache_send(k);
    return rc ? rc : cache_collect(k);
}
