/* conn.c - PostgreSQL/Redis connection helpers. Owns nothing persistent.
 * Thread: any. */
#include "conn.h"
#include "err.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

/* Server notices (e.g. "relation already exists, skipping") become debug
 * log lines instead of raw text on stderr. */
static void notice(void *arg, const char *message)
{
    char m[512];
    (void)arg;
    snprintf(m, sizeof(m), "%s", message);
    char *nl = strchr(m, '\n');
    if(nl)
        *nl = '\0';
    LOG_D("pg", "server notice", LS("notice", m));
}

PGconn *mcs_pg_connect(const struct mcs_config *cfg, const char *app, char *err,
                       size_t errn)
{
    char port[16], opts[128];
    /* TCP keepalives and a user timeout: a database host that vanishes
     * (power, network) is noticed within about a minute instead of the
     * kernel's two hours, so no thread waits on a dead socket. */
    const char *keys[] = {"host", "port", "dbname", "user", "password",
                          "application_name", "connect_timeout", "keepalives",
                          "keepalives_idle", "keepalives_interval", "keepalives_count",
                          "tcp_user_timeout", "options", NULL};
    const char *vals[] = {cfg->db_host, port, cfg->db_name, cfg->db_user,
                          cfg->db_pass, app, "5", "1", "20", "5", "4", "30000", opts, NULL};
    PGconn *pg;

    snprintf(port, sizeof(port), "%d", cfg->db_port);
    /* The plant's zone as mcs.tz for SQL that cuts local days (migration
     * 030); TZ holds no spaces or backslashes (config.c checks). */
    snprintf(opts, sizeof(opts), "-c mcs.tz=%s", cfg->tz);
    pg = PQconnectdbParams(keys, vals, 0);
    if(!pg) {
        snprintf(err, errn, "out of memory");
        return NULL;
    }
    if(PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, errn, "%s", PQerrorMessage(pg));
        /* libpq messages end in a newline; logs are one line each. */
        char *nl = strchr(err, '\n');
        if(nl)
            *nl = '\0';
        PQfinish(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg, notice, NULL);
    return pg;
}

int mcs_pg_exec(PGconn *pg, const char *sql, char *err, size_t errn)
{
    PGresult *r = PQexec(pg, sql);
    int rc = 0;
    ExecStatusType st = PQresultStatus(r);
    if(st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        snprintf(err, errn, "%s", PQresultErrorMessage(r));
        char *nl = strchr(err, '\n');
        if(nl)
            *nl = '\0';
        rc = MCS_EDB;
    }
    PQclear(r);
    return rc;
}

void mcs_one_line(char *s)
{
    for(char *p = s; *p; p++)
        if(*p == '\n' || *p == '\r')
            *p = ' ';
}

PGresult *mcs_pg_query(PGconn *pg, const char *sql, int n, const char *const *params,
                       ExecStatusType want, char *err, size_t errn)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
    if(PQresultStatus(r) != want) {
        snprintf(err, errn, "%s", PQresultErrorMessage(r));
        mcs_one_line(err);
        PQclear(r);
        return NULL;
    }
    return r;
}

redisContext *mcs_redis_connect(const struct mcs_config *cfg, char *err, size_t errn)
{
    int ms = cfg->redis_timeout_ms > 0 ? cfg->redis_timeout_ms : 2000;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    redisContext *r = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, tv);
    redisReply *rep;

    if(!r) {
        snprintf(err, errn, "out of memory");
        return NULL;
    }
    if(r->err) {
        snprintf(err, errn, "redis %s:%d: %s", cfg->redis_host, cfg->redis_port, r->errstr);
        redisFree(r);
        return NULL;
    }
    redisSetTimeout(r, tv);
    if(cfg->redis_pass[0]) {
        rep = redisCommand(r, "AUTH %s", cfg->redis_pass);
        if(!rep || rep->type == REDIS_REPLY_ERROR) {
            snprintf(err, errn, "redis AUTH failed%s%s", rep ? ": " : "",
                     rep ? rep->str : "");
            if(rep)
                freeReplyObject(rep);
            redisFree(r);
            return NULL;
        }
        freeReplyObject(rep);
    }
    return r;
}
