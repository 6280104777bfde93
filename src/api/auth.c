/* auth.c - JWT issue/verify with libjwt, Argon2id with libsodium, and the
 * login throttle (R-API-1): in this process's memory and in the table
 * login_throttle shared by every instance behind nginx. libjwt 1.10 checks
 * no claims, so alg, exp and iat are checked here (PLATFORM.md).
 * Owns struct api_auth. Thread: the lws loop thread only. */
#include "auth.h"
#include "err.h"
#include "log.h"

#include <cJSON.h>
#include <errno.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THROTTLE_SLOTS 4096
#define THROTTLE_WINDOW_MS (15 * 60 * 1000)
#define THROTTLE_MAX_LOCK_S 900
#define THROTTLE_PRUNE_MS 60000 /* shared rows of a day ago go at most this often */
#define USER_CACHE_SLOTS 256
#define KEY_MAX 160 /* login_throttle.key (migration 060) */

struct throttle {
    char key[KEY_MAX];
    int fails;
    int64_t last_ms;
    int64_t locked_until_ms;
};

/* A user's row as the database had it at at_ms (exists = 0: no such
 * enabled user). */
struct ucache {
    char user[65];
    enum api_role role;
    int exists;
    long gen;
    int64_t at_ms;
};

struct api_auth {
    int max_user, max_ip, max_user_all, lock_s;
    int64_t pruned_ms;
    struct throttle t[THROTTLE_SLOTS];
    struct ucache u[USER_CACHE_SLOTS];
};

struct api_auth *auth_new(const struct mcs_config *cfg)
{
    struct api_auth *a = calloc(1, sizeof(*a));
    if(!a)
        return NULL;
    a->max_user = cfg->login_max_fail_user;
    a->max_ip = cfg->login_max_fail_ip;
    a->max_user_all = cfg->login_max_fail_user_all;
    a->lock_s = cfg->login_lock_s;
    return a;
}

void auth_free(struct api_auth *a)
{
    free(a);
}

enum api_role auth_role_parse(const char *s)
{
    if(s && !strcmp(s, "admin"))
        return ROLE_ADMIN;
    if(s && !strcmp(s, "viewer"))
        return ROLE_VIEWER;
    return ROLE_NONE;
}

const char *auth_role_name(enum api_role r)
{
    return r == ROLE_ADMIN ? "admin" : r == ROLE_VIEWER ? "viewer" : "none";
}

char *auth_issue(const struct mcs_config *cfg, const char *user, enum api_role role, long gen,
                 int64_t now_s)
{
    jwt_t *j = NULL;
    char *tok = NULL;

    if(jwt_new(&j))
        return NULL;
    if(jwt_add_grant(j, "sub", user) || jwt_add_grant(j, "role", auth_role_name(role)) ||
       jwt_add_grant_int(j, "gen", gen) ||
       jwt_add_grant_int(j, "iat", (long)now_s) ||
       jwt_add_grant_int(j, "exp", (long)(now_s + (int64_t)cfg->jwt_expire_hours * 3600)) ||
       jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)cfg->jwt_secret,
                   (int)strlen(cfg->jwt_secret)))
        goto out;
    tok = jwt_encode_str(j);
out:
    jwt_free(j);
    return tok;
}

/* The decoded JOSE header must say alg HS256: libjwt would otherwise accept
 * what the token claims. */
static int header_alg_ok(const char *token)
{
    const char *dot = strchr(token, '.');
    unsigned char buf[512];
    size_t n = 0;
    cJSON *h = NULL, *alg;
    int ok = 0;

    if(!dot || dot == token || (size_t)(dot - token) > 600)
        return 0;
    if(sodium_base642bin(buf, sizeof(buf) - 1, token, (size_t)(dot - token), NULL, &n, NULL,
                         sodium_base64_VARIANT_URLSAFE_NO_PADDING))
        return 0;
    buf[n] = '\0';
    h = cJSON_ParseWithLength((const char *)buf, n);
    alg = h ? cJSON_GetObjectItemCaseSensitive(h, "alg") : NULL;
    ok = cJSON_IsString(alg) && !strcmp(alg->valuestring, "HS256");
    cJSON_Delete(h);
    return ok;
}

