/* mcs.c - `mcs`, the admin command line (R-MQ-6, R-PR-2, R-ST-7): reads the
 * configuration, picks a command group from the table below and runs it.
 * Owns the dispatch and the usage text's frame; each group owns its own
 * commands, checks and SQL in its own file. Thread: single-threaded; at most
 * one PostgreSQL and one Redis connection (struct cli, closed here).
 *
 * Adding a command group (as curl's src/tool_*.c), e.g. `mcs alarm ...`:
 *   1. write src/tools/mcs_alarm.c defining
 *        const struct cli_group mcs_group_alarm = {.name = "alarm", ...};
 *      with its command table (struct cli_cmd: subcommand name, what it
 *      accepts — CLI_A_SN, CLI_A_JSON, CLI_A_OPTS with the group's option
 *      table, or CLI_A_RAW — and the function), its usage lines and, if it
 *      needs one, a cross-check of the parsed options. A group with a single
 *      command gives it the name NULL (`mcs status`, `mcs hash-password`).
 *      Use the helpers of mcs_util.h: cli_fail (message + code, so a check
 *      reads `rc = cli_fail(MCS_EINVAL, ...); goto out;`), cli_db_open,
 *      cli_pg_query (parameters only, never user text in SQL),
 *      cli_redis_cmd, cli_jadd/cli_print_json for --json.
 *   2. add one line X(alarm) to MCS_GROUPS below, where its usage section
 *      should appear in `mcs --help`.
 * CMake picks up every src/tools/mcs_*.c. Commands return 0 or a negative
 * MCS_E code; MCS_EINVAL and MCS_ECONFIG exit 2 (usage), the others 1. */
#include "err.h"
#include "mcs_util.h"

#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* The command groups, in the order of `mcs --help`. */
#define MCS_GROUPS(X)                                                                              \
    X(device)                                                                                      \
    X(status)                                                                                      \
    X(hash)                                                                                        \
    X(job) X(archive) X(backup) X(history) /* issue #10: src/tools/mcs_job.c */                   \
    X(alarm)  /* issue #7: mcs_alarm.c */                                                          \
    X(config) /* issue #7: mcs_alarm.c (`mcs config alarm ...`) */                                 \
    X(user)   /* issue #8: mcs_user.c (accounts of mcs-api) */                               \
    X(license) /* issue #17: mcs_license.c */

#define MCS_GROUP_DECL(g) extern const struct cli_group mcs_group_##g;
MCS_GROUPS(MCS_GROUP_DECL)
#undef MCS_GROUP_DECL

static const struct cli_group *const groups[] = {
#define MCS_GROUP_REF(g) &mcs_group_##g,
    MCS_GROUPS(MCS_GROUP_REF)
#undef MCS_GROUP_REF
};
#define NGROUPS (sizeof(groups) / sizeof(groups[0]))

static void usage(FILE *f)
{
    fputs("usage: mcs [--env-file FILE] [--set NAME=VALUE]... COMMAND\n\n", f);
    for(size_t i = 0; i < NGROUPS; i++)
        fputs(groups[i]->usage, f);
    fputs("  mcs help                      this text\n", f);
    for(size_t i = 0; i < NGROUPS; i++)
        if(groups[i]->detail) {
            fputc('\n', f);
            fputs(groups[i]->detail, f);
        }
    fputs("\n"
          "Configuration as for mcsd (.env, --env-file, environment, --set):\n"
          "DB_HOST DB_PORT DB_NAME DB_USER DB_PASS REDIS_HOST REDIS_PORT REDIS_PASS\n"
          "VENDOR_SECRET.\n"
          "Exit status: 0 ok, 1 runtime error (database unreachable, no such device,\n"
          "duplicate), 2 usage or configuration error.\n",
          f);
}

static int wants_help(int argc, char **argv)
{
    if(argc > 1 && (!strcmp(argv[1], "help") || !strcmp(argv[1], "-h")))
        return 1;
    for(int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if(!strcmp(argv[i], "--help"))
            return 1;
    return 0;
}

/* Parses the words after cmd (from argv[first]) as it accepts and runs it. */
static int run_cmd(struct cli *c, const struct cli_group *g, const struct cli_cmd *cmd, int argc,
                   char **argv, int first, const char *label)
{
    struct cli_args a;
    int rc;

    if(cmd->allow & CLI_A_RAW) {
        memset(&a, 0, sizeof(a));
        a.argc = argc - first;
        a.argv = argv + first;
        return cmd->fn(c, &a);
    }
    rc = cli_parse_args(argc, argv, first, cmd->allow, g->opts, g->nopts, label, &a);
    if(!rc && g->check)
        rc = g->check(&a);
    return rc ? rc : cmd->fn(c, &a);
}

/* Picks the group and command and runs it; returns 0 or a negative code. */
static int run(struct cli *c, int argc, char **argv)
{
    const struct cli_group *g = NULL;
    char sb[48], label[64];

    if(argc < 2) {
        usage(stderr);
        return MCS_EINVAL;
    }
    for(size_t i = 0; i < NGROUPS && !g; i++)
        if(!strcmp(argv[1], groups[i]->name))
            g = groups[i];
    if(!g)
        return cli_fail(MCS_EINVAL, "unknown command '%s' (see `mcs --help`)",
                        cli_shown(argv[1], sb, sizeof(sb)));
    if(g->ncmds == 1 && !g->cmds[0].name)
        return run_cmd(c, g, &g->cmds[0], argc, argv, 2, g->name);
    if(argc < 3)
        return cli_fail(MCS_EINVAL, "%s", g->nosub);
    for(size_t i = 0; i < g->ncmds; i++) {
        if(strcmp(argv[2], g->cmds[i].name) != 0)
            continue;
        snprintf(label, sizeof(label), "%s %s", g->name, g->cmds[i].name);
        return run_cmd(c, g, &g->cmds[i], argc, argv, 3, label);
    }
    return cli_fail(MCS_EINVAL, "unknown %s subcommand '%s' (see `mcs --help`)", g->name,
                    cli_shown(argv[2], sb, sizeof(sb)));
}

int main(int argc, char **argv)
{
    struct cli c;
    int rc;

    /* A child we stream into (pg_restore of `mcs job run backup`) may stop
     * reading early: a write error, not a killed CLI. */
    signal(SIGPIPE, SIG_IGN);
    /* Only the character type: column widths of UTF-8 names. Numbers keep
     * the C locale, as strtod and the JSON output rely on it. */
    if(!setlocale(LC_CTYPE, "") || MB_CUR_MAX < 2)
        setlocale(LC_CTYPE, "C.UTF-8");
    memset(&c, 0, sizeof(c));
    if(wants_help(argc, argv)) {
        usage(stdout);
        rc = 0;
        goto out;
    }
    rc = mcs_config_load(&c.cfg, &argc, argv);
    if(rc)
        goto out;
    rc = run(&c, argc, argv);
out:
    if(c.pg)
        PQfinish(c.pg);
    if(c.rds)
        redisFree(c.rds);
    if(fflush(stdout) != 0 && !rc)
        rc = cli_fail(MCS_EIO, "cannot write the output");
    if(!rc)
        return 0;
    return rc == MCS_EINVAL || rc == MCS_ECONFIG ? EXIT_USAGE : EXIT_RUNTIME;
}
