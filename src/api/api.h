/* api.h - what every part of mcs-api shares: the process context, one HTTP
 * request and its response, and the response helpers (R-API-1..8, issue #8).
 * Owns struct api_ctx (made in main.c) and the error-code table of §10.5.
 * Thread: the lws loop thread, unless a field says otherwise. */
#ifndef MCS_API_H
#define MCS_API_H

#include "config.h"
#include "licguard.h"
#include "secret.h"

#include <cJSON.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct lws_context;
struct api_feed;
struct api_mq;
struct api_ws;
struct api_job;
struct api_jobs;

enum api_method { API_GET = 1, API_POST, API_PUT, API_DELETE, API_OTHER };
enum api_role { ROLE_NONE = 0, ROLE_VIEWER = 1, ROLE_ADMIN = 2 };

/* Business codes (§10.5) plus the general ones documented in openapi.yaml. */
#define API_CODES(X)                                         \
    X(E_BAD_LOGIN, 10001, "用户名或密码错误")                \
    X(E_TOKEN, 10002, "Token已过期")                         \
    X(E_ROLE, 10003, "权限不足")                             \
    X(E_LIC_INVALID, 20001, "授权无效")                      \
    X(E_LIC_EXPIRED, 20002, "授权已过期")                    \
    X(E_LIC_DEVICES, 20003, "设备数量超出授权限制")          \
    X(E_LIC_HOST, 20004, "机器码不匹配")                     \
    X(E_DEV_NOTFOUND, 40001, "设备不存在")                   \
    X(E_DEV_EXISTS, 40002, "设备SN已存在")                   \
    X(E_DEV_OFFLINE, 40003, "设备离线, 无法下发命令")        \
    X(E_CALIB, 40004, "校准参数无效")                        \
    X(E_ALARM_CFG, 50001, "报警配置无效")                    \
    X(E_MAIL, 50002, "邮件发送失败")                         \
    X(E_WEBHOOK, 50003, "Webhook调用失败")                   \
    X(E_SMS, 50004, "短信发送失败")                          \
    X(E_R2, 60001, "R2配置无效")                             \
    X(E_ARCH_UPLOAD, 60002, "归档上传失败")                  \
    X(E_ARCH_NOTFOUND, 60003, "归档文件不存在")              \
    X(E_BAD_REQ, 90001, "请求参数错误")                      \
    X(E_NOTFOUND, 90002, "资源不存在")                       \
    X(E_METHOD, 90003, "方法不允许")                         \
    X(E_TOOBIG, 90004, "请求体过大")                         \
    X(E_TOOMANY, 90005, "请求过于频繁")                      \
    X(E_INTERNAL, 90006, "服务器内部错误")                   \
    X(E_UNAVAIL, 90007, "服务暂不可用")                      \
    X(E_NOTIMPL, 90008, "功能未启用")                        \
    X(E_MEDIA, 90009, "不支持的媒体类型")

enum api_code {
#define API_CODE_ENUM(name, value, msg) name = value,
    API_CODES(API_CODE_ENUM)
#undef API_CODE_ENUM
};

/* The message of a business code ("" for an unknown one). */
const char *api_code_message(int code);

#define API_MAX_ARGS 32
#define API_MAX_PARAMS 2

struct api_arg {
    char name[32];
    char value[256];
};

/* One HTTP request as the router sees it. Filled by http.c. */
struct api_req {
    enum api_method method;
    char path[512];
    int nargs;
    struct api_arg args[API_MAX_ARGS];
    int args_bad; /* an argument was too long or there were too many */
    char ctype[128];
    char ip[64];
    unsigned char *body; /* NUL-terminated; body_len bytes */
    size_t body_len;
    const char *params[API_MAX_PARAMS]; /* path parameters, into pbuf */
    char pbuf[API_MAX_PARAMS][128];
    /* Set by the router after the token was checked (authorised = 1). */
    int authorised;
    char user[65];
    enum api_role role;
    long gen;
    long exp;
    char auth[2048]; /* Authorization header */
};

/* One response. body is owned (malloc'd) and freed by http.c. */
struct api_resp {
    int status;
    const char *ctype;
    char *body;
    size_t len;
    int nh; /* extra headers */
    char hname[3][40];
    char hval[3][256];
    int code;        /* business code for metrics/logging, 0 on success */
    int close_after; /* close the connection once answered */
    struct api_job *deferred; /* set by api_defer(): answered when the job is done */
    /* When set, the body is this file's len bytes (read in chunks, closed by
     * http.c) instead of body: a spooled download of bounded memory. */
    FILE *file;
};