int auth_verify(const struct mcs_config *cfg, const char *token, int64_t now_s,
                char user[65], enum api_role *role, long *gen, long *exp, char *err,
                size_t errn)
{
    jwt_t *j = NULL;
    const char *sub, *r;
    long e, iat, g;
    int rc = MCS_EINVAL;
    size_t dots = 0;

    for(const char *p = token; *p; p++)
        dots += *p == '.';
    if(dots != 2 || strlen(token) > 2000) {
        snprintf(err, errn, "malformed token");
        return rc;
    }
    if(!header_alg_ok(token)) {
        snprintf(err, errn, "token algorithm must be HS256");
        return rc;
    }
    if(jwt_decode(&j, token, (const unsigned char *)cfg->jwt_secret,
                  (int)strlen(cfg->jwt_secret)) ||
       !j) {
        snprintf(err, errn, "bad token signature");
        goto out;
    }
    if(jwt_get_alg(j) != JWT_ALG_HS256) {
        snprintf(err, errn, "token algorithm must be HS256");
        goto out;
    }
    errno = 0;
    e = jwt_get_grant_int(j, "exp");
    if(errno || e <= 0) {
        snprintf(err, errn, "token has no exp");
        goto out;
    }
    if(e <= now_s) {
        snprintf(err, errn, "token expired");
        goto out;
    }
    errno = 0;
    iat = jwt_get_grant_int(j, "iat");
    if(!errno && iat > now_s + 60) {
        snprintf(err, errn, "token issued in the future");
        goto out;
    }
    sub = jwt_get_grant(j, "sub");
    r = jwt_get_grant(j, "role");
    if(!sub || !*sub || strlen(sub) > 64 || auth_role_parse(r) == ROLE_NONE) {
        snprintf(err, errn, "token lacks sub or role");
        goto out;
    }
    /* A token of before the session generation (migration 060) cannot be
     * ended with its user: log in again. */
    errno = 0;
    g = jwt_get_grant_int(j, "gen");
    if(errno || g <= 0) {
        snprintf(err, errn, "token lacks gen: log in again");
        goto out;
    }
    snprintf(user, 65, "%s", sub);
    *gen = g;
    *role = auth_role_parse(r);
    *exp = e;
    rc = 0;
out:
    jwt_free(j);
    return rc;
}

int auth_check_password(const char *hash, const char *pw)
{
    if(!hash || strncmp(hash, "$argon2id$", 10) != 0)
        return 0;
    return crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0;
}

static struct throttle *slot(struct api_auth *a, const char *key, int create, int64_t now_ms)
{
    struct throttle *oldest = NULL;

    for(int i = 0; i < THROTTLE_SLOTS; i++) {
        struct throttle *t = &a->t[i];
        if(t->key[0] && !strcmp(t->key, key))
            return t;
        if(!oldest || !t->key[0] ||
           (oldest->key[0] && t->last_ms < oldest->last_ms && t->locked_until_ms < now_ms))
            oldest = t;
    }
    if(!create)
        return NULL;
    memset(oldest, 0, sizeof(*oldest));
    snprintf(oldest->key, sizeof(oldest->key), "%s", key);
    return oldest;
}

/* The three keys of an attempt (auth.h) and their limits. */
enum { K_IP, K_UA, K_USER, NKEYS };

static void keys_of(const struct api_auth *a, const char *ip, const char *user,
                    char k[NKEYS][KEY_MAX], int max[NKEYS])
{
    snprintf(k[K_IP], KEY_MAX, "ip:%s", ip);
    snprintf(k[K_UA], KEY_MAX, "ua:%s|%s", user, ip);
    snprintf(k[K_USER], KEY_MAX, "user:%s", user);
    max[K_IP] = a->max_ip;
    max[K_UA] = a->max_user;
    max[K_USER] = a->max_user_all;
}

/* The back-off after fails failures against a limit of max: 0 below it,
 * then lock_s doubling with each further failure, at most 15 min. */
