/* route.c - the route table and the dispatcher (see route.h).
 * Owns the table. Thread: the lws loop thread. */
#include "route.h"
#include "auth.h"
#include "handlers.h"
#include "log.h"
#include "timeutil.h"

#include <string.h>

#define PUB ROLE_NONE
#define VIEW ROLE_VIEWER
#define ADM ROLE_ADMIN

/* Literal segments come before parameters that would match them
 * ("/api/devices/positions" before "/api/devices/{sn}"). */
const struct api_route api_routes[] = {
    {API_GET, "/api/ping", PUB, BODY_NONE, h_ping},
    {API_GET, "/metrics", PUB, BODY_NONE, h_metrics},
    {API_POST, "/api/auth/login", PUB, BODY_JSON, h_login},
    {API_GET, "/api/auth/me", VIEW, BODY_NONE, h_me},
    {API_PUT, "/api/auth/password", VIEW, BODY_JSON, h_password},
    {API_GET, "/api/users", ADM, BODY_NONE, h_users_list},
    {API_POST, "/api/users", ADM, BODY_JSON, h_users_add},
    {API_PUT, "/api/users/{username}", ADM, BODY_JSON, h_users_put},
    {API_DELETE, "/api/users/{username}", ADM, BODY_NONE, h_users_del},
    {API_GET, "/api/devices", VIEW, BODY_NONE, h_dev_list},
    {API_POST, "/api/devices", ADM, BODY_JSON, h_dev_add},
    {API_POST, "/api/devices/positions", ADM, BODY_JSON, h_dev_positions},
    {API_POST, "/api/devices/broadcast/command", ADM, BODY_JSON, h_dev_broadcast},
    {API_GET, "/api/devices/{sn}", VIEW, BODY_NONE, h_dev_get},
    {API_PUT, "/api/devices/{sn}", ADM, BODY_JSON, h_dev_put},
    {API_DELETE, "/api/devices/{sn}", ADM, BODY_NONE, h_dev_del},
    {API_GET, "/api/devices/{sn}/realtime", VIEW, BODY_NONE, h_dev_realtime},
    {API_GET, "/api/devices/{sn}/history", VIEW, BODY_NONE, h_dev_history},
    {API_POST, "/api/devices/{sn}/command", ADM, BODY_JSON, h_dev_command},
    {API_GET, "/api/devices/{sn}/commands", VIEW, BODY_NONE, h_dev_commands},
    {API_GET, "/api/alarms", VIEW, BODY_NONE, h_alarm_list},
    {API_GET, "/api/alarms/stats", VIEW, BODY_NONE, h_alarm_stats},
    /* Admin only (issue #16, defect 15): a viewer sees alarms on screen; an
     * export is a copy of the plant's alarm history that leaves the site. */
    {API_GET, "/api/alarms/export", ADM, BODY_NONE, h_alarm_export},
    {API_GET, "/api/alarms/{id}", VIEW, BODY_NONE, h_alarm_get},
    {API_POST, "/api/alarms/{id}/ack", ADM, BODY_JSON, h_alarm_ack},
    {API_GET, "/api/config/alarm", ADM, BODY_NONE, h_cfg_alarm_get},
    {API_PUT, "/api/config/alarm", ADM, BODY_JSON, h_cfg_alarm_put},
    {API_POST, "/api/config/alarm/test", ADM, BODY_JSON, h_cfg_alarm_test},
    {API_GET, "/api/config/alarm/channels", ADM, BODY_NONE, h_cfg_alarm_channels},
    {API_GET, "/api/config/storage", ADM, BODY_NONE, h_cfg_storage_get},
    {API_PUT, "/api/config/storage", ADM, BODY_JSON, h_cfg_storage_put},
    {API_GET, "/api/config/dashboard", VIEW, BODY_NONE, h_cfg_dash_get},
    {API_PUT, "/api/config/dashboard", ADM, BODY_JSON, h_cfg_dash_put},
    {API_GET, "/api/config/dashboard/bg", VIEW, BODY_NONE, h_cfg_bg_get},
    {API_POST, "/api/config/dashboard/bg", ADM, BODY_UPLOAD, h_cfg_bg_post},
    {API_GET, "/api/system/health", VIEW, BODY_NONE, h_sys_health},
    {API_GET, "/api/system/stats", VIEW, BODY_NONE, h_sys_stats},
    {API_GET, "/api/system/license", VIEW, BODY_NONE, h_sys_license},
    {API_POST, "/api/system/license", ADM, BODY_UPLOAD, h_sys_license_put},
    {API_GET, "/api/system/logs", ADM, BODY_NONE, h_sys_logs},
    {API_GET, "/api/system/archives", VIEW, BODY_NONE, h_sys_archives},
    {API_POST, "/api/system/archives/run", ADM, BODY_NONE, h_sys_archive_run},
    {API_GET, "/api/system/archives/{date}/download", ADM, BODY_NONE, h_sys_archive_dl},
    /* The same download by POST, as the web app (web/src/api/system) asks. */
    {API_POST, "/api/system/archives/{date}/download", ADM, BODY_NONE, h_sys_archive_dl},
    {0, NULL, 0, 0, NULL},
};

