/* mcs_user.c - `mcs user ...` (see mcs_user.h): the first admin of mcs-api
 * is made here or by the installer; more through the API.
 * Owns its one PostgreSQL connection. Thread: single-threaded. */
#include "mcs_user.h"
#include "account.h"
#include "conn.h"
#include "err.h"
#include "mcs_util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fputs("usage: mcs user add NAME [--role admin|viewer]   password on stdin (one line)\n"
          "       mcs user passwd NAME                      new password on stdin\n"
          "       mcs user list [--json]\n"
          "       mcs user del NAME\n"
          "NAME: 1 to 64 of A-Z a-z 0-9 _ . -, unique ignoring case; passwords 8 to 256 bytes,\n"
          "not a common password, the name, only spaces or one repeated character;\n"
          "role default admin.\n",
          stderr);
}

/* Reads one line of stdin as the password and hashes it into hash (the
 * rules and hash of src/common/account.h, as the API applies them). */
static int read_hash(const char *name, char *hash, size_t n)
{
    char pw[300], err[160];
    int rc;

    if(!fgets(pw, sizeof(pw), stdin)) {
        fprintf(stderr, "mcs user: no password on stdin\n");
        return MCS_EINVAL;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    rc = mcs_account_password_check_for(name, pw, err, sizeof(err));
    if(rc) {
        fprintf(stderr, "mcs user: %s\n", err);
        goto out;
    }
    rc = mcs_account_password_hash(pw, hash, n);
    if(rc) {
        fprintf(stderr, "mcs user: cannot hash the password\n");
        rc = MCS_ENOMEM;
    }
out:
    sodium_memzero(pw, sizeof(pw));
    return rc;
}

static int exec(PGconn *pg, const char *sql, int n, const char *const *v, int *rows)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, v, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if(!ok)
        fprintf(stderr, "mcs user: %s", PQerrorMessage(pg));
    else if(rows)
        *rows = (int)strtol(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return ok ? 0 : MCS_EDB;
}

/* Runs one change of the account `name` (sql with its n parameters v) and,
 * when it touched a row, writes its audit row as the CLI's (ip 'local'; a
 * failure there is said on stderr but does not undo the change). Returns 0,
 * MCS_EDB (said on stderr), or MCS_ENOTFOUND when no row was touched
 * (nothing said: the caller knows what that means). */
static int change(PGconn *pg, const char *sql, int n, const char *const *v, const char *action,
                  const char *name)
{
    const char *a[3] = {"cli", action, name};
    int rows = 0, rc = exec(pg, sql, n, v, &rows);

    if(rc)
        return rc;
    if(!rows)
        return MCS_ENOTFOUND;
    exec(pg, "INSERT INTO audit_logs (username, action, target, ip) VALUES ($1, $2, $3, 'local')",
         3, a, NULL);
    return 0;
}

int mcs_user_run(const struct mcs_config *cfg, int argc, char **argv)
{
    char err[256], hash[crypto_pwhash_STRBYTES];
    const char *sub = argc > 1 ? argv[1] : "", *name = argc > 2 ? argv[2] : NULL;
    const char *role = "admin";
    PGconn *pg = NULL;
    int rc = MCS_EINVAL, json = 0;

    if(!strcmp(sub, "list")) {
        for(int i = 2; i < argc; i++) {
            if(strcmp(argv[i], "--json") != 0) {
                usage();
                return MCS_EINVAL;
            }
            json = 1;
        }
    } else if(!strcmp(sub, "add")) {
        if(!name || !mcs_account_name_valid(name)) {
            usage();
            return MCS_EINVAL;
        }
        for(int i = 3; i < argc; i++) {
            if(!strcmp(argv[i], "--role") && i + 1 < argc)
                role = argv[++i];
            else if(!strncmp(argv[i], "--role=", 7))
                role = argv[i] + 7;
            else {
                usage();
                return MCS_EINVAL;
            }
        }
        if(strcmp(role, "admin") && strcmp(role, "viewer")) {
            fprintf(stderr, "mcs user: role must be admin or viewer\n");
            return MCS_EINVAL;
        }
    } else if(!strcmp(sub, "passwd") || !strcmp(sub, "del")) {
        if(argc != 3 || !mcs_account_name_valid(name)) {
            usage();
            return MCS_EINVAL;
        }
    } else {
        usage();
        return MCS_EINVAL;
    }
    if((!strcmp(sub, "add") || !strcmp(sub, "passwd")) && (rc = read_hash(name, hash, sizeof(hash))))
        return rc;
    pg = mcs_pg_connect(cfg, "mcs-user", err, sizeof(err));
    if(!pg) {
        fprintf(stderr, "mcs user: database: %s\n", err);
        return MCS_EDB;
    }
    if(!strcmp(sub, "add")) {
        const char *v[3] = {name, hash, role};
        int twins = 0;
        /* Unique ignoring case, as the API (migration 065). */
        rc = exec(pg, "SELECT 1 FROM users WHERE lower(username) = lower($1)", 1, v, &twins);
        if(!rc && twins)
            rc = MCS_ENOTFOUND;
        else if(!rc)
            rc = change(pg, "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) "
                        "ON CONFLICT DO NOTHING",
                    3, v, "user.add", name);
        if(rc == MCS_ENOTFOUND) {
            fprintf(stderr, "mcs user: %s exists, or a name that differs only in case (use "
                            "`mcs user passwd`)\n",
                    name);
            rc = MCS_EDUP;
        } else if(!rc) {
            printf("user %s added (%s)\n", name, role);
        }
    } else if(!strcmp(sub, "passwd")) {
        const char *v[2] = {name, hash};
        rc = change(pg, "UPDATE users SET password_hash = $2 WHERE username = $1", 2, v,
                    "user.password", name);
        if(rc == MCS_ENOTFOUND)
            fprintf(stderr, "mcs user: no user %s\n", name);
        else if(!rc)
            printf("password of %s changed\n", name);
    } else if(!strcmp(sub, "del")) {
        const char *v[1] = {name};
        rc = change(pg, "DELETE FROM users WHERE username = $1", 1, v, "user.delete", name);
        if(rc == MCS_ENOTFOUND)
            fprintf(stderr, "mcs user: no user %s\n", name);
        else if(!rc)
            printf("user %s deleted\n", name);
    } else {
        PGresult *r = PQexec(pg, "SELECT username, role, disabled, to_char(created_at AT TIME "
                                 "ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM users "
                                 "ORDER BY username");
        if(PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "mcs user: %s", PQerrorMessage(pg));
            rc = MCS_EDB;
        } else {
            rc = 0;
            if(json)
                fputs("[", stdout);
            for(int i = 0; i < PQntuples(r); i++) {
                if(json)
                    printf("%s{\"username\":\"%s\",\"role\":\"%s\",\"disabled\":%s,"
                           "\"created_at\":\"%s\"}",
                           i ? "," : "", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                           PQgetvalue(r, i, 2)[0] == 't' ? "true" : "false", PQgetvalue(r, i, 3));
                else
                    printf("%-24s %-7s %s%s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                           PQgetvalue(r, i, 3), PQgetvalue(r, i, 2)[0] == 't' ? " disabled" : "");
            }
            if(json)
                fputs("]\n", stdout);
        }
        PQclear(r);
    }
    PQfinish(pg);
    sodium_memzero(hash, sizeof(hash));
    return rc;
}

/* `mcs user ...` as a command group of mcs.c: one raw command. */
static int user_cmd(struct cli *c, const struct cli_args *a)
{
    char *argv[8] = {"user"};
    int argc = 1;
    for(int i = 0; i < a->argc && argc < 7; i++)
        argv[argc++] = a->argv[i];
    if(a->argc > 6)
        return cli_fail(MCS_EINVAL, "too many arguments for `mcs user`");
    return mcs_user_run(&c->cfg, argc, argv);
}

static const struct cli_cmd user_cmds[] = {{NULL, CLI_A_RAW, user_cmd}};

const struct cli_group mcs_group_user = {
    .name = "user",
    .cmds = user_cmds,
    .ncmds = 1,
    .usage = "Accounts of mcs-api (issue #8; passwords on stdin, stored as Argon2id):\n"
             "  mcs user add NAME [--role admin|viewer]\n"
             "  mcs user passwd NAME          change the password\n"
             "  mcs user list [--json]\n"
             "  mcs user del NAME\n",
};