static long lock_for(const struct api_auth *a, int fails, int max)
{
    long lock = a->lock_s;
    if(fails < max)
        return 0;
    for(int i = 0; i < fails - max && lock < THROTTLE_MAX_LOCK_S; i++)
        lock *= 2;
    return lock > THROTTLE_MAX_LOCK_S ? THROTTLE_MAX_LOCK_S : lock;
}

static int db_ok(PGresult *r, ExecStatusType want)
{
    if(PQresultStatus(r) == want)
        return 1;
    LOG_W("auth", "shared login throttle not reached: this instance's own counts apply",
          LS("error", PQresultErrorMessage(r)));
    return 0;
}

/* Seconds any shared key stays locked: 0 when none is. */
static long shared_wait(PGconn *pg, char k[NKEYS][KEY_MAX])
{
    const char *v[NKEYS] = {k[K_IP], k[K_UA], k[K_USER]};
    PGresult *r;
    long w = 0;

    r = PQexecParams(pg,
                     "SELECT ceil(extract(epoch FROM max(locked_until) - now()))::bigint "
                     "FROM login_throttle WHERE key IN ($1, $2, $3) AND locked_until > now()",
                     NKEYS, NULL, v, NULL, NULL, 0);
    if(db_ok(r, PGRES_TUPLES_OK) && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        w = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return w;
}

/* One more failure of a shared key, in one statement so that two instances
 * counting at once both count; then its lock if the limit is reached. */
static void shared_fail(struct api_auth *a, PGconn *pg, const char *key, int max)
{
    char win[16], lock[24];
    const char *v[2] = {key, win};
    PGresult *r;
    long l;

    snprintf(win, sizeof(win), "%d", THROTTLE_WINDOW_MS / 1000);
    r = PQexecParams(pg,
                     "INSERT INTO login_throttle AS t (key, fails, last_at) VALUES ($1, 1, now()) "
                     "ON CONFLICT (key) DO UPDATE SET fails = CASE WHEN t.last_at < now() - "
                     "make_interval(secs => $2::float8) AND (t.locked_until IS NULL OR "
                     "t.locked_until < now()) THEN 1 ELSE t.fails + 1 END, last_at = now() "
                     "RETURNING fails",
                     2, NULL, v, NULL, NULL, 0);
    if(!db_ok(r, PGRES_TUPLES_OK) || PQntuples(r) != 1) {
        PQclear(r);
        return;
    }
    l = lock_for(a, (int)strtol(PQgetvalue(r, 0, 0), NULL, 10), max);
    PQclear(r);
    if(!l)
        return;
    snprintf(lock, sizeof(lock), "%ld", l);
    v[1] = lock;
    r = PQexecParams(pg,
                     "UPDATE login_throttle SET locked_until = now() + "
                     "make_interval(secs => $2::float8) WHERE key = $1",
                     2, NULL, v, NULL, NULL, 0);
    db_ok(r, PGRES_COMMAND_OK);
    PQclear(r);
}

int auth_throttled(struct api_auth *a, PGconn *pg, const char *ip, const char *user,
                   int64_t now_ms, long *retry_s)
{
    char k[NKEYS][KEY_MAX];
    int max[NKEYS];
    long wait;

    keys_of(a, ip, user, k, max);
    wait = pg ? shared_wait(pg, k) : 0;
    for(int i = 0; i < NKEYS; i++) {
        struct throttle *t = slot(a, k[i], 0, now_ms);
        if(t && t->locked_until_ms > now_ms) {
            long w = (long)((t->locked_until_ms - now_ms + 999) / 1000);
            if(w > wait)
                wait = w;
        }
    }
    *retry_s = wait;
    return wait > 0;
}

static void fail_one(struct api_auth *a, struct throttle *t, int max, int64_t now_ms)
{
    long lock;
    if(!t)
        return;
    if(now_ms - t->last_ms > THROTTLE_WINDOW_MS && t->locked_until_ms < now_ms)
        t->fails = 0;
    t->fails++;
    t->last_ms = now_ms;
    lock = lock_for(a, t->fails, max);
    if(lock)
        t->locked_until_ms = now_ms + lock * 1000;
}

void auth_attempt_reserve(struct api_auth *a, PGconn *pg, const char *ip, const char *user,
                          int64_t now_ms)
{
    char k[NKEYS][KEY_MAX];
    int max[NKEYS];

    keys_of(a, ip, user, k, max);
    for(int i = 0; i < NKEYS; i++)
        fail_one(a, slot(a, k[i], 1, now_ms), max[i], now_ms);
    if(!pg)
        return;
    for(int i = 0; i < NKEYS; i++)
        shared_fail(a, pg, k[i], max[i]);
    if(now_ms - a->pruned_ms > THROTTLE_PRUNE_MS) {
        PGresult *r = PQexec(pg, "DELETE FROM login_throttle WHERE last_at < now() - "
                                 "interval '1 day' AND (locked_until IS NULL OR "
                                 "locked_until < now())");
        db_ok(r, PGRES_COMMAND_OK);
        PQclear(r);
        a->pruned_ms = now_ms;
    }
}

void auth_attempt_ok(struct api_auth *a, PGconn *pg, const char *ip, const char *user)
{
    char k[NKEYS][KEY_MAX];
    int max[NKEYS];
    struct throttle *t;

    keys_of(a, ip, user, k, max);
    for(int i = K_UA; i <= K_USER; i++)
        if((t = slot(a, k[i], 0, 0)))
            memset(t, 0, sizeof(*t));
    /* The address keeps its other failures: only this attempt's is taken
     * back (a lock it caused stays, as a failure's would). */
    if((t = slot(a, k[K_IP], 0, 0)) && t->fails > 0)
        t->fails--;
    if(pg) {
        const char *v[NKEYS] = {k[K_IP], k[K_UA], k[K_USER]};
        PGresult *r = PQexecParams(pg, "DELETE FROM login_throttle WHERE key IN ($1, $2)", 2,
                                   NULL, v + K_UA, NULL, NULL, 0);
        db_ok(r, PGRES_COMMAND_OK);
        PQclear(r);
        r = PQexecParams(pg, "UPDATE login_throttle SET fails = greatest(fails - 1, 0) "
                             "WHERE key = $1",
                         1, NULL, v + K_IP, NULL, NULL, 0);
        db_ok(r, PGRES_COMMAND_OK);
        PQclear(r);
    }
}

static struct ucache *ufind(struct api_auth *a, const char *user)
{
    for(int i = 0; i < USER_CACHE_SLOTS; i++)
        if(a->u[i].user[0] && !strcmp(a->u[i].user, user))
            return &a->u[i];
    return NULL;
}

int auth_user_valid(struct api_auth *a, PGconn *pg, const char *user, enum api_role role,
                    long gen, int64_t now_ms)
{
    struct ucache *c = ufind(a, user);

    if(!c || now_ms - c->at_ms > AUTH_USER_CACHE_MS) {
        const char *v[1] = {user};
        PGresult *r;

        if(!pg)
            return MCS_EDB;
        r = PQexecParams(pg, "SELECT role, token_gen FROM users WHERE username = $1 AND "
                             "NOT disabled",
                         1, NULL, v, NULL, NULL, 0);
        if(PQresultStatus(r) != PGRES_TUPLES_OK) {
            PQclear(r);
            return MCS_EDB;
        }
        if(!c) {
            c = &a->u[0];
            for(int i = 0; i < USER_CACHE_SLOTS; i++) {
                if(!a->u[i].user[0]) {
                    c = &a->u[i];
                    break;
                }
                if(a->u[i].at_ms < c->at_ms)
                    c = &a->u[i];
            }
        }
        memset(c, 0, sizeof(*c));
        snprintf(c->user, sizeof(c->user), "%s", user);
        c->exists = PQntuples(r) == 1;
        if(c->exists) {
            c->role = auth_role_parse(PQgetvalue(r, 0, 0));
            c->gen = strtol(PQgetvalue(r, 0, 1), NULL, 10);
        }
        c->at_ms = now_ms;
        PQclear(r);
    }
    return c->exists && c->role == role && c->gen == gen;
}

void auth_user_forget(struct api_auth *a, const char *user)
{
    struct ucache *c = ufind(a, user);
    if(c)
        memset(c, 0, sizeof(*c));
}
