/* migrate.c - applies embedded migrations under pg_advisory_lock.
 * Owns schema_migrations. Thread: main, at start-up. */
#include "pglocks.h"
#include "migrate.h"
#include "conn.h"
#include "dialect.h"
#include "err.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>

#define MIGRATE_LOCK_KEY MCS_LOCK_MIGRATE

int migrate_apply(PGconn *pg)
{
    char err[512];
    int rc = 0, locked = 0;
    PGresult *res = NULL;

    if((rc = mcs_pg_exec(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", err, sizeof(err))))
        goto fail;
    locked = 1;
    dialect_log_choice(pg);
    if((rc = mcs_pg_exec(pg,
                         "CREATE TABLE IF NOT EXISTS schema_migrations ("
                         " version integer PRIMARY KEY, name text NOT NULL,"
                         " applied_at timestamptz NOT NULL DEFAULT now())",
                         err, sizeof(err))))
        goto fail;
    for(const struct mcs_migration *m = mcs_migrations; m->name; m++) {
        char v[16];
        const char *params[2] = {v, m->name};
        snprintf(v, sizeof(v), "%d", m->version);
        res = PQexecParams(pg, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL,
                           params, NULL, NULL, 0);
        if(PQresultStatus(res) != PGRES_TUPLES_OK) {
            snprintf(err, sizeof(err), "%s", PQresultErrorMessage(res));
            rc = MCS_EDB;
            goto fail;
        }
        int done = PQntuples(res) > 0;
        PQclear(res);
        res = NULL;
        if(done)
            continue;
        if((rc = mcs_pg_exec(pg, "BEGIN", err, sizeof(err))))
            goto fail;
        if((rc = mcs_pg_exec(pg, m->sql, err, sizeof(err)))) {
            char e2[64];
            mcs_pg_exec(pg, "ROLLBACK", e2, sizeof(e2));
            LOG_E("migrate", "migration failed", LS("name", m->name), LS("error", err));
            goto out;
        }
        res = PQexecParams(pg, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                           NULL, params, NULL, NULL, 0);
        if(PQresultStatus(res) != PGRES_COMMAND_OK) {
            snprintf(err, sizeof(err), "%s", PQresultErrorMessage(res));
            rc = MCS_EDB;
            goto fail;
        }
        PQclear(res);
        res = NULL;
        if((rc = mcs_pg_exec(pg, "COMMIT", err, sizeof(err))))
            goto fail;
        LOG_I("migrate", "applied migration", LS("name", m->name));
    }
    goto out;
fail:
    LOG_E("migrate", "migrations failed", LS("error", err));
out:
    PQclear(res);
    if(locked)
        mcs_pg_exec(pg, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", err, sizeof(err));
    return rc;
}
