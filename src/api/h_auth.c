/* h_auth.c - login, the caller's own account, and user management
 * (R-API-1, R-API-7). Passwords are Argon2id; failed logins are throttled
 * per address and per user name.
 * Owns nothing. Thread: the lws loop thread. */
#include "account.h"
#include "audit.h"
#include "auth.h"
#include "err.h"
#include "handlers.h"
#include "jobs.h"
#include "log.h"
#include "reqparse.h"
#include "timeutil.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int h_args_ok(struct api_req *rq, struct api_resp *rs)
{
    if(rq->args_bad)
        return api_error(rs, 400, E_BAD_REQ, "too many or too long query arguments"), 0;
    return 1;
}

int h_ping(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    static const char pong[] = "{\"pong\":true}";
    char *b = strdup(pong);
    if(!b)
        return api_error(rs, 500, E_INTERNAL, "out of memory");
    return api_raw(rs, 200, "application/json", b, strlen(b));
}

/* A login's password check runs on the job worker (Argon2id, ~80 ms):
 * the loop serves other clients meanwhile. */
struct login_job {
    char user[65];
    char ip[64];
    char *hash;
    char pw[MCS_ACCOUNT_PW_MAX + 1];
    enum api_role role;
    int found, good;
};

static void login_work(struct api_job *j)
{
    struct login_job *l = j->data;
    if(l->found) {
        l->good = auth_check_password(l->hash, l->pw);
    } else {
        /* The same work for an unknown user, so timing tells nothing. The
         * worker is one thread: the static is its own. */
        static char dummy[crypto_pwhash_STRBYTES];
        if(!dummy[0])
            mcs_account_password_hash("not-a-password", dummy, sizeof(dummy));
        auth_check_password(dummy, l->pw);
        l->good = 0;
    }
    sodium_memzero(l->pw, sizeof(l->pw));
}

static void login_free(void *d)
{
    struct login_job *l = d;
    if(!l)
        return;
    free(l->hash);
    sodium_memzero(l, sizeof(*l));
    free(l);
}

static void login_done(struct api_ctx *ctx, struct api_job *j, struct api_resp *rs)
{
    struct login_job *l = j->data;
    char *tok;
    cJSON *out;

    if(!l->good || l->role == ROLE_NONE) {
        ctx->st.logins_failed++;
        auth_login_failed(ctx->auth, api_pg(ctx), l->ip, l->user, mcs_mono_ms());
        LOG_I("auth", "login failed", LS("user", l->user), LS("ip", l->ip));
        api_error(rs, 401, E_BAD_LOGIN, "%s", "");
        return;
    }
    auth_login_ok(ctx->auth, api_pg(ctx), l->user);
    tok = auth_issue(&ctx->cfg, l->user, l->role, mcs_now_ms() / 1000);
    if(!tok) {
        api_error(rs, 500, E_INTERNAL, "cannot issue a token");
        return;
    }
    ctx->st.logins_ok++;
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "access_token", tok);
    cJSON_AddStringToObject(out, "token_type", "bearer");
    cJSON_AddNumberToObject(out, "expires_in", (double)ctx->cfg.jwt_expire_hours * 3600);
    api_json(rs, 200, out);
    free(tok);
    LOG_I("auth", "login", LS("user", l->user), LS("ip", l->ip));
}

