/* backup.c - backup job and restore (see backup.h). pg_dump's stdout is read
 * in 256 KiB pieces straight into the sink's streaming upload, so a backup
 * never sits whole in memory or on local disk.
 * Owns its child processes until they are reaped. Thread: the caller's. */
#include "backup.h"
#include "conn.h"
#include "err.h"
#include "jobs.h"
#include "localday.h"
#include "log.h"
#include "storage_cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CHUNK (256 * 1024)

void backup_key(int64_t day, char *out, size_t n)
{
    int y, m, d;
    mcs_civil_from_days(day, &y, &m, &d);
    snprintf(out, n, "backup/%04d/%02d/mcs_%04d%02d%02d.dump", y, m, y, m, d);
}

static void tool_path(const struct mcs_config *cfg, const char *tool, char *out, size_t n)
{
    if(cfg->pg_bin_dir[0])
        snprintf(out, n, "%s/%s", cfg->pg_bin_dir, tool);
    else
        snprintf(out, n, "%s", tool);
}

/* environ plus PGPASSWORD (the password never goes on a command line). */
static char **child_env(const struct mcs_config *cfg, char *pw, size_t pwn)
{
    size_t n = 0;
    while(environ[n])
        n++;
    char **env = calloc(n + 2, sizeof(*env));
    if(!env)
        return NULL;
    size_t k = 0;
    for(size_t i = 0; i < n; i++)
        if(strncmp(environ[i], "PGPASSWORD=", 11))
            env[k++] = environ[i];
    snprintf(pw, pwn, "PGPASSWORD=%s", cfg->db_pass);
    env[k++] = pw;
    env[k] = NULL;
    return env;
}

struct child {
    pid_t pid;
    int in;  /* our end of its stdin, or -1 */
    int out; /* our end of its stdout, or -1 */
    int err; /* our end of its stderr */
};

/* Starts argv with stdin and/or stdout piped to us (else /dev/null) and
 * stderr piped. */
static int spawn(char *const argv[], char **env, int want_in, int want_out, struct child *c,
                 char *err, size_t errn)
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    int rc = MCS_EIO;
    c->pid = -1;
    c->in = c->out = c->err = -1;
    if((want_in && pipe2(pin, O_CLOEXEC)) || (want_out && pipe2(pout, O_CLOEXEC)) ||
       pipe2(perr, O_CLOEXEC)) {
        snprintf(err, errn, "pipe: %s", strerror(errno));
        goto out;
    }
    posix_spawn_file_actions_init(&fa);
    if(want_in)
        posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if(want_out)
        posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    else
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
    int e = posix_spawnp(&c->pid, argv[0], &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    if(e) {
        snprintf(err, errn, "cannot run %s: %s", argv[0], strerror(e));
        c->pid = -1;
        goto out;
    }
    if(want_in) {
        c->in = pin[1];
        pin[1] = -1;
    }
    if(want_out) {
        c->out = pout[0];
        pout[0] = -1;
    }
    c->err = perr[0];
    perr[0] = -1;
    rc = 0;
out:
    for(int i = 0; i < 2; i++) {
        if(pin[i] >= 0)
            close(pin[i]);
        if(pout[i] >= 0)
            close(pout[i]);
        if(perr[i] >= 0)
            close(perr[i]);
    }
    return rc;
}

/* Closes our pipe ends, reads what is left of stderr (last line kept) and
 * reaps the child. Returns its exit status, or -1. */
