/* mcs_util.h - what every `mcs` command group shares: the command and
 * group tables that mcs.c dispatches on, the parsed command line, the
 * database/Redis handles, messages and output helpers.
 * Owns nothing but the CLI context it is handed. Thread: single-threaded.
 * How to add a command group: see the top of mcs.c. */
#ifndef MCS_TOOLS_UTIL_H
#define MCS_TOOLS_UTIL_H

#include "config.h"
#include "conn.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdio.h>

/* Exit statuses promised by the usage text. */
enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/* The CLI context made in main: configuration plus at most one PostgreSQL
 * and one Redis connection, opened on first use, closed by main. */
struct cli {
    struct mcs_config cfg;
    PGconn *pg;
    redisContext *rds;
    int redis_failed;
    char redis_err[256];
};

/* One settable column option of a group (e.g. `--name` of `device add`).
 * `flag` and `column` are constants: user text only ever travels as a
 * query parameter. */
enum cli_optkind { CLI_OPT_STR, CLI_OPT_NUM };
struct cli_opt {
    const char *flag;
    const char *column;
    size_t max; /* strings: most bytes (the schema counts characters) */
    enum cli_optkind kind;
    int empty_ok; /* strings: "" is a meaningful value */
    int nullable; /* numbers: "none" stores NULL */
    int positive; /* numbers: must be > 0 */
};
#define CLI_OPTS_MAX 24

/* What a command accepts (cli_cmd.allow). CLI_A_RAW: no parsing at all, the
 * command gets the words after its name in argc/argv. */
enum { CLI_A_SN = 1, CLI_A_JSON = 2, CLI_A_OPTS = 4, CLI_A_RAW = 8 };

/* What a command line said, after every check that needs no server. */
struct cli_args {
    const char *sn;
    int json;
    int nset;                      /* how many options were given */
    int set[CLI_OPTS_MAX];         /* option i of the group was given */
    const char *val[CLI_OPTS_MAX]; /* its parameter text; NULL stores SQL NULL */
    double num[CLI_OPTS_MAX];      /* numbers, for cross-checks */
    const char *raw[CLI_OPTS_MAX]; /* as typed, for messages */
    char numtxt[CLI_OPTS_MAX][32]; /* numbers re-printed canonically */
    int argc;                      /* CLI_A_RAW: words after the command */
    char **argv;
};

/* One command of a group: `mcs GROUP NAME ...`, or, when the group has a
 * single command with name NULL, `mcs GROUP ...`. fn returns 0 or a
 * negative MCS_E code after printing why (cli_fail). */
struct cli_cmd {
    const char *name;
    unsigned allow;
    int (*fn)(struct cli *c, const struct cli_args *a);
};

/* A command group, one per mcs_<group>.c, listed in mcs.c's table. */
struct cli_group {
    const char *name; /* first word: "device", "status" */
    const struct cli_cmd *cmds;
    size_t ncmds;
    const struct cli_opt *opts; /* for CLI_A_OPTS commands (may be NULL) */
    size_t nopts;               /* at most CLI_OPTS_MAX */
    /* Cross-checks of the parsed options (may be NULL): 0 or MCS_EINVAL
     * after printing why. */
    int (*check)(const struct cli_args *a);
    const char *nosub;  /* message when the subcommand is missing */
    const char *usage;  /* its lines of `mcs --help`, command summary */
    const char *detail; /* a paragraph after the summaries (may be NULL) */
};

/* Prints "mcs: <message>" on stderr and returns rc, so that a check reads
 * `rc = cli_fail(MCS_EINVAL, ...); goto out;`. */
__attribute__((format(printf, 2, 3))) int cli_fail(int rc, const char *fmt, ...);

/* Prints "mcs: warning: <message>" on stderr. */
__attribute__((format(printf, 1, 2))) void cli_warn(const char *fmt, ...);

/* Copies outside text for an error message into buf: control and non-ASCII
 * bytes become '?', cut with "..." to fit. n must be at least 8. */
const char *cli_shown(const char *s, char *buf, size_t n);

/* 1 when s is valid UTF-8 without control characters (C0, DEL, C1). */
int cli_text_ok(const char *s);

/* Terminal columns taken by UTF-8 text (CJK is two wide). */
size_t cli_dwidth(const char *s);

/* Writes n spaces to stdout. */
void cli_pad(size_t n);

/* Parses a whole, finite decimal number (no blanks, hex, inf, nothing
 * after). Returns 0 or MCS_EINVAL. */
int cli_parse_num(const char *s, double *out);

/* Parses argv[i..] for a command accepting what `allow` says: one SN,
 * --json, options of the table opts[0..nopts). cmd names the command in
 * messages. Prints the first problem; returns 0 or MCS_EINVAL. */
int cli_parse_args(int argc, char **argv, int i, unsigned allow, const struct cli_opt *opts,
                   size_t nopts, const char *cmd, struct cli_args *a);

/* Appends to a statement being built from constant pieces. Returns 0 or
 * MCS_ETOOBIG. */
__attribute__((format(printf, 4, 5))) int cli_sql_cat(char *buf, size_t n, size_t *len,
                                                      const char *fmt, ...);

/* Connects to PostgreSQL on first use. Returns 0 or MCS_EDB (printed). */
int cli_db_open(struct cli *c);

/* Runs one parameterised statement. Returns 0 with *res set (the caller
 * PQclears it), MCS_EDUP on a unique violation without printing (the
 * caller words it), or MCS_EDB after printing the server's reason. */
int cli_pg_query(struct cli *c, const char *sql, int n, const char *const *vals, PGresult **res);

/* cli_pg_query without parameters or result. */
int cli_pg_simple(struct cli *c, const char *sql);

/* freeReplyObject that accepts NULL. */
void cli_reply_free(void *rep);

/* Runs one Redis command (connecting on first use); returns the reply or
 * NULL with the reason in c->redis_err (an error reply counts as failure
 * and is freed). After a failed connect it does not try again. */
__attribute__((format(printf, 2, 3))) redisReply *cli_redis_cmd(struct cli *c, const char *fmt,
                                                                ...);

/* Adds item to a JSON object (key) or array (key NULL); frees it when that
 * fails. Returns 0 or MCS_ENOMEM (also for item NULL). */
int cli_jadd(cJSON *to, const char *key, cJSON *item);

/* A number from Redis or PostgreSQL text; text that is not one stays text. */
cJSON *cli_jnum_or_str(const char *s);

/* Prints j, indented, and a newline on stdout. Returns 0 or MCS_ENOMEM. */
int cli_print_json(cJSON *j);

#endif
