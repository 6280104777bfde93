/* auth.h - tokens, passwords and login throttling of mcs-api (R-API-1).
 * Owns the throttle table and the user-validity cache. Thread: the lws
 * loop thread only. */
#ifndef MCS_API_AUTH_H
#define MCS_API_AUTH_H

#include "api.h"

#include <stdint.h>

struct api_auth;

/* Allocates the throttle/cache state. NULL when out of memory. */
struct api_auth *auth_new(const struct mcs_config *cfg);
void auth_free(struct api_auth *a);

/* Issues an HS256 JWT {sub, role, iat, exp} valid JWT_EXPIRE_HOURS. Returns
 * a malloc'd token or NULL. */
char *auth_issue(const struct mcs_config *cfg, const char *user, enum api_role role,
                 int64_t now_s);

/* Checks a token: alg header exactly HS256 (alg=none refused), signature,
 * exp in the future, iat not in the future, sub and role present. Returns 0
 * with user/role/exp filled, else MCS_EINVAL with the reason in err. */
int auth_verify(const struct mcs_config *cfg, const char *token, int64_t now_s,
                char user[65], enum api_role *role, long *exp, char *err, size_t errn);

/* "admin" -> ROLE_ADMIN, "viewer" -> ROLE_VIEWER, else ROLE_NONE. */
enum api_role auth_role_parse(const char *s);
const char *auth_role_name(enum api_role r);

/* 1 when pw matches the stored Argon2id hash. */
int auth_check_password(const char *hash, const char *pw);

/* Login throttling per address and per user, counted in this process and,
 * when pg is not NULL, in the table login_throttle that every instance
 * shares (a database error there is logged and leaves the local counts).
 * auth_throttled returns 1 (and the seconds to wait) while either is locked
 * out in either place; auth_login_ok forgets the user's failures. */
int auth_throttled(struct api_auth *a, PGconn *pg, const char *ip, const char *user,
                   int64_t now_ms, long *retry_s);
void auth_login_failed(struct api_auth *a, PGconn *pg, const char *ip, const char *user,
                       int64_t now_ms);
void auth_login_ok(struct api_auth *a, PGconn *pg, const char *user);

/* The user-validity cache (a token of a deleted, disabled or re-roled user
 * stops working within 10 s). Returns 1 valid, 0 invalid, -1 unknown. */
int auth_user_cached(struct api_auth *a, const char *user, enum api_role role, int64_t now_ms);
void auth_user_store(struct api_auth *a, const char *user, enum api_role role, int valid,
                     int64_t now_ms);
/* Forgets a user (after a change through the API). */
void auth_user_forget(struct api_auth *a, const char *user);

#endif