int h_login(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    static const char *const ok[] = {"username", "password", NULL};
    char err[128];
    cJSON *j = rq_json_object(rq->body, rq->body_len, err, sizeof(err));
    const cJSON *u, *p;
    const char *v[1];
    PGresult *r = NULL;
    long retry;
    struct login_job *l = NULL;

    if(!j)
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    if(rq_known_fields(j, ok, err, sizeof(err))) {
        api_error(rs, 400, E_BAD_REQ, "%s", err);
        goto out;
    }
    u = cJSON_GetObjectItemCaseSensitive(j, "username");
    p = cJSON_GetObjectItemCaseSensitive(j, "password");
    if(!cJSON_IsString(u) || !cJSON_IsString(p) ||
       strlen(u->valuestring) > MCS_ACCOUNT_NAME_MAX ||
       strlen(p->valuestring) > MCS_ACCOUNT_PW_MAX || !u->valuestring[0]) {
        api_error(rs, 400, E_BAD_REQ, "username and password must be strings");
        goto out;
    }
    if(auth_throttled(ctx->auth, api_pg(ctx), rq->ip, u->valuestring, mcs_mono_ms(), &retry)) {
        ctx->st.logins_throttled++;
        api_header(rs, "retry-after:", "%ld", retry);
        api_error(rs, 429, E_TOOMANY, "too many failed logins; retry after %ld s", retry);
        goto out;
    }
    v[0] = u->valuestring;
    r = api_query(ctx, rs, "SELECT password_hash, role FROM users WHERE username = $1 AND "
                           "NOT disabled",
                  1, v);
    if(!r)
        goto out;
    l = calloc(1, sizeof(*l));
    if(!l) {
        api_error(rs, 500, E_INTERNAL, "out of memory");
        goto out;
    }
    snprintf(l->user, sizeof(l->user), "%s", u->valuestring);
    snprintf(l->ip, sizeof(l->ip), "%s", rq->ip);
    snprintf(l->pw, sizeof(l->pw), "%s", p->valuestring);
    if(PQntuples(r) == 1) {
        l->found = 1;
        l->hash = strdup(PQgetvalue(r, 0, 0));
        l->role = auth_role_parse(PQgetvalue(r, 0, 1));
        if(!l->hash) {
            api_error(rs, 500, E_INTERNAL, "out of memory");
            goto out;
        }
    }
    api_defer_work(rs, login_work, login_done, login_free, l);
    l = NULL;
out:
    login_free(l);
    PQclear(r);
    if(cJSON_IsString(p = j ? cJSON_GetObjectItemCaseSensitive(j, "password") : NULL))
        sodium_memzero(p->valuestring, strlen(p->valuestring));
    cJSON_Delete(j);
    return 0;
}

int h_me(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "username", rq->user);
    cJSON_AddStringToObject(o, "role", auth_role_name(rq->role));
    cJSON_AddNumberToObject(o, "exp", (double)rq->exp);
    return api_json(rs, 200, o);
}

static const char USER_COLS[] =
    "username, role, disabled, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at";

int h_password(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    static const char *const ok[] = {"old_password", "new_password", NULL};
    char err[128], hash[crypto_pwhash_STRBYTES];
    cJSON *j = rq_json_object(rq->body, rq->body_len, err, sizeof(err));
    const cJSON *op, *np;
    const char *v[2];
    PGresult *r = NULL;

    if(!j)
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    op = cJSON_GetObjectItemCaseSensitive(j, "old_password");
    np = cJSON_GetObjectItemCaseSensitive(j, "new_password");
    if(rq_known_fields(j, ok, err, sizeof(err)) || !cJSON_IsString(op) || !cJSON_IsString(np) ||
       mcs_account_password_check_for(rq->user, np->valuestring, err, sizeof(err))) {
        api_error(rs, 400, E_BAD_REQ, "%s", cJSON_IsString(np) ? err : "old_password and new_password required");
        goto out;
    }
    v[0] = rq->user;
    r = api_query(ctx, rs, "SELECT password_hash FROM users WHERE username = $1", 1, v);
    if(!r)
        goto out;
    if(PQntuples(r) != 1 || !auth_check_password(PQgetvalue(r, 0, 0), op->valuestring)) {
        api_error(rs, 401, E_BAD_LOGIN, "old password does not match");
        goto out;
    }
    PQclear(r);
    if(mcs_account_password_hash(np->valuestring, hash, sizeof(hash))) {
        r = NULL;
        api_error(rs, 500, E_INTERNAL, "cannot hash");
        goto out;
    }
    v[1] = hash;
    r = api_query(ctx, rs, "UPDATE users SET password_hash = $2 WHERE username = $1", 2, v);
    if(!r)
        goto out;
    audit_log(ctx, rq, "user.password", rq->user, NULL, NULL);
    api_saved(rs, "密码已修改");
out:
    PQclear(r);
    cJSON_Delete(j);
    return 0;
}

