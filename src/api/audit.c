/* audit.c - writes audit_logs rows (see audit.h).
 * Owns nothing. Thread: the lws loop thread. */
#include "audit.h"
#include "err.h"
#include "log.h"
#include "reqparse.h"

#include <stdlib.h>
#include <string.h>

int audit_is_secret(const char *name)
{
    static const char *const names[] = {"password",   "smtp_pass",  "secret",
                                        "access_key_secret", "secret_key", "access_key",
                                        "token",      "pass",       "password_hash",
                                        NULL};
    if(!name)
        return 0;
    for(const char *const *n = names; *n; n++)
        if(!strcmp(name, *n))
            return 1;
    return 0;
}

static void mask_in_place(cJSON *j)
{
    for(cJSON *c = j ? j->child : NULL; c; c = c->next) {
        if(cJSON_IsString(c) && audit_is_secret(c->string) && c->valuestring[0])
            cJSON_SetValuestring(c, API_SECRET_MASK);
        else if(cJSON_IsString(c) && c->string && !strcmp(c->string, "url")) {
            /* Robot URLs carry their access token. */
            char url[1100];
            rq_url_mask(c->valuestring, url, sizeof(url));
            cJSON_SetValuestring(c, url);
        }
        else if(cJSON_IsObject(c) || cJSON_IsArray(c))
            mask_in_place(c);
    }
}

cJSON *audit_masked(const cJSON *j)
{
    cJSON *d;
    if(!j)
        return NULL;
    d = cJSON_Duplicate(j, 1);
    mask_in_place(d);
    return d;
}

static char *masked_text(const cJSON *j)
{
    cJSON *m = audit_masked(j);
    char *s = m ? cJSON_PrintUnformatted(m) : NULL;
    cJSON_Delete(m);
    return s;
}

int audit_log(struct api_ctx *ctx, const struct api_req *rq, const char *action,
              const char *target, const cJSON *before, const cJSON *after)
{
    return audit_log_as(ctx, rq->user, rq->ip, action, target, before, after);
}

int audit_log_as(struct api_ctx *ctx, const char *user, const char *ip, const char *action,
                 const char *target, const cJSON *before, const cJSON *after)
{
    PGconn *pg = api_pg(ctx);
    char *b = masked_text(before), *a = masked_text(after);
    const char *v[6] = {user && user[0] ? user : "-", action, target ? target : "", b, a,
                        ip ? ip : ""};
    int rc = MCS_EDB;

    if(pg) {
        PGresult *r = PQexecParams(pg,
                                   "INSERT INTO audit_logs (username, action, target, before, "
                                   "after, ip) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6)",
                                   6, NULL, v, NULL, NULL, 0);
        if(PQresultStatus(r) == PGRES_COMMAND_OK)
            rc = 0;
        else
            LOG_E("audit", "audit row not written", LS("action", action),
                  LS("error", PQerrorMessage(pg)));
        PQclear(r);
    }
    if(rc)
        ctx->st.audit_failed++;
    else
        ctx->st.audit_rows++;
    free(b);
    free(a);
    return rc;
}

int audit_commit(struct api_ctx *ctx, const struct api_req *rq, struct api_resp *rs,
                 const char *action, const char *target, const cJSON *before,
                 const cJSON *after)
{
    if(audit_log(ctx, rq, action, target, before, after)) {
        api_rollback(ctx);
        api_error(rs, 503, E_UNAVAIL, "audit row not written");
        return MCS_EDB;
    }
    return api_commit(ctx, rs);
}