const char *api_method_name(enum api_method m)
{
    switch(m) {
    case API_GET:
        return "GET";
    case API_POST:
        return "POST";
    case API_PUT:
        return "PUT";
    case API_DELETE:
        return "DELETE";
    default:
        return "OTHER";
    }
}

/* Matches path against pattern segment by segment; parameters are copied
 * into rq->pbuf. Returns 1 on a match. */
static int match(const char *pattern, const char *path, struct api_req *rq)
{
    const char *p = pattern, *s = path;
    int np = 0;

    while(*p && *s) {
        if(*p == '{') {
            const char *pe = strchr(p, '}');
            size_t n = strcspn(s, "/");
            if(!pe || !n || n >= sizeof(rq->pbuf[0]) || np >= API_MAX_PARAMS)
                return 0;
            memcpy(rq->pbuf[np], s, n);
            rq->pbuf[np][n] = '\0';
            rq->params[np] = rq->pbuf[np];
            np++;
            p = pe + 1;
            s += n;
            continue;
        }
        if(*p != *s)
            return 0;
        p++;
        s++;
    }
    /* A trailing slash is the same resource. */
    if(!*p && s[0] == '/' && !s[1])
        s++;
    return !*p && !*s;
}

const struct api_route *api_route_find(enum api_method m, const char *path,
                                       struct api_req *rq, int *path_known)
{
    *path_known = 0;
    for(const struct api_route *r = api_routes; r->pattern; r++) {
        if(!match(r->pattern, path, rq))
            continue;
        if(r->method == m)
            return r;
        *path_known = 1;
    }
    return NULL;
}

/* A handler that left a transaction open would poison every later
 * request on this connection (and make the user check fail, which is
 * read as "database down"): close it (and say so). */
static void close_stray_tx(struct api_ctx *ctx)
{
    if(ctx->pg && PQstatus(ctx->pg) == CONNECTION_OK &&
       PQtransactionStatus(ctx->pg) != PQTRANS_IDLE) {
        LOG_E("api", "transaction left open by a handler: rolled back");
        PQclear(PQexec(ctx->pg, "ROLLBACK"));
    }
}

int api_authorise(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs,
                  const struct api_route *r)
{
    char err[128];
    const char *tok = rq->auth;
    int valid;

    if(r->role == ROLE_NONE || rq->authorised)
        return 0;
    close_stray_tx(ctx);
    if(strncmp(tok, "Bearer ", 7) != 0 && strncmp(tok, "bearer ", 7) != 0) {
        ctx->st.auth_rejected++;
        return api_error(rs, 401, E_TOKEN, "missing bearer token"), -1;
    }
    tok += 7;
    while(*tok == ' ')
        tok++;
    if(auth_verify(&ctx->cfg, tok, mcs_now_ms() / 1000, rq->user, &rq->role, &rq->gen, &rq->exp,
                   err, sizeof(err))) {
        ctx->st.auth_rejected++;
        return api_error(rs, 401, E_TOKEN, "%s", err), -1;
    }
    valid = auth_user_valid(ctx->auth, api_pg(ctx), rq->user, rq->role, rq->gen, mcs_mono_ms());
    if(valid < 0) {
        api_pg_check(ctx);
        valid = 1;
    }
    if(!valid) {
        ctx->st.auth_rejected++;
        return api_error(rs, 401, E_TOKEN, "session ended: user disabled, deleted or changed"),
               -1;
    }
    if(r->role == ROLE_ADMIN && rq->role != ROLE_ADMIN)
        return api_error(rs, 403, E_ROLE, "admin role required"), -1;
    rq->authorised = 1;
    return 0;
}

void api_dispatch(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    int known = 0;
    const struct api_route *r = api_route_find(rq->method, rq->path, rq, &known);

    if(!r) {
        if(known)
            api_error(rs, 405, E_METHOD, "%s not allowed here", api_method_name(rq->method));
        else
            api_error(rs, 404, E_NOTFOUND, "no such route");
        return;
    }
    close_stray_tx(ctx);
    if(api_authorise(ctx, rq, rs, r))
        return;
    if(rq->args_bad) {
        api_error(rs, 400, E_BAD_REQ, "too many or too long query arguments");
        return;
    }
    if(api_license_gate(ctx, r, rs)) /* issue #17: locked (R-LI-5) */
        return;
    r->fn(ctx, rq, rs);
    if(!rs->status && !rs->deferred)
        api_error(rs, 500, E_INTERNAL, "handler gave no answer");
}

void api_routes_print(FILE *f)
{
    for(const struct api_route *r = api_routes; r->pattern; r++)
        fprintf(f, "%s %s %s\n", api_method_name(r->method), r->pattern,
                r->role == ROLE_NONE ? "public" : auth_role_name(r->role));
}
