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

/* Issues an HS256 JWT {sub, role, gen, iat, exp} valid JWT_EXPIRE_HOURS;
 * gen is the user's users.token_gen (migration 060). Returns a malloc'd
 * token or NULL. */
char *auth_issue(const struct mcs_config *cfg, const char *user, enum api_role role, long gen,
                 int64_t now_s);

/* Checks a token: alg header exactly HS256 (alg=none refused), signature,
 * exp in the future, iat not in the future, sub, role and gen present.
 * Returns 0 with user/role/gen/exp filled, else MCS_EINVAL with the reason
 * in err. Whether the user still holds that role and gen is
 * auth_user_valid's question. */
int auth_verify(const struct mcs_config *cfg, const char *token, int64_t now_s,
                char user[65], enum api_role *role, long *gen, long *exp, char *err,
                size_t errn);

/* "admin" -> ROLE_ADMIN, "viewer" -> ROLE_VIEWER, else ROLE_NONE. */
enum api_role auth_role_parse(const char *s);
const char *auth_role_name(enum api_role r);

/* 1 when pw matches the stored Argon2id hash. */
int auth_check_password(const char *hash, const char *pw);

/* Password attempts (logins, own password changes) are throttled on three
 * keys, counted in this process and, when pg is not NULL, in the table
 * login_throttle that every instance shares (a database error there is
 * logged and leaves the local counts):
 *   ip:ADDR       LOGIN_MAX_FAIL_IP failures from one address;
 *   ua:USER|ADDR  LOGIN_MAX_FAIL_USER failures of one user from one address
 *                 (a stranger elsewhere cannot lock the user out);
 *   user:USER     LOGIN_MAX_FAIL_USER_ALL failures of one user from anywhere,
 *                 the slower brake on guesses spread over many addresses.
 * An attempt is counted as a failure BEFORE its password is checked
 * (auth_attempt_reserve), so that attempts in flight at once cannot pass
 * the limit; a good password settles it with auth_attempt_ok, a bad one
 * leaves it counted.
 * auth_throttled returns 1 (and the seconds to wait) while any key is
 * locked out in either place. */
int auth_throttled(struct api_auth *a, PGconn *pg, const char *ip, const char *user,
                   int64_t now_ms, long *retry_s);
void auth_attempt_reserve(struct api_auth *a, PGconn *pg, const char *ip, const char *user,
                          int64_t now_ms);
/* Forgets the user's failures (both user keys) and takes back the one
 * failure the address's count reserved for this attempt. */
void auth_attempt_ok(struct api_auth *a, PGconn *pg, const char *ip, const char *user);

/* Whether a token's user still exists, is enabled, and holds role and gen
 * (so that a deleted, disabled or re-roled user, or one whose password
 * changed, is refused). The user's row is cached by name for
 * AUTH_USER_CACHE_MS; every token is compared with that row, so an old
 * token never makes a current one fail. Returns 1 valid, 0 invalid, or
 * MCS_EDB when the database could not answer (the caller decides). */
#define AUTH_USER_CACHE_MS 2000
int auth_user_valid(struct api_auth *a, PGconn *pg, const char *user, enum api_role role,
                    long gen, int64_t now_ms);
/* Forgets a user's cached row (after a change through the API). */
void auth_user_forget(struct api_auth *a, const char *user);

#endif