int h_users_list(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    char sql[256];
    PGresult *r;
    cJSON *o, *a;

    snprintf(sql, sizeof(sql), "SELECT %s FROM users ORDER BY username", USER_COLS);
    r = api_query(ctx, rs, sql, 0, NULL);
    if(!r)
        return 0;
    o = cJSON_CreateObject();
    a = cJSON_AddArrayToObject(o, "data");
    for(int i = 0; i < PQntuples(r); i++)
        cJSON_AddItemToArray(a, api_pg_row(r, i));
    PQclear(r);
    return api_json(rs, 200, o);
}

int h_users_add(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    static const char *const ok[] = {"username", "password", "role", NULL};
    char err[128], hash[crypto_pwhash_STRBYTES], sql[512];
    cJSON *j = rq_json_object(rq->body, rq->body_len, err, sizeof(err)), *row = NULL;
    const cJSON *u, *p, *ro;
    const char *v[3];
    PGresult *r = NULL;
    PGconn *pg;
    int twin;

    if(!j)
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    u = cJSON_GetObjectItemCaseSensitive(j, "username");
    p = cJSON_GetObjectItemCaseSensitive(j, "password");
    ro = cJSON_GetObjectItemCaseSensitive(j, "role");
    if(rq_known_fields(j, ok, err, sizeof(err))) {
        api_error(rs, 400, E_BAD_REQ, "%s", err);
        goto out;
    }
    if(!cJSON_IsString(u) || !mcs_account_name_valid(u->valuestring)) {
        api_error(rs, 400, E_BAD_REQ, "username must match ^[A-Za-z0-9_.-]{1,64}$");
        goto out;
    }
    if(!cJSON_IsString(p) ||
       mcs_account_password_check_for(u->valuestring, p->valuestring, err, sizeof(err))) {
        api_error(rs, 400, E_BAD_REQ, "%s", cJSON_IsString(p) ? err : "password must be a string");
        goto out;
    }
    if(!cJSON_IsString(ro) || auth_role_parse(ro->valuestring) == ROLE_NONE) {
        api_error(rs, 400, E_BAD_REQ, "role must be admin or viewer");
        goto out;
    }
    if(mcs_account_password_hash(p->valuestring, hash, sizeof(hash))) {
        api_error(rs, 500, E_INTERNAL, "cannot hash");
        goto out;
    }
    v[0] = u->valuestring;
    v[1] = hash;
    v[2] = ro->valuestring;
    snprintf(sql, sizeof(sql),
             "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) "
             "ON CONFLICT DO NOTHING RETURNING %s",
             USER_COLS);
    /* Names are unique ignoring case (migration 065's users_username_lower);
     * this also covers the case twins an upgraded database kept. */
    r = api_query(ctx, rs, "SELECT 1 FROM users WHERE lower(username) = lower($1)", 1, v);
    twin = r && PQntuples(r);
    if(r && !twin) {
        PQclear(r);
        r = api_query(ctx, rs, sql, 3, v);
    }
    if(!r)
        goto out;
    if(twin || PQntuples(r) != 1) {
        /* Also a name that differs only in case (users_username_lower). */
        api_error(rs, 409, E_BAD_REQ, "user %s exists (user names are unique ignoring case)",
                  u->valuestring);
        goto out;
    }
    row = api_pg_row(r, 0);
    audit_log(ctx, rq, "user.add", u->valuestring, NULL, row);
    api_json(rs, 201, row);
    row = NULL;
out:
    (void)pg;
    PQclear(r);
    cJSON_Delete(j);
    return 0;
}

