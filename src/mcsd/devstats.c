/* devstats.c - per-device statistics into the devices table (see
 * devstats.h). Owns its snapshot buffer. Thread: the store thread. */
#include "devstats.h"
#include "err.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLUSH_MAX 5000 /* devices per statistics statement */

int devstats_init(struct mcs_devstats *s)
{
    s->snap = calloc(FLUSH_MAX, sizeof(*s->snap));
    return s->snap ? 0 : MCS_ENOMEM;
}

void devstats_cleanup(struct mcs_devstats *s)
{
    free(s->snap);
    s->snap = NULL;
}

/* Appends a PostgreSQL array element (our values never need quoting: SNs and
 * versions are validated to [A-Za-z0-9._+-]). */
static void arr_add(char **buf, size_t *len, size_t *cap, const char *v, int first)
{
    size_t vl = strlen(v);
    if(*len + vl + 3 > *cap) {
        size_t nc = (*cap + vl + 3) * 2;
        char *nb = realloc(*buf, nc);
        if(!nb)
            return;
        *buf = nb;
        *cap = nc;
    }
    if(first)
        (*buf)[(*len)++] = '{';
    else
        (*buf)[(*len)++] = ',';
    memcpy(*buf + *len, v, vl);
    *len += vl;
    (*buf)[*len] = '\0';
}

int devstats_flush(struct mcs_devstats *ds, struct mcs_registry *reg, PGconn *pg)
{
    enum { NA = 9 };
    char *a[NA] = {0};
    size_t len[NA] = {0}, cap[NA] = {0};
    uint32_t n = registry_take_dirty(reg, ds->snap, FLUSH_MAX);
    char v[32];

    if(!n)
        return 0;
    for(uint32_t i = 0; i < n; i++) {
        const struct mcs_device_stat *st = &ds->snap[i];
        int f = i == 0;
        arr_add(&a[0], &len[0], &cap[0], st->sn, f);
        arr_add(&a[1], &len[1], &cap[1], st->online ? "online" : "offline", f);
        snprintf(v, sizeof(v), "%lld", (long long)st->last_seen);
        arr_add(&a[2], &len[2], &cap[2], v, f);
        snprintf(v, sizeof(v), "%u", st->recv_delta);
        arr_add(&a[3], &len[3], &cap[3], v, f);
        snprintf(v, sizeof(v), "%u", st->lost_delta);
        arr_add(&a[4], &len[4], &cap[4], v, f);
        if(st->bat == MCS_ABSENT_INT)
            snprintf(v, sizeof(v), "NULL");
        else
            snprintf(v, sizeof(v), "%d", st->bat);
        arr_add(&a[5], &len[5], &cap[5], v, f);
        if(st->rssi == MCS_ABSENT_INT)
            snprintf(v, sizeof(v), "NULL");
        else
            snprintf(v, sizeof(v), "%d", st->rssi);
        arr_add(&a[6], &len[6], &cap[6], v, f);
        arr_add(&a[7], &len[7], &cap[7], st->ver[0] ? st->ver : "NULL", f);
        snprintf(v, sizeof(v), "%d", st->err);
        arr_add(&a[8], &len[8], &cap[8], v, f);
    }
    int oom = 0;
    for(int k = 0; k < NA; k++) {
        if(!a[k] || len[k] + 2 > cap[k]) {
            oom = 1;
            continue;
        }
        a[k][len[k]++] = '}';
        a[k][len[k]] = '\0';
    }
    if(!oom) {
        const char *params[NA] = {a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]};
        PGresult *r = PQexecParams(
            pg,
            "UPDATE devices d SET status = v.status,"
            " last_seen = COALESCE(to_timestamp(NULLIF(v.last_seen, 0)), d.last_seen),"
            " pkt_recv = d.pkt_recv + v.recv, pkt_lost = d.pkt_lost + v.lost,"
            " bat = COALESCE(v.bat, d.bat), rssi = COALESCE(v.rssi, d.rssi),"
            " fw_ver = COALESCE(v.ver, d.fw_ver), last_err = v.err "
            "FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],"
            " $6::int[], $7::int[], $8::text[], $9::int[])"
            " AS v(sn, status, last_seen, recv, lost, bat, rssi, ver, err) WHERE d.sn = v.sn",
            NA, NULL, params, NULL, NULL, 0);
        if(PQresultStatus(r) != PGRES_COMMAND_OK) {
            LOG_W("store", "device statistics not written", LS("error", PQresultErrorMessage(r)));
            oom = 1;
        }
        PQclear(r);
    }
    if(oom)
        registry_stats_restore(reg, ds->snap, n);
    for(int k = 0; k < NA; k++)
        free(a[k]);
    return oom ? MCS_EDB : 0;
}

