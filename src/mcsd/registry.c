/* registry.c - device table: an array of slots plus an SN index (hmap.h).
 * Owns the table and its mutex. Thread: any (ingest, store, registry). */
#include "registry.h"
#include "err.h"
#include "log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int registry_init(struct mcs_registry *r)
{
    int rc;
    memset(r, 0, sizeof(*r));
    if((rc = hmap_init(&r->index, sizeof(uint32_t), 1024, 0)))
        return rc;
    pthread_mutex_init(&r->lock, NULL);
    return 0;
}

void registry_cleanup(struct mcs_registry *r)
{
    free(r->dev);
    hmap_cleanup(&r->index);
    pthread_mutex_destroy(&r->lock);
    memset(r, 0, sizeof(*r));
}

/* Lock held. Returns the slot or NULL. */
static struct mcs_device *find(struct mcs_registry *r, const char *sn)
{
    const uint32_t *slot = hmap_find(&r->index, sn, strnlen(sn, MCS_SN_MAX + 1));
    return slot ? &r->dev[*slot] : NULL;
}

int registry_upsert(struct mcs_registry *r, const char *sn, const struct mcs_calib *c,
                    double high, double low, int enabled)
{
    int rc = 0;
    struct mcs_device *d;

    if(strlen(sn) > MCS_SN_MAX)
        return MCS_EINVAL;
    pthread_mutex_lock(&r->lock);
    d = find(r, sn);
    if(!d) {
        if(r->n == r->cap) {
            uint32_t ncap = r->cap ? r->cap * 2 : 256;
            struct mcs_device *nd = realloc(r->dev, (size_t)ncap * sizeof(*nd));
            if(!nd) {
                rc = MCS_ENOMEM;
                goto out;
            }
            r->dev = nd;
            r->cap = ncap;
        }
        d = &r->dev[r->n];
        memset(d, 0, sizeof(*d));
        memcpy(d->sn, sn, strlen(sn) + 1);
        d->bat = d->rssi = MCS_ABSENT_INT;
        uint32_t *slot;
        if((rc = hmap_insert(&r->index, sn, strlen(sn), (void **)&slot, NULL)))
            goto out;
        *slot = r->n++;
        r->live++;
    }
    else if(d->deleted) {
        d->deleted = 0;
        r->live++;
    }
    d->calib = *c;
    d->alarm_high = high;
    d->alarm_low = low;
    d->enabled = enabled ? 1 : 0;
out:
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void registry_remove(struct mcs_registry *r, const char *sn)
{
    pthread_mutex_lock(&r->lock);
    struct mcs_device *d = find(r, sn);
    if(d && !d->deleted) {
        d->deleted = 1;
        r->live--;
    }
    pthread_mutex_unlock(&r->lock);
}

static double getd(PGresult *res, int row, int col, double dflt)
{
    if(PQgetisnull(res, row, col))
        return dflt;
    return strtod(PQgetvalue(res, row, col), NULL);
}

/* LEAST/GREATEST skip NULLs: the first limit a reading crosses (alarm_high). */
#define DEVICE_COLS "sn, calib_k, calib_b, calib_t_ref, calib_t_comp, range_max, " \
                    "LEAST(high_limit, high_limit2), GREATEST(low_limit, low_limit2), enabled"

static int apply_rows(struct mcs_registry *r, PGresult *res)
{
    for(int i = 0; i < PQntuples(res); i++) {
        struct mcs_calib c = {getd(res, i, 1, 1), getd(res, i, 2, 0), getd(res, i, 3, 25),
                              getd(res, i, 4, 0), getd(res, i, 5, 50000)};
        int rc = registry_upsert(r, PQgetvalue(res, i, 0), &c, getd(res, i, 6, NAN),
                                 getd(res, i, 7, NAN), PQgetvalue(res, i, 8)[0] == 't');
        if(rc)
            return rc;
    }
    return 0;
}

int registry_load(struct mcs_registry *r, PGconn *pg)
{
    int rc = 0;
    PGresult *res = NULL;
    uint8_t *seen = NULL;
    uint32_t before;

    /* Everything currently known is "deleted" unless the table has it. */
    pthread_mutex_lock(&r->lock);
    before = r->n;
    seen = calloc(before ? before : 1, 1);
    pthread_mutex_unlock(&r->lock);
    if(!seen)
        return MCS_ENOMEM;

    res = PQexec(pg, "BEGIN; DECLARE mcs_dev CURSOR FOR SELECT " DEVICE_COLS " FROM devices");
    if(PQresultStatus(res) != PGRES_COMMAND_OK) {
        LOG_E("registry", "load failed", LS("error", PQresultErrorMessage(res)));
        rc = MCS_EDB;
        goto out;
    }
    for(;;) {
        PQclear(res);
        res = PQexec(pg, "FETCH 5000 FROM mcs_dev");
        if(PQresultStatus(res) != PGRES_TUPLES_OK) {
            LOG_E("registry", "load failed", LS("error", PQresultErrorMessage(res)));
            rc = MCS_EDB;
            goto out;
        }
        if(PQntuples(res) == 0)
            break;
        if((rc = apply_rows(r, res)))
            goto out;
        pthread_mutex_lock(&r->lock);
        for(int i = 0; i < PQntuples(res); i++) {
            struct mcs_device *d = find(r, PQgetvalue(res, i, 0));
            uint32_t slot = (uint32_t)(d - r->dev);
            if(slot < before)
                seen[slot] = 1;
        }
        pthread_mutex_unlock(&r->lock);
    }
    pthread_mutex_lock(&r->lock);
    for(uint32_t s = 0; s < before; s++)
        if(!seen[s] && !r->dev[s].deleted) {
            r->dev[s].deleted = 1;
            r->live--;
        }
    pthread_mutex_unlock(&r->lock);
out:
    PQclear(res);
    res = PQexec(pg, rc ? "ROLLBACK" : "COMMIT");
    PQclear(res);
    free(seen);
    return rc;
}

int registry_reload_one(struct mcs_registry *r, PGconn *pg, const char *sn)
{
    const char *params[1] = {sn};
    int rc = 0;
    PGresult *res = PQexecParams(pg, "SELECT " DEVICE_COLS " FROM devices WHERE sn = $1", 1,
                                 NULL, params, NULL, NULL, 0);
    if(PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = MCS_EDB;
        goto out;
    }
    if(PQntuples(res) == 0)
        registry_remove(r, sn);
    else
        rc = apply_rows(r, res);
out:
    PQclear(res);
    return rc;
}

int registry_note_ver(struct mcs_registry *r, const char *sn, const char *ver)
{
    int rc = 0;
    struct mcs_device *d;

    pthread_mutex_lock(&r->lock);
    d = find(r, sn);
    if(!d || d->deleted) {
        rc = MCS_ENOTFOUND;
        goto out;
    }
    if(strncmp(d->ver, ver, sizeof(d->ver)) != 0) {
        snprintf(d->ver, sizeof(d->ver), "%s", ver);
        d->dirty = 1;
    }
out:
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int registry_observe(struct mcs_registry *r, const struct mcs_reading *rd, struct mcs_calib *c)
{
    int rc = MCS_REG_OK;
    pthread_mutex_lock(&r->lock);
    struct mcs_device *d = find(r, rd->sn);
    if(!d || d->deleted) {
        rc = MCS_REG_UNKNOWN;
        goto out;
    }
    if(!d->enabled) {
        rc = MCS_REG_DISABLED;
        goto out;
    }
    *c = d->calib;
    if(d->have_seq) {
        uint32_t gap = ((uint32_t)rd->seq - d->last_seq) & 0xffffu;
        if(gap == 0 || gap >= 32768) {
            /* seq behind (or equal): a repeat or a resend from the device's
             * offline cache — unless its time moved on, which means the
             * device restarted its count (a reboot): then it is live. */
            if(rd->ts <= d->last_ts) {
                rc = MCS_REG_RESENT; /* neither received nor lost */
                goto out;
            }
            gap = 1;
        }
        d->lost_delta += gap - 1;
    }
    d->have_seq = 1;
    d->last_seq = (uint16_t)rd->seq;
    if(rd->ts > d->last_ts)
        d->last_ts = rd->ts;
    d->recv_delta++;
    d->err = (int16_t)rd->err;
    if(rd->bat != MCS_ABSENT_INT)
        d->bat = rd->bat;
    if(rd->rssi != MCS_ABSENT_INT)
        d->rssi = rd->rssi;
    if(rd->ver[0])
        memcpy(d->ver, rd->ver, sizeof(d->ver));
    d->dirty = 1;
out:
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int registry_mark_seen(struct mcs_registry *r, const char *sn, int64_t recv_s, int64_t now_ms,
                       int refresh_s, int rt_window_ms, int live)
{
    int out = 0;
    int64_t now_s = now_ms / 1000;
    pthread_mutex_lock(&r->lock);
    struct mcs_device *d = find(r, sn);
    if(!d) {
        out = MCS_SEEN_NEWEST; /* deleted meanwhile: harmless, the keys expire */
        goto done;
    }
    /* Receive time and receive order, never the device's clock: a device
     * whose clock is slow must not flap offline, one reading stamped ahead
     * must not freeze realtime:{sn} or keep a dead device online (R-PR-3). */
    if(!d->online || recv_s > d->last_seen)
        d->dirty = 1;
    if(recv_s > d->last_seen)
        d->last_seen = recv_s;
    if(live && now_ms - d->rt_key_ms >= rt_window_ms) {
        out |= MCS_SEEN_NEWEST;
        d->rt_key_ms = now_ms;
    }
    else if(live)
        out |= MCS_SEEN_DEFER;
    if(!d->online || now_s - d->online_key_s >= refresh_s) {
        out |= MCS_SEEN_ONLINE;
        d->online_key_s = now_s;
    }
    d->online = 1;
done:
    pthread_mutex_unlock(&r->lock);
    return out;
}

int registry_rt_take(struct mcs_registry *r, const char *sn, int64_t now_ms, int rt_window_ms)
{
    int ok = 1;
    pthread_mutex_lock(&r->lock);
    struct mcs_device *d = find(r, sn);
    if(d) {
        ok = now_ms - d->rt_key_ms >= rt_window_ms;
        if(ok)
            d->rt_key_ms = now_ms;
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}

void registry_mark_status(struct mcs_registry *r, const char *sn, int online)
{
    pthread_mutex_lock(&r->lock);
    struct mcs_device *d = find(r, sn);
    if(d && d->online != (online ? 1 : 0)) {
        d->online = online ? 1 : 0;
        d->dirty = 1;
    }
    pthread_mutex_unlock(&r->lock);
}

void registry_forget_keys(struct mcs_registry *r)
{
    pthread_mutex_lock(&r->lock);
    for(uint32_t s = 0; s < r->n; s++) {
        r->dev[s].online_key_s = 0;
        r->dev[s].rt_key_ms = 0;
    }
    pthread_mutex_unlock(&r->lock);
}

int registry_expire(struct mcs_registry *r, int64_t before)
{
    int n = 0;
    pthread_mutex_lock(&r->lock);
    for(uint32_t s = 0; s < r->n; s++) {
        struct mcs_device *d = &r->dev[s];
        if(d->online && d->last_seen < before) {
            d->online = 0;
            d->dirty = 1;
            n++;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return n;
}

uint32_t registry_take_dirty(struct mcs_registry *r, struct mcs_device_stat *out, uint32_t max)
{
    uint32_t n = 0;
    pthread_mutex_lock(&r->lock);
    for(uint32_t s = 0; s < r->n && n < max; s++) {
        struct mcs_device *d = &r->dev[s];
        if(!d->dirty || d->deleted)
            continue;
        struct mcs_device_stat *o = &out[n++];
        memcpy(o->sn, d->sn, sizeof(o->sn));
        o->online = d->online;
        o->err = d->err;
        o->bat = d->bat;
        o->rssi = d->rssi;
        memcpy(o->ver, d->ver, sizeof(o->ver));
        o->last_seen = d->last_seen;
        o->recv_delta = d->recv_delta;
        o->lost_delta = d->lost_delta;
        d->recv_delta = d->lost_delta = 0;
        d->dirty = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return n;
}

void registry_stats_restore(struct mcs_registry *r, const struct mcs_device_stat *s, uint32_t n)
{
    pthread_mutex_lock(&r->lock);
    for(uint32_t i = 0; i < n; i++) {
        struct mcs_device *d = find(r, s[i].sn);
        if(!d)
            continue;
        d->recv_delta += s[i].recv_delta;
        d->lost_delta += s[i].lost_delta;
        d->dirty = 1;
    }
    pthread_mutex_unlock(&r->lock);
}

uint32_t registry_count(struct mcs_registry *r)
{
    pthread_mutex_lock(&r->lock);
    uint32_t n = r->live;
    pthread_mutex_unlock(&r->lock);
    return n;
}

int registry_get_calib(struct mcs_registry *r, const char *sn, struct mcs_calib *c)
{
    int rc = MCS_ENOTFOUND;
    pthread_mutex_lock(&r->lock);
    struct mcs_device *d = find(r, sn);
    if(d && !d->deleted) {
        *c = d->calib;
        rc = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int registry_get_alarm_limits(struct mcs_registry *r, const char *sn, double *high, double *low)
{
    int rc = MCS_ENOTFOUND;
    *high = *low = NAN;
    pthread_mutex_lock(&r->lock);
    struct mcs_device *d = find(r, sn);
    if(d && !d->deleted) {
        *high = d->alarm_high;
        *low = d->alarm_low;
        rc = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}
