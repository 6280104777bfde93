/* migrate.h - versioned schema migrations compiled into the binary (R-ST-1).
 * Owns table schema_migrations. Thread: main, at start-up. */
#ifndef MCS_MIGRATE_H
#define MCS_MIGRATE_H

#include <libpq-fe.h>

struct mcs_migration {
    int version;
    const char *name;
    const char *sql;
};

/* Generated from db/migrations/NNN_name.sql; ended by {0, NULL, NULL}. */
extern const struct mcs_migration mcs_migrations[];

/* Applies every migration not yet recorded, each in its own transaction, all
 * under a session advisory lock so that instances starting together apply
 * each exactly once. Returns 0 or MCS_EDB (logged). */
int migrate_apply(PGconn *pg);

#endif
