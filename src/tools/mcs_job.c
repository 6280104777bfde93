/* mcs_job.c - `mcs job run NAME`, `mcs job list`, `mcs archive list`,
 * `mcs backup restore KEY|latest --dbname DB`, `mcs history SN START END`
 * (issue #10, docs/ARCHIVE.md). Runs jobs in this process through the same
 * job_execute as the scheduler (same locks, same job_runs rows).
 * Owns its PostgreSQL connection. Thread: main. */
#include "mcs_job.h"
#include "archive.h"
#include "backup.h"
#include "conn.h"
#include "err.h"
#include "history.h"
#include "jobs.h"
#include "localday.h"
#include "timeutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mcs_job_cli_handles(const char *argv1)
{
    return !strcmp(argv1, "job") || !strcmp(argv1, "backup") || !strcmp(argv1, "archive") ||
           !strcmp(argv1, "history");
}

static int usage_err(const char *msg)
{
    fprintf(stderr, "mcs: %s\n"
                    "  mcs job run NAME          run a scheduled job now (%s)\n"
                    "  mcs job list              jobs, schedules and last runs\n"
                    "  mcs archive list          archived days (archive_logs)\n"
                    "  mcs archive get DAY       write the archive file of DAY (YYYY-MM-DD) to stdout\n"
                    "  mcs backup restore KEY|latest --dbname DB   load a backup into an empty DB\n"
                    "  mcs history SN START END  readings of SN across hot and archived days\n"
                    "                            (START/END: ISO 8601 or Unix seconds), CSV\n",
            msg, "offline health stats archive license vacuum backup");
    return MCS_EINVAL;
}

static PGconn *connect_db(const struct mcs_config *cfg)
{
    char err[512];
    PGconn *pg = mcs_pg_connect(cfg, "mcs-job", err, sizeof(err));
    if(!pg)
        fprintf(stderr, "mcs: database: %s\n", err);
    return pg;
}

static int print_rows(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    if(PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "mcs: %s", PQresultErrorMessage(r));
        PQclear(r);
        return MCS_EDB;
    }
    int nf = PQnfields(r);
    for(int f = 0; f < nf; f++)
        printf("%s%s", f ? "\t" : "", PQfname(r, f));
    printf("\n");
    for(int i = 0; i < PQntuples(r); i++) {
        for(int f = 0; f < nf; f++)
            printf("%s%s", f ? "\t" : "", PQgetisnull(r, i, f) ? "-" : PQgetvalue(r, i, f));
        printf("\n");
    }
    PQclear(r);
    return 0;
}

static int write_out(void *arg, const void *p, size_t n)
{
    return fwrite(p, 1, n, arg) == n ? 0 : 1;
}

static int job_run(const struct mcs_config *cfg, const char *name)
{
    const struct mcs_job *j = job_find(name);
    PGconn *pg;
    long long id = 0;
    if(!j)
        return usage_err("unknown job");
    if(!(pg = connect_db(cfg)))
        return MCS_EDB;
    struct mcs_jobctx jc = {.cfg = cfg, .pg = pg, .stop = NULL, .now = mcs_now_ms() / 1000};
    enum mcs_job_outcome o = job_execute(j, &jc, 0, "manual", "mcs-cli", &id);
    printf("job %s run %lld: %s%s%s\n", j->name, id, job_outcome_name(o), jc.err[0] ? ": " : "",
           jc.err);
    if(jc.detail[0])
        printf("%s\n", jc.detail);
    PQfinish(pg);
    return o == JOB_OK ? 0 : MCS_EIO;
}

int mcs_job_cli(const struct mcs_config *cfg, int argc, char **argv)
{
    int rc;
    PGconn *pg = NULL;
    /* A child (pg_restore) that ends early must not kill us by SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    if(!strcmp(argv[1], "job")) {
        if(argc == 4 && !strcmp(argv[2], "run"))
            return job_run(cfg, argv[3]);
        if(argc == 3 && !strcmp(argv[2], "list")) {
            if(!(pg = connect_db(cfg)))
                return MCS_EDB;
            rc = print_rows(pg, "SELECT job, outcome, trigger, instance, started_at, ended_at,"
                                " error FROM job_last_runs ORDER BY job");
            PQfinish(pg);
            return rc;
        }
        return usage_err("`mcs job` needs: run NAME | list");
    }
    if(!strcmp(argv[1], "archive") && argc == 4 && !strcmp(argv[2], "get")) {
        char err[600];
        int64_t day;
        if(mcs_day_parse(argv[3], &day))
            return usage_err("DAY is YYYY-MM-DD");
        if(!(pg = connect_db(cfg)))
            return MCS_EDB;
        rc = archive_download(cfg, pg, day, write_out, stdout, err, sizeof(err));
        PQfinish(pg);
        if(rc)
            fprintf(stderr, "mcs: archive get: %s\n", err);
        return rc;
    }
    if(!strcmp(argv[1], "archive")) {
        if(argc != 3 || strcmp(argv[2], "list"))
            return usage_err("`mcs archive` needs: list | get DAY");
        if(!(pg = connect_db(cfg)))
            return MCS_EDB;
        rc = print_rows(pg, "SELECT day, status, file_name, row_count, size_bytes, md5, sink,"
                            " error FROM archive_logs ORDER BY day");
        PQfinish(pg);
        return rc;
    }
    if(!strcmp(argv[1], "backup")) {
        char err[600];
        if(argc != 6 || strcmp(argv[2], "restore") || strcmp(argv[4], "--dbname"))
            return usage_err("`mcs backup` needs: restore KEY|latest --dbname DB");
        rc = backup_restore(cfg, argv[3], argv[5], err, sizeof(err));
        if(rc)
            fprintf(stderr, "mcs: restore failed: %s\n", err);
        else
            printf("restored %s into %s\n", argv[3], argv[5]);
        return rc;
    }
    if(!strcmp(argv[1], "history")) {
        if(argc != 5)
            return usage_err("`mcs history` needs: SN START END");
        return history_cli(cfg, argv[2], argv[3], argv[4]);
    }
    return usage_err("unknown command");
}