int h_users_put(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    static const char *const ok[] = {"password", "role", "disabled", NULL};
    char err[128], hash[crypto_pwhash_STRBYTES] = "", sql[768];
    cJSON *j = rq_json_object(rq->body, rq->body_len, err, sizeof(err)), *before = NULL,
          *after = NULL;
    const cJSON *p, *ro, *d;
    const char *user = rq->params[0];
    const char *v[4];
    PGresult *r = NULL;

    if(!j)
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    p = cJSON_GetObjectItemCaseSensitive(j, "password");
    ro = cJSON_GetObjectItemCaseSensitive(j, "role");
    d = cJSON_GetObjectItemCaseSensitive(j, "disabled");
    if(rq_known_fields(j, ok, err, sizeof(err)) || (p && !cJSON_IsString(p)) ||
       (ro && (!cJSON_IsString(ro) || auth_role_parse(ro->valuestring) == ROLE_NONE)) ||
       (d && !cJSON_IsBool(d)) || (!p && !ro && !d)) {
        api_error(rs, 400, E_BAD_REQ, "give password, role (admin|viewer) and/or disabled");
        goto out;
    }
    if(p && mcs_account_password_check_for(user, p->valuestring, err, sizeof(err))) {
        api_error(rs, 400, E_BAD_REQ, "%s", err);
        goto out;
    }
    if(!strcmp(user, rq->user) && ((ro && strcmp(ro->valuestring, "admin")) ||
                                   cJSON_IsTrue(d))) {
        api_error(rs, 400, E_BAD_REQ, "an admin cannot demote or disable themself");
        goto out;
    }
    if(p && mcs_account_password_hash(p->valuestring, hash, sizeof(hash))) {
        api_error(rs, 500, E_INTERNAL, "cannot hash");
        goto out;
    }
    v[0] = user;
    v[1] = p ? hash : NULL;
    v[2] = ro ? ro->valuestring : NULL;
    v[3] = d ? (cJSON_IsTrue(d) ? "true" : "false") : NULL;
    snprintf(sql, sizeof(sql),
             "WITH old AS (SELECT %s FROM users WHERE username = $1) "
             "UPDATE users SET password_hash = COALESCE($2, password_hash), "
             "role = COALESCE($3, role), disabled = COALESCE($4::boolean, disabled) "
             "WHERE username = $1 RETURNING %s, (SELECT row_to_json(old) FROM old) AS before",
             USER_COLS, USER_COLS);
    r = api_query(ctx, rs, sql, 4, v);
    if(!r)
        goto out;
    if(PQntuples(r) != 1) {
        api_error(rs, 404, E_NOTFOUND, "no user %s", user);
        goto out;
    }
    after = api_pg_row(r, 0);
    before = cJSON_DetachItemFromObject(after, "before");
    if(p)
        cJSON_AddStringToObject(after, "password", "changed");
    audit_log(ctx, rq, "user.update", user, before, after);
    cJSON_DeleteItemFromObject(after, "password");
    auth_user_forget(ctx->auth, user);
    api_json(rs, 200, after);
out:
    cJSON_Delete(before);
    PQclear(r);
    cJSON_Delete(j);
    return 0;
}

int h_users_del(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    const char *v[1] = {rq->params[0]};
    char sql[256];
    PGresult *r;
    cJSON *before;

    if(!strcmp(rq->params[0], rq->user))
        return api_error(rs, 400, E_BAD_REQ, "an admin cannot delete themself");
    snprintf(sql, sizeof(sql), "DELETE FROM users WHERE username = $1 RETURNING %s", USER_COLS);
    r = api_query(ctx, rs, sql, 1, v);
    if(!r)
        return 0;
    if(PQntuples(r) != 1) {
        PQclear(r);
        return api_error(rs, 404, E_NOTFOUND, "no user %s", rq->params[0]);
    }
    before = api_pg_row(r, 0);
    PQclear(r);
    audit_log(ctx, rq, "user.delete", rq->params[0], before, NULL);
    cJSON_Delete(before);
    auth_user_forget(ctx->auth, rq->params[0]);
    return api_saved(rs, "用户已删除");
}
