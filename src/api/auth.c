/* auth.c - JWT issue/verify with libjwt, Argon2id with libsodium, and the
 * login throttle (R-API-1). libjwt 1.10 checks no claims, so alg, exp and
 * iat are checked here (PLATFORM.md).
 * Owns struct api_auth. Thread: the lws loop thread only. */
#include "auth.h"
#include "err.h"

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
#define USER_CACHE_SLOTS 256
#define USER_CACHE_MS 10000

struct throttle {
    char key[80];
    int fails;
    int64_t last_ms;
    int64_t locked_until_ms;
};

struct ucache {
    char user[65];
    enum api_role role;
    int valid;
    int64_t at_ms;
};

struct api_auth {
    int max_user, max_ip, lock_s;
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

char *auth_issue(const struct mcs_config *cfg, const char *user, enum api_role role,
                 int64_t now_s)
{
    jwt_t *j = NULL;
    char *tok = NULL;

    if(jwt_new(&j))
        return NULL;
    if(jwt_add_grant(j, "sub", user) || jwt_add_grant(j, "role", auth_role_name(role)) ||
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
                char user[65], enum api_role *role, long *exp, char *err, size_t errn)
{
    jwt_t *j = NULL;
    const char *sub, *r;
    long e, iat;
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
    snprintf(user, 65, "%s", sub);
    *role = auth_role_parse(r);
    *exp = e;
    rc = 0;
out:
    jwt_free(j);
    return rc;
}

int auth_hash_password(const char *pw, char *out, size_t outn)
{
    if(outn < crypto_pwhash_STRBYTES)
        return MCS_EINVAL;
    if(crypto_pwhash_str_alg(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                             crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13))
        return MCS_ENOMEM;
    return 0;
}

int auth_check_password(const char *hash, const char *pw)
{
    if(!hash || strncmp(hash, "$argon2id$", 10) != 0)
        return 0;
    return crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0;
}

static struct throttle *slot(struct api_auth *a, const char *kind, const char *who,
                             int create, int64_t now_ms)
{
    char key[80];
    struct throttle *oldest = NULL;

    snprintf(key, sizeof(key), "%s:%s", kind, who);
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

int auth_throttled(struct api_auth *a, const char *ip, const char *user, int64_t now_ms,
                   long *retry_s)
{
    struct throttle *t[2] = {slot(a, "ip", ip, 0, now_ms), slot(a, "user", user, 0, now_ms)};
    long wait = 0;
    for(int i = 0; i < 2; i++)
        if(t[i] && t[i]->locked_until_ms > now_ms) {
            long w = (long)((t[i]->locked_until_ms - now_ms + 999) / 1000);
            if(w > wait)
                wait = w;
        }
    *retry_s = wait;
    return wait > 0;
}

static void fail_one(struct api_auth *a, struct throttle *t, int max, int64_t now_ms)
{
    if(!t)
        return;
    if(now_ms - t->last_ms > THROTTLE_WINDOW_MS && t->locked_until_ms < now_ms)
        t->fails = 0;
    t->fails++;
    t->last_ms = now_ms;
    if(t->fails >= max) {
        int over = t->fails - max;
        long lock = a->lock_s;
        for(int i = 0; i < over && lock < THROTTLE_MAX_LOCK_S; i++)
            lock *= 2; /* back-off doubles with each further failure */
        if(lock > THROTTLE_MAX_LOCK_S)
            lock = THROTTLE_MAX_LOCK_S;
        t->locked_until_ms = now_ms + lock * 1000;
    }
}

void auth_login_failed(struct api_auth *a, const char *ip, const char *user, int64_t now_ms)
{
    fail_one(a, slot(a, "ip", ip, 1, now_ms), a->max_ip, now_ms);
    fail_one(a, slot(a, "user", user, 1, now_ms), a->max_user, now_ms);
}

void auth_login_ok(struct api_auth *a, const char *user)
{
    struct throttle *t = slot(a, "user", user, 0, 0);
    if(t)
        memset(t, 0, sizeof(*t));
}

static struct ucache *ufind(struct api_auth *a, const char *user)
{
    for(int i = 0; i < USER_CACHE_SLOTS; i++)
        if(a->u[i].user[0] && !strcmp(a->u[i].user, user))
            return &a->u[i];
    return NULL;
}

int auth_user_cached(struct api_auth *a, const char *user, enum api_role role, int64_t now_ms)
{
    struct ucache *c = ufind(a, user);
    if(!c || now_ms - c->at_ms > USER_CACHE_MS)
        return -1;
    return c->valid && c->role == role;
}

void auth_user_store(struct api_auth *a, const char *user, enum api_role role, int valid,
                     int64_t now_ms)
{
    struct ucache *c = ufind(a, user);
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
    snprintf(c->user, sizeof(c->user), "%s", user);
    c->role = role;
    c->valid = valid;
    c->at_ms = now_ms;
}

void auth_user_forget(struct api_auth *a, const char *user)
{
    struct ucache *c = ufind(a, user);
    if(c)
        memset(c, 0, sizeof(*c));
}