/* Adds a header ("content-disposition:" with the colon) to a response. */
void api_header(struct api_resp *rs, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Counters shown by /metrics; written on the loop thread, except ws_* and
 * feed_* which the feed thread writes under feed's lock. */
struct api_stats {
    int proxy_warned; /* proxied requests seen without API_TRUSTED_PROXY, logged once */
    uint64_t http_requests;
    uint64_t http_by_class[6]; /* index status/100 */
    uint64_t logins_ok, logins_failed, logins_throttled;
    uint64_t auth_rejected;
    uint64_t commands;
    uint64_t audit_rows, audit_failed;
    uint64_t bodies_too_large;
    uint64_t lic_refused; /* calls refused while the license is locked */
    int64_t started_ms;
};

struct api_ctx {
    struct mcs_config cfg;
    struct lws_context *lws;
    /* Connections of the loop thread, reopened at most every second. */
    PGconn *pg;
    int64_t pg_retry_ms;
    redisContext *rds;
    int64_t rds_retry_ms;
    struct api_stats st;
    /* Statements prepared on ctx->pg (planned once; partitioned tables make
     * planning the larger part of a short query). Reset on reconnect. */
    int nstmts;
    uint64_t stmts[128];
    struct api_feed *feed; /* feed.c: threads that read Redis/PostgreSQL */
    struct api_mq *mq;     /* mqcmd.c: the broker connection for commands */
    struct api_ws *ws;     /* ws.c: dashboard clients */
    struct api_jobs *jobs; /* jobs.c: the worker of slow requests */
    struct api_auth *auth; /* auth.c: login throttle, user cache */
    struct mcs_secret_key skey; /* secrets at rest (MCS_SECRET_KEY), may be unset */
    struct lic_view lic;        /* h_license.c: the license state, cached */
    int64_t lic_mono;           /* when lic was evaluated (monotonic ms), 0: never */
    volatile int stop;
};

/* Database connection of the loop thread, (re)connected on demand. NULL while
 * PostgreSQL is unreachable (a retry at most once a second). */
PGconn *api_pg(struct api_ctx *ctx);
/* Marks the connection broken after a failed query so the next call
 * reconnects (when PQstatus says so). */
void api_pg_check(struct api_ctx *ctx);
/* Same for Redis (timeouts of 500 ms). */
redisContext *api_redis(struct api_ctx *ctx);
/* Call after a NULL reply or a context error: frees the context. */
void api_redis_fail(struct api_ctx *ctx);

/* Runs a parameterised query (text parameters, text results). Returns the
 * result, or NULL after setting an error response (503 when the database is
 * down, 500 otherwise) on rs. The caller PQclear()s it. */
PGresult *api_query(struct api_ctx *ctx, struct api_resp *rs, const char *sql, int n,
                    const char *const *vals);

/* Tells every mcs-api instance that dashboard configuration changed
 * (NOTIFY mcs_config, what = "devices", "layout" or "background"); their
 * feed sends a `config` event to open wall screens (docs/API.md). Inside a
 * transaction it is delivered at COMMIT and dropped on ROLLBACK. Returns 0
 * or MCS_EDB after setting an error response on rs. */
int api_notify_config(struct api_ctx *ctx, struct api_resp *rs, const char *what);

/* SQL expression: the plant's time zone, the alarm settings'
 * alarm.general.schedule.tz when PostgreSQL knows it, else Asia/Shanghai
 * (as mcsd's notifier, src/mcsd/alarm_db.c). For local times people read. */
#define API_PLANT_TZ_SQL                                                       \
    "COALESCE((SELECT n.name FROM system_config c, pg_timezone_names n"        \
    " WHERE c.key = 'alarm.general' AND n.name = c.value->'schedule'->>'tz'),"  \
    " 'Asia/Shanghai')"

/* A transaction on the loop thread's connection, for a change and its
 * audit row (R-API-7). api_begin: 0, or MCS_EDB with an error response on
 * rs. api_commit: 0, or MCS_EDB with an error response on rs and the
 * transaction rolled back. api_rollback: nothing without a connection. */
int api_begin(struct api_ctx *ctx, struct api_resp *rs);
int api_commit(struct api_ctx *ctx, struct api_resp *rs);
void api_rollback(struct api_ctx *ctx);

/* Response helpers; all return 0 so handlers can `return api_json(...)`. */
int api_json(struct api_resp *rs, int status, cJSON *body); /* takes body */
int api_error(struct api_resp *rs, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int api_saved(struct api_resp *rs, const char *message);
/* Takes a malloc'd buffer as the body. */
int api_raw(struct api_resp *rs, int status, const char *ctype, char *buf, size_t len);

/* One page of a list (manual §10.2): page 1..API_PAGE_MAX, size 1..the
 * endpoint's maximum, and both as the text of LIMIT and OFFSET parameters.
 * Filled by rq_page() (reqparse.h). */
#define API_PAGE_MAX 100000
struct api_page {
    long page, size;
    char lim[24], off[24];
};

/* Adds "total", "page" and "size" (in that order) to the object o. */
void api_page_fields(cJSON *o, long long total, const struct api_page *pg);

/* A paged list in the shape of §10.2: {"total","page","size","data":[...]}.
 * count_sql counts the rows (one row, one column); rows_sql selects them in
 * order and must not end in LIMIT: " LIMIT $n+1 OFFSET $n+2" is appended
 * for pg. Both take the n (at most API_LIST_MAX_VALS) text parameters vals.
 * Each row becomes an object via api_pg_row(). Returns the body (caller
 * owns it), or NULL after setting an error response on rs. */
#define API_LIST_MAX_VALS 16
cJSON *api_list(struct api_ctx *ctx, struct api_resp *rs, const char *count_sql,
                const char *rows_sql, int n, const char *const *vals,
                const struct api_page *pg);

/* JSON helpers for PostgreSQL text values: NULL when the field is SQL NULL. */
cJSON *api_pg_num(PGresult *r, int row, int col);
cJSON *api_pg_str(PGresult *r, int row, int col);
cJSON *api_pg_bool(PGresult *r, int row, int col);
/* The row as an object with each column under its name, typed by OID. */
cJSON *api_pg_row(PGresult *r, int row);

#endif