static int finish(struct child *c, char *msg, size_t msgn)
{
    char buf[4096];
    size_t len = 0;
    int st = 0;
    if(c->in >= 0)
        close(c->in);
    if(c->out >= 0)
        close(c->out);
    c->in = c->out = -1;
    if(c->err >= 0) {
        for(;;) {
            ssize_t r = read(c->err, buf + len, sizeof(buf) - 1 - len);
            if(r < 0 && errno == EINTR)
                continue;
            if(r <= 0)
                break;
            len += (size_t)r;
            if(len >= sizeof(buf) - 1) {
                /* keep the tail */
                memmove(buf, buf + len / 2, len - len / 2);
                len -= len / 2;
            }
        }
        close(c->err);
        c->err = -1;
    }
    buf[len] = '\0';
    while(len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    char *last = strrchr(buf, '\n');
    if(msg)
        snprintf(msg, msgn, "%s", last ? last + 1 : buf);
    if(c->pid <= 0)
        return -1;
    while(waitpid(c->pid, &st, 0) < 0 && errno == EINTR) {
    }
    c->pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while(n > 0) {
        ssize_t w = write(fd, s, n);
        if(w < 0 && errno == EINTR)
            continue;
        if(w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The stdin of a child that may stop reading before the end: pg_restore
 * --list of a custom-format dump reads the header and table of contents and
 * exits. */
struct pipe_dst {
    int fd;
    int closed; /* the child closed its end (EPIPE): the rest is discarded */
};

static int to_fd(void *arg, const void *p, size_t n)
{
    struct pipe_dst *d = arg;
    if(d->closed)
        return 0;
    if(write_all(d->fd, p, n) == 0)
        return 0;
    if(errno == EPIPE) {
        d->closed = 1;
        return 0;
    }
    return 1;
}

/* Streams object key into the stdin of argv; the child's exit status 0 is
 * success (also when it stopped reading early). */
static int pipe_object(struct mcs_sink *k, const char *key, char *const argv[], char **env,
                       char *err, size_t errn)
{
    struct child c;
    char msg[512] = "";
    int rc = spawn(argv, env, 1, 0, &c, err, errn);
    if(rc)
        return rc;
    struct pipe_dst dst = {c.in, 0};
    rc = k->ops->get(k, key, to_fd, &dst, err, errn);
    int st = finish(&c, msg, sizeof(msg));
    if(st != 0) {
        snprintf(err, errn, "%.200s exited %d: %.400s", argv[0], st, msg);
        return MCS_EIO;
    }
    return rc;
}

struct keys {
    char (*k)[600];
    int n, cap;
};

static int collect(void *arg, const char *key, int64_t size)
{
    struct keys *ks = arg;
    size_t l = strlen(key);
    (void)size;
    if(l < 5 || strcmp(key + l - 5, ".dump") || strncmp(key, "backup/", 7))
        return 0;
    if(ks->n == ks->cap) {
        int cap = ks->cap ? ks->cap * 2 : 32;
        void *nk = realloc(ks->k, (size_t)cap * sizeof(*ks->k));
        if(!nk)
            return 1;
        ks->k = nk;
        ks->cap = cap;
    }
    snprintf(ks->k[ks->n++], sizeof(ks->k[0]), "%s", key);
    return 0;
}

static int cmpkey(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int list_backups(struct mcs_sink *k, struct keys *ks, char *err, size_t errn)
{
    memset(ks, 0, sizeof(*ks));
    int rc = k->ops->list(k, "backup/", collect, ks, err, errn);
    if(!rc && ks->n)
        qsort(ks->k, (size_t)ks->n, sizeof(ks->k[0]), cmpkey);
    return rc;
}

int backup_latest(struct mcs_sink *k, char *out, size_t n, char *err, size_t errn)
{
    struct keys ks;
    int rc = list_backups(k, &ks, err, errn);
    if(!rc && ks.n == 0) {
        snprintf(err, errn, "no backup in the sink");
        rc = MCS_ENOTFOUND;
    }
    if(!rc)
        snprintf(out, n, "%s", ks.k[ks.n - 1]);
    free(ks.k);
    return rc;
}

static void log_backup(PGconn *pg, const char *key, const char *sink, const struct mcs_upload_result *r,
                       const char *status, const char *error)
{
    char bytes[32];
    snprintf(bytes, sizeof(bytes), "%" PRId64, r ? r->bytes : 0);
    const char *p[6] = {key, sink, r ? bytes : NULL, r ? r->md5 : NULL, status, error};
    PGresult *res = PQexecParams(pg,
                                 "INSERT INTO backup_logs (key, sink, size_bytes, md5, status, error)"
                                 " VALUES ($1, $2, $3::bigint, $4, $5, $6)",
                                 6, NULL, p, NULL, NULL, 0);
    if(PQresultStatus(res) != PGRES_COMMAND_OK)
        LOG_W("backup", "backup_logs not written", LS("error", PQresultErrorMessage(res)));
    PQclear(res);
}

enum mcs_job_outcome backup_job(struct mcs_jobctx *jc)
{
    const struct mcs_config *cfg = jc->cfg;
    char key[128], dump[300], restore[300], port[16], pw[300], how[16];
    struct mcs_sink *k = NULL;
    struct mcs_upload *up = NULL;
    struct mcs_upload_result ur;
    struct child c = {-1, -1, -1, -1};
    char **env = NULL;
    char *buf = NULL;
    int deleted = 0, have_ur = 0;
    enum mcs_job_outcome o = JOB_FAILED;

    backup_key(mcs_local_day(jc->now), key, sizeof(key));
    tool_path(cfg, "pg_dump", dump, sizeof(dump));
    tool_path(cfg, "pg_restore", restore, sizeof(restore));
    snprintf(port, sizeof(port), "%d", cfg->db_port);
    if(storage_sink_open(cfg, jc->pg, jc->stop, &k, jc->err, sizeof(jc->err)))
        goto out;
    env = child_env(cfg, pw, sizeof(pw));
    buf = malloc(CHUNK);
    if(!env || !buf) {
        snprintf(jc->err, sizeof(jc->err), "out of memory");
        goto out;
    }
    {
        char *argv[] = {dump, "-Fc", "--no-password", "-h", (char *)cfg->db_host, "-p", port,
                        "-U", (char *)cfg->db_user, "-d", (char *)cfg->db_name, NULL};
        if(spawn(argv, env, 0, 1, &c, jc->err, sizeof(jc->err)))
            goto out;
    }
    if(sink_upload_begin(k, key, &up, jc->err, sizeof(jc->err)))
        goto out;
    for(;;) {
        ssize_t r = read(c.out, buf, CHUNK);
        if(r < 0 && errno == EINTR)
            continue;
        if(r < 0) {
            snprintf(jc->err, sizeof(jc->err), "reading pg_dump: %s", strerror(errno));
            goto out;
        }
        if(r == 0)
            break;
        if(sink_upload_write(up, buf, (size_t)r, jc->err, sizeof(jc->err)))
            goto out;
        if(job_should_stop(jc)) {
            snprintf(jc->err, sizeof(jc->err), "stopped");
            goto out;
        }
    }
    {
        char msg[512];
        int st = finish(&c, msg, sizeof(msg));
        if(st != 0) {
            snprintf(jc->err, sizeof(jc->err), "pg_dump exited %d: %.400s", st, msg);
            goto out;
        }
    }
    {
        int rc = sink_upload_finish(up, &ur, jc->err, sizeof(jc->err));
        up = NULL;
        if(rc)
            goto out;
        have_ur = 1;
    }
    if(sink_verify(k, key, &ur, cfg->archive_verify_download, how, jc->err, sizeof(jc->err)))
        goto out;
    {
        /* The stored dump must also read back as an archive pg_restore knows. */
        char *argv[] = {restore, "--list", NULL};
        if(pipe_object(k, key, argv, env, jc->err, sizeof(jc->err)))
            goto out;
    }
    {
        struct keys ks;
        char e[256];
        if(list_backups(k, &ks, e, sizeof(e)) == 0) {
            for(int i = 0; i + cfg->backup_keep < ks.n; i++)
                if(k->ops->del(k, ks.k[i], e, sizeof(e)) == 0)
                    deleted++;
                else
                    LOG_W("backup", "old backup not deleted", LS("key", ks.k[i]), LS("error", e));
        }
        free(ks.k);
    }
    LOG_I("backup", "backup stored and verified", LS("key", key), LI("bytes", ur.bytes),
          LS("md5", ur.md5), LI("deleted_old", deleted));
    o = JOB_OK;
out:
    sink_upload_abort(up);
    if(c.pid > 0) {
        kill(c.pid, SIGTERM);
        finish(&c, NULL, 0);
    }
    if(k)
        log_backup(jc->pg, key, k->ops->name, have_ur ? &ur : NULL, o == JOB_OK ? "ok" : "failed",
                   o == JOB_OK ? NULL : jc->err);
    snprintf(jc->detail, sizeof(jc->detail),
             "{\"key\":\"%s\",\"bytes\":%" PRId64 ",\"md5\":\"%s\",\"deleted_old\":%d}", key,
             have_ur ? ur.bytes : 0, have_ur ? ur.md5 : "", deleted);
    sink_free(k);
    free(env);
    free(buf);
    memset(pw, 0, sizeof(pw));
    return o;
}

/* TimescaleDB's documented restore: the target database gets the
 * extension and timescaledb_pre_restore() before pg_restore, and
 * timescaledb_post_restore() after; without them pg_restore fails on the
 * chunks' indexes. Only where the server preloads the extension (a native
 * server restores a dump of native partitions as it is). Returns 1 when the
 * target was put in restoring mode, 0 when not needed, or MCS_EDB. */
static int ts_restore_step(const struct mcs_config *cfg, const char *dbname, int post,
                           char *err, size_t errn)
{
    struct mcs_config *c = malloc(sizeof(*c));
    PGconn *pg = NULL;
    PGresult *r = NULL;
    int rc = MCS_EDB;
    if(!c)
        return MCS_ENOMEM;
    *c = *cfg;
    snprintf(c->db_name, sizeof(c->db_name), "%s", dbname);
    if(!(pg = mcs_pg_connect(c, "mcs-restore", err, errn)))
        goto out;
    r = mcs_pg_query(pg,
                     "SELECT current_setting('shared_preload_libraries')"
                     " ~ '(^|[\\s,\"])timescaledb($|[\\s,\"])'",
                     0, NULL, PGRES_TUPLES_OK, err, errn);
    if(!r)
        goto out;
    if(PQgetvalue(r, 0, 0)[0] != 't') {
        rc = 0;
        goto out;
    }
    if(mcs_pg_exec(pg,
                   post ? "SELECT timescaledb_post_restore()"
                        : "CREATE EXTENSION IF NOT EXISTS timescaledb;"
                          " SELECT timescaledb_pre_restore()",
                   err, errn))
        goto out;
    rc = 1;
out:
    PQclear(r);
    if(pg)
        PQfinish(pg);
    free(c);
    return rc;
}

int backup_restore(const struct mcs_config *cfg, const char *key, const char *dbname,
                   char *err, size_t errn)
{
    char restore[300], port[16], pw[300], real[600];
    struct mcs_sink *k = NULL;
    char **env = NULL;
    /* The storage settings live in the configured database; on a bare host
     * without it the restore still works from the .env values. */
    PGconn *pg = mcs_pg_connect(cfg, "mcs-restore", err, errn);
    if(!pg)
        LOG_W("backup", "database unreachable: storage settings from .env only", LS("error", err));
    int rc = storage_sink_open(cfg, pg, NULL, &k, err, errn);
    if(pg)
        PQfinish(pg);
    if(rc)
        return rc;
    if(!strcmp(key, "latest")) {
        if((rc = backup_latest(k, real, sizeof(real), err, errn)))
            goto out;
    }
    else
        snprintf(real, sizeof(real), "%s", key);
    tool_path(cfg, "pg_restore", restore, sizeof(restore));
    snprintf(port, sizeof(port), "%d", cfg->db_port);
    env = child_env(cfg, pw, sizeof(pw));
    if(!env) {
        rc = MCS_ENOMEM;
        goto out;
    }
    int ts = ts_restore_step(cfg, dbname, 0, err, errn);
    if(ts < 0) {
        rc = ts;
        goto out;
    }
    {
        char *argv[] = {restore, "--no-password", "--no-owner", "--exit-on-error", "-h",
                        (char *)cfg->db_host, "-p", port, "-U", (char *)cfg->db_user, "-d",
                        (char *)dbname, NULL};
        rc = pipe_object(k, real, argv, env, err, errn);
    }
    if(ts == 1) {
        /* Out of restoring mode whatever pg_restore did. */
        char e2[256];
        int prc = ts_restore_step(cfg, dbname, 1, e2, sizeof(e2));
        if(prc < 0 && !rc) {
            snprintf(err, errn, "timescaledb_post_restore: %s", e2);
            rc = prc;
        }
    }
    if(!rc)
        LOG_I("backup", "restored", LS("key", real), LS("dbname", dbname));
out:
    free(env);
    memset(pw, 0, sizeof(pw));
    sink_free(k);
    return rc;
}
