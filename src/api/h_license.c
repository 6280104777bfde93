/* h_license.c - the license in mcs-api (issue #17, R-LI-4/5): the cached
 * license state, the gate that refuses calls while locked, GET and POST
 * /api/system/license, the license part of health, the device limit.
 * Owns ctx->lic (the cached view). Thread: the lws loop thread. */
#include "audit.h"
#include "err.h"
#include "handlers.h"
#include "licguard.h"
#include "route.h"
#include "log.h"
#include "timeutil.h"

#include "pglocks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIC_CACHE_MS 1000 /* a new file takes effect within a second */

const struct lic_view *api_license(struct api_ctx *ctx)
{
    int64_t now = mcs_mono_ms();
    if(!ctx->lic_mono || now - ctx->lic_mono >= LIC_CACHE_MS) {
        int before = ctx->lic_mono ? (int)ctx->lic.state : -1;
        licguard_eval(&ctx->cfg, licguard_now(), &ctx->lic);
        ctx->lic_mono = now;
        if(before != (int)ctx->lic.state)
            LOG_I("license", "license state", LS("state", licguard_state_name(ctx->lic.state)),
                  LI("code", ctx->lic.code), LS("reason", ctx->lic.reason));
    }
    return &ctx->lic;
}

/* Calls a locked system still answers (docs/API.md "License"): logging in,
 * health, the license itself, and what the wall screen needs to show and
 * acknowledge gas alarms. A license dispute never silences an alarm. */
static int open_when_locked(const struct api_route *r)
{
    static const api_handler open[] = {h_ping,         h_metrics,     h_login,
                                       h_me,           h_sys_health,  h_sys_license,
                                       h_sys_license_put, h_alarm_list, h_alarm_get,
                                       h_alarm_stats,  h_alarm_ack,   h_cfg_dash_get,
                                       h_cfg_bg_get};
    for(size_t i = 0; i < sizeof(open) / sizeof(open[0]); i++)
        if(r->fn == open[i])
            return 1;
    return 0;
}

int api_license_gate(struct api_ctx *ctx, const struct api_route *r, struct api_resp *rs)
{
    const struct lic_view *v;
    if(open_when_locked(r))
        return 0;
    v = api_license(ctx);
    if(licguard_running(v))
        return 0;
    ctx->st.lic_refused++;
    api_error(rs, 403, v->code == LIC_CODE_EXPIRED ? E_LIC_EXPIRED
                       : v->code == LIC_CODE_HOST  ? E_LIC_HOST
                                                   : E_LIC_INVALID,
              "%s", v->reason);
    return -1;
}

void api_license_json(struct api_ctx *ctx, cJSON *o, long long devices_in_use)
{
    const struct lic_view *v = api_license(ctx);
    char masked[LIC_KEY_LEN + 1];

    cJSON_AddStringToObject(o, "status", licguard_state_name(v->state));
    cJSON_AddItemToObject(o, "code", v->code ? cJSON_CreateNumber(v->code) : cJSON_CreateNull());
    cJSON_AddStringToObject(o, "reason", v->reason);
    if(v->have_license) {
        license_key_mask(v->lic.key, masked);
        cJSON_AddStringToObject(o, "license_id", v->lic.id);
        cJSON_AddStringToObject(o, "license_key", masked);
        cJSON_AddStringToObject(o, "customer", v->lic.customer);
        cJSON_AddNumberToObject(o, "max_devices", v->lic.max_devices);
        cJSON_AddStringToObject(o, "issued", v->lic.issued);
        cJSON_AddStringToObject(o, "expires", v->lic.expires);
    } else {
        cJSON_AddNullToObject(o, "license_id");
        cJSON_AddNullToObject(o, "license_key");
        cJSON_AddNullToObject(o, "customer");
        cJSON_AddNullToObject(o, "max_devices");
        cJSON_AddNullToObject(o, "issued");
        cJSON_AddNullToObject(o, "expires");
    }
    cJSON_AddItemToObject(o, "devices_in_use", devices_in_use >= 0
                                                   ? cJSON_CreateNumber((double)devices_in_use)
                                                   : cJSON_CreateNull());
    cJSON_AddNumberToObject(o, "evaluated_at", (double)v->evaluated);
    cJSON_AddItemToObject(o, "last_check", v->rec.last_good
                                               ? cJSON_CreateNumber((double)v->rec.last_good)
                                               : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "grace_left_s", v->state == LIC_ST_GRACE
                                                 ? cJSON_CreateNumber((double)v->grace_left)
                                                 : cJSON_CreateNull());
    /* Health's warning (R-LI-4): less than a day of grace left. */
    cJSON_AddBoolToObject(o, "warning",
                          v->state == LIC_ST_GRACE && v->grace_left < LIC_WARN_S);
    cJSON_AddBoolToObject(o, "clock_turned_back", v->clock_back);
    cJSON_AddBoolToObject(o, "test_build", license_test_build());
}

static long long device_count(struct api_ctx *ctx)
{
    PGconn *pg = api_pg(ctx);
    PGresult *r;
    long long n = -1;
    if(!pg)
        return -1;
    r = PQexec(pg, "SELECT count(*) FROM devices");
    if(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else
        api_pg_check(ctx);
    PQclear(r);
    return n;
}

int h_sys_license(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    cJSON *o = cJSON_CreateObject();
    api_license_json(ctx, o, device_count(ctx));
    return api_json(rs, 200, o);
}

int h_sys_license_put(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    char why[256] = "";
    cJSON *after;
    int rc;

    rc = licguard_install(&ctx->cfg, (const char *)rq->body, rq->body_len, licguard_now(),
                          why, sizeof(why));
    if(rc == MCS_EIO) {
        LOG_E("license", "license file not written", LS("error", why));
        return api_error(rs, 500, E_INTERNAL, "%s", why);
    }
    if(rc != 0)
        return api_error(rs, 400, rc == MCS_EINVAL ? E_LIC_EXPIRED : E_LIC_INVALID, "%s", why);
    ctx->lic_mono = 0; /* evaluate again now */
    after = cJSON_CreateObject();
    api_license_json(ctx, after, device_count(ctx));
    /* The audit row is best effort here: the file is installed already. */
    audit_log(ctx, rq, "license.install", cJSON_GetStringValue(cJSON_GetObjectItem(after,
                                                                                   "license_id")),
              NULL, after);
    LOG_I("license", "license installed", LS("user", rq->user),
          LS("license_id", cJSON_GetStringValue(cJSON_GetObjectItem(after, "license_id"))));
    return api_json(rs, 200, after);
}

int api_license_device_room(struct api_ctx *ctx, struct api_resp *rs)
{
    const struct lic_view *v = api_license(ctx);
    PGresult *r;
    long long n;

    if(!v->have_license)
        return 0; /* locked or missing: the gate has answered already */
    /* One device add at a time, so two cannot both take the last place. */
    r = api_query(ctx, rs, "SELECT pg_advisory_xact_lock(" MCS_LOCK_LICENSE_DEVICES ")", 0, NULL);
    if(!r)
        return -1;
    PQclear(r);
    r = api_query(ctx, rs, "SELECT count(*) FROM devices", 0, NULL);
    if(!r)
        return -1;
    n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if(n >= v->lic.max_devices) {
        api_error(rs, 403, E_LIC_DEVICES,
                  "设备数量超出授权限制 / device limit of the license reached: %lld of %d", n,
                  v->lic.max_devices);
        return -1;
    }
    return 0;
}
