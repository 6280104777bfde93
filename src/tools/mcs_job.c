/* mcs_job.c - the `mcs job|archive|backup|history` command groups (issue #10,
 * docs/ARCHIVE.md): run a scheduled job now through the same job_execute as
 * the scheduler (same locks, same job_runs rows), list jobs and archives,
 * fetch an archive file, restore a backup, read history across hot and cold.
 * Owns only the output it prints; the connection is the CLI's (struct cli).
 * Thread: single-threaded. */
#include "archive.h"
#include "backup.h"
#include "err.h"
#include "history.h"
#include "jobs.h"
#include "localday.h"
#include "mcs_util.h"
#include "timeutil.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static int print_rows(struct cli *c, const char *sql)
{
    PGresult *r = NULL;
    int rc = cli_db_open(c);
    if(rc || (rc = cli_pg_query(c, sql, 0, NULL, &r)))
        return rc;
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

static int cmd_job_run(struct cli *c, const struct cli_args *a)
{
    const struct mcs_job *j;
    long long id = 0;
    char sb[48];
    int rc;
    if(a->argc != 1)
        return cli_fail(MCS_EINVAL, "job run needs one job name");
    if(!(j = job_find(a->argv[0])))
        return cli_fail(MCS_EINVAL, "unknown job '%s' (offline health stats archive license "
                                    "vacuum backup)", cli_shown(a->argv[0], sb, sizeof(sb)));
    if((rc = cli_db_open(c)))
        return rc;
    /* A child (pg_dump, pg_restore) that ends early must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    struct mcs_jobctx jc = {.cfg = &c->cfg, .pg = c->pg, .stop = NULL, .now = mcs_now_ms() / 1000};
    enum mcs_job_outcome o = job_execute(j, &jc, 0, "manual", "mcs-cli", &id);
    printf("job %s run %lld: %s%s%s\n", j->name, id, job_outcome_name(o), jc.err[0] ? ": " : "",
           jc.err);
    if(jc.detail[0])
        printf("%s\n", jc.detail);
    return o == JOB_OK ? 0 : MCS_EIO;
}

static int cmd_job_list(struct cli *c, const struct cli_args *a)
{
    if(a->argc != 0)
        return cli_fail(MCS_EINVAL, "job list takes no arguments");
    return print_rows(c, "SELECT job, outcome, trigger, instance, started_at, ended_at, error"
                         " FROM job_last_runs ORDER BY job");
}

static int cmd_archive_list(struct cli *c, const struct cli_args *a)
{
    if(a->argc != 0)
        return cli_fail(MCS_EINVAL, "archive list takes no arguments");
    return print_rows(c, "SELECT day, status, file_name, row_count, size_bytes, md5, sink, error"
                         " FROM archive_logs ORDER BY day");
}

static int write_out(void *arg, const void *p, size_t n)
{
    return fwrite(p, 1, n, arg) == n ? 0 : 1;
}

static int cmd_archive_get(struct cli *c, const struct cli_args *a)
{
    char err[600];
    int64_t day;
    int rc;
    if(a->argc != 1 || mcs_day_parse(a->argv[0], &day))
        return cli_fail(MCS_EINVAL, "archive get needs a day YYYY-MM-DD");
    if((rc = cli_db_open(c)))
        return rc;
    rc = archive_download(&c->cfg, c->pg, day, write_out, stdout, err, sizeof(err));
    if(rc)
        return cli_fail(rc == MCS_ENOTFOUND ? MCS_ENOTFOUND : rc, "archive get: %s", err);
    return 0;
}

static int cmd_backup_restore(struct cli *c, const struct cli_args *a)
{
    char err[600];
    if(a->argc != 3 || strcmp(a->argv[1], "--dbname"))
        return cli_fail(MCS_EINVAL, "backup restore needs KEY|latest --dbname DB");
    signal(SIGPIPE, SIG_IGN);
    int rc = backup_restore(&c->cfg, a->argv[0], a->argv[2], err, sizeof(err));
    if(rc)
        return cli_fail(rc, "restore failed: %s", err);
    printf("restored %s into %s\n", a->argv[0], a->argv[2]);
    return 0;
}

static int cmd_history(struct cli *c, const struct cli_args *a)
{
    (void)c;
    if(a->argc != 3)
        return cli_fail(MCS_EINVAL, "history needs SN START END");
    return history_cli(&c->cfg, a->argv[0], a->argv[1], a->argv[2]);
}

static const struct cli_cmd job_cmds[] = {
    {"run", CLI_A_RAW, cmd_job_run},
    {"list", CLI_A_RAW, cmd_job_list},
};
static const struct cli_cmd archive_cmds[] = {
    {"list", CLI_A_RAW, cmd_archive_list},
    {"get", CLI_A_RAW, cmd_archive_get},
};
static const struct cli_cmd backup_cmds[] = {
    {"restore", CLI_A_RAW, cmd_backup_restore},
};
static const struct cli_cmd history_cmds[] = {
    {NULL, CLI_A_RAW, cmd_history},
};

const struct cli_group mcs_group_job = {
    .name = "job",
    .cmds = job_cmds,
    .ncmds = 2,
    .nosub = "`mcs job` needs a subcommand: run NAME or list",
    .usage = "Scheduled jobs, archive, backup (docs/ARCHIVE.md):\n"
             "  mcs job run NAME              run a job now: offline health stats archive\n"
             "                                license vacuum backup (exit 1 unless ok)\n"
             "  mcs job list                  the last run of each job\n",
};
const struct cli_group mcs_group_archive = {
    .name = "archive",
    .cmds = archive_cmds,
    .ncmds = 2,
    .nosub = "`mcs archive` needs a subcommand: list or get DAY",
    .usage = "  mcs archive list              archived days (archive_logs)\n"
             "  mcs archive get DAY           the archive file of DAY (YYYY-MM-DD) on stdout\n",
};
const struct cli_group mcs_group_backup = {
    .name = "backup",
    .cmds = backup_cmds,
    .ncmds = 1,
    .nosub = "`mcs backup` needs a subcommand: restore KEY|latest --dbname DB",
    .usage = "  mcs backup restore KEY|latest --dbname DB\n"
             "                                load a backup into an empty database\n",
};
const struct cli_group mcs_group_history = {
    .name = "history",
    .cmds = history_cmds,
    .ncmds = 1,
    .usage = "  mcs history SN START END      readings of SN across hot and archived days\n"
             "                                as CSV (START/END: 2026-11-24, ISO 8601 or\n"
             "                                Unix seconds)\n",
};
