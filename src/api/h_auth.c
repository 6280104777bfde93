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

/* A password check (a login, or the old password of a change) runs on the
 * job worker (Argon2id, ~80 ms), and so does the new password's hash: the
 * loop serves other clients meanwhile. The attempt was counted against the
 * throttle before the job was queued (auth_attempt_reserve). */
struct login_job {
    char user[65];
    char ip[64];
    char *hash;
    char pw[MCS_ACCOUNT_PW_MAX + 1];
    char new_pw[MCS_ACCOUNT_PW_MAX + 1]; /* a change: the new password, "" for a login */
    char new_hash[crypto_pwhash_STRBYTES];
    enum api_role role;
    long gen;
    int found, good, hash_failed;
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
    if(l->good && l->new_pw[0])
        l->hash_failed = mcs_account_password_hash(l->new_pw, l->new_hash, sizeof(l->new_hash)) != 0;
    sodium_memzero(l->pw, sizeof(l->pw));
    sodium_memzero(l->new_pw, sizeof(l->new_pw));
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
        /* The failure was counted when the attempt was reserved. */
        ctx->st.logins_failed++;
        LOG_I("auth", "login failed", LS("user", l->user), LS("ip", l->ip));
        api_error(rs, 401, E_BAD_LOGIN, "%s", "");
        return;
    }
    auth_attempt_ok(ctx->auth, api_pg(ctx), l->ip, l->user);
    tok = auth_issue(&ctx->cfg, l->user, l->role, l->gen, mcs_now_ms() / 1000);
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

/* Refuses (429 with Retry-After) a password attempt of user from the
 * request's address while the throttle is locked; else counts it as a
 * failure until its check settles it (auth.h). Returns 1 when the attempt
 * may go on. */
static int attempt_allowed(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs,
                           const char *user)
{
    long retry;
    if(auth_throttled(ctx->auth, api_pg(ctx), rq->ip, user, mcs_mono_ms(), &retry)) {
        ctx->st.logins_throttled++;
        api_header(rs, "retry-after:", "%ld", retry);
        api_error(rs, 429, E_TOOMANY, "too many failed attempts; retry after %ld s", retry);
        return 0;
    }
    auth_attempt_reserve(ctx->auth, api_pg(ctx), rq->ip, user, mcs_mono_ms());
    return 1;
}

int h_login(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    static const char *const ok[] = {"username", "password", NULL};
    char err[128];
    cJSON *j = rq_json_object(rq->body, rq->body_len, err, sizeof(err));
    const cJSON *u, *p;
    const char *v[1];
    PGresult *r = NULL;
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
    v[0] = u->valuestring;
    r = api_query(ctx, rs, "SELECT password_hash, role, token_gen FROM users WHERE "
                           "username = $1 AND NOT disabled",
                  1, v);
    if(!r || !attempt_allowed(ctx, rq, rs, u->valuestring))
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
        l->gen = strtol(PQgetvalue(r, 0, 2), NULL, 10);
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

/* The new password's hash is stored (its trigger draws a new token_gen,
 * migration 060, which ends every session of the user) and a token of the
 * new gen is returned so that this client stays logged in. */
static void password_done(struct api_ctx *ctx, struct api_job *j, struct api_resp *rs)
{
    struct login_job *l = j->data;
    const char *v[2] = {l->user, l->new_hash};
    PGresult *r;
    char *tok;
    cJSON *out;

    if(!l->good) {
        LOG_I("auth", "password change refused: old password does not match",
              LS("user", l->user), LS("ip", l->ip));
        api_error(rs, 401, E_BAD_LOGIN, "old password does not match");
        return;
    }
    auth_attempt_ok(ctx->auth, api_pg(ctx), l->ip, l->user);
    if(l->hash_failed) {
        api_error(rs, 500, E_INTERNAL, "cannot hash");
        return;
    }
    r = api_query(ctx, rs, "UPDATE users SET password_hash = $2 WHERE username = $1 "
                           "RETURNING token_gen",
                  2, v);
    if(!r)
        return;
    if(PQntuples(r) != 1) {
        PQclear(r);
        api_error(rs, 401, E_TOKEN, "session ended: user deleted");
        return;
    }
    l->gen = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    auth_user_forget(ctx->auth, l->user);
    audit_log_as(ctx, l->user, l->ip, "user.password", l->user, NULL, NULL);
    tok = auth_issue(&ctx->cfg, l->user, l->role, l->gen, mcs_now_ms() / 1000);
    if(!tok) {
        api_error(rs, 500, E_INTERNAL, "cannot issue a token");
        return;
    }
    api_saved(rs, "密码已修改");
    out = rs->body ? cJSON_Parse(rs->body) : NULL;
    if(out) {
        cJSON_AddStringToObject(out, "access_token", tok);
        cJSON_AddStringToObject(out, "token_type", "bearer");
        cJSON_AddNumberToObject(out, "expires_in", (double)ctx->cfg.jwt_expire_hours * 3600);
        api_json(rs, 200, out);
    }
    free(tok);
}

int h_password(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    static const char *const ok[] = {"old_password", "new_password", NULL};
    char err[128];
    cJSON *j = rq_json_object(rq->body, rq->body_len, err, sizeof(err));
    const cJSON *op, *np;
    const char *v[1];
    PGresult *r = NULL;
    struct login_job *l = NULL;

    if(!j)
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    op = cJSON_GetObjectItemCaseSensitive(j, "old_password");
    np = cJSON_GetObjectItemCaseSensitive(j, "new_password");
    if(rq_known_fields(j, ok, err, sizeof(err))) {
        api_error(rs, 400, E_BAD_REQ, "%s", err);
        goto out;
    }
    if(!cJSON_IsString(op) || !cJSON_IsString(np) ||
       strlen(op->valuestring) > MCS_ACCOUNT_PW_MAX) {
        api_error(rs, 400, E_BAD_REQ, "old_password and new_password required");
        goto out;
    }
    if(mcs_account_password_check_for(rq->user, np->valuestring, err, sizeof(err))) {
        api_error(rs, 400, E_BAD_REQ, "%s", err);
        goto out;
    }
    v[0] = rq->user;
    r = api_query(ctx, rs, "SELECT password_hash FROM users WHERE username = $1", 1, v);
    if(!r || !attempt_allowed(ctx, rq, rs, rq->user))
        goto out;
    l = calloc(1, sizeof(*l));
    if(!l) {
        api_error(rs, 500, E_INTERNAL, "out of memory");
        goto out;
    }
    snprintf(l->user, sizeof(l->user), "%s", rq->user);
    snprintf(l->ip, sizeof(l->ip), "%s", rq->ip);
    snprintf(l->pw, sizeof(l->pw), "%s", op->valuestring);
    snprintf(l->new_pw, sizeof(l->new_pw), "%s", np->valuestring);
    l->role = rq->role;
    if(PQntuples(r) == 1) {
        l->found = 1;
        l->hash = strdup(PQgetvalue(r, 0, 0));
        if(!l->hash) {
            api_error(rs, 500, E_INTERNAL, "out of memory");
            goto out;
        }
    }
    api_defer_work(rs, login_work, password_done, login_free, l);
    l = NULL;
out:
    login_free(l);
    PQclear(r);
    for(int i = 0; i < 2; i++) {
        const cJSON *p = j ? cJSON_GetObjectItemCaseSensitive(j, i ? "new_password" : "old_password")
                           : NULL;
        if(cJSON_IsString(p))
            sodium_memzero(p->valuestring, strlen(p->valuestring));
    }
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
