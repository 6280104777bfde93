/* conn.h - opening PostgreSQL and Redis connections from the configuration.
 * Owns nothing after return: the caller owns each connection. Thread: any;
 * a connection is then used by one thread only. */
#ifndef MCS_CONN_H
#define MCS_CONN_H

#include "config.h"

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

/* Connects to PostgreSQL (connect timeout 5 s, application_name = app).
 * Returns a connection in CONNECTION_OK state, or NULL with the reason in
 * err (size errn). Never logs the password. */
PGconn *mcs_pg_connect(const struct mcs_config *cfg, const char *app, char *err,
                       size_t errn);

/* Runs a command that returns no rows; returns 0 or MCS_EDB with the server
 * message in err. */
int mcs_pg_exec(PGconn *pg, const char *sql, char *err, size_t errn);

/* Runs a parameterised statement (text parameters, text results). Returns
 * the result when its status is want (the caller PQclear()s it), else NULL
 * with the server message, on one line, in err. */
PGresult *mcs_pg_query(PGconn *pg, const char *sql, int n, const char *const *params,
                       ExecStatusType want, char *err, size_t errn);

/* Replaces the line breaks of a server message by spaces (a log line). */
void mcs_one_line(char *s);

/* Connects to Redis (timeout 2 s) and AUTHs when REDIS_PASS is set.
 * Returns the context or NULL with the reason in err. */
redisContext *mcs_redis_connect(const struct mcs_config *cfg, char *err, size_t errn);

#endif
