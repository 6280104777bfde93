/* audit.h - audit_logs rows for every admin change (R-API-7): user, action,
 * target, before -> after with secrets masked (R-API-6), client address.
 * Owns nothing. Thread: the lws loop thread (uses ctx->pg). */
#ifndef MCS_AUDIT_H
#define MCS_AUDIT_H

#include "api.h"

#define API_SECRET_MASK "******"

/* A copy of j with every secret-named member ("password", "smtp_pass",
 * "secret", "access_key_secret", "secret_key", ...) that is a non-empty
 * string replaced by the mask. NULL in, NULL out. Caller frees. */
cJSON *audit_masked(const cJSON *j);

/* 1 when a member of this name holds a secret. */
int audit_is_secret(const char *name);

/* Inserts one row on ctx's connection (inside the caller's transaction when
 * there is one). Returns 0 or MCS_EDB (logged and counted). */
int audit_log(struct api_ctx *ctx, const struct api_req *rq, const char *action,
              const char *target, const cJSON *before, const cJSON *after);

/* Ends a change made inside api_begin(): writes its audit row, then
 * commits, so that the change and its row stand or fall together. Returns
 * 0, or MCS_EDB with the transaction rolled back and an error response on
 * rs: 503 (90007) "audit row not written", or the commit's error. */
int audit_commit(struct api_ctx *ctx, const struct api_req *rq, struct api_resp *rs,
                 const char *action, const char *target, const cJSON *before,
                 const cJSON *after);

/* The same for a caller that has no request (the dashboard WebSocket): the
 * user and client address are given. */
int audit_log_as(struct api_ctx *ctx, const char *user, const char *ip, const char *action,
                 const char *target, const cJSON *before, const cJSON *after);

#endif
