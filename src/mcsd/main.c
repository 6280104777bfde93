/* main.c - mcsd, the MCS-IoT server daemon: configuration, schema, then the
 * three threads of the ingest spine (ingest → journal → store, plus devsync),
 * and an orderly stop on SIGTERM/SIGINT.
 * Owns the struct mcsd context. Thread: main (signals are waited for here;
 * all other threads block them). */
#include "conn.h"
#include "devsync.h"
#include "err.h"
#include "ingest.h"
#include "liccheck.h" /* issue #17 */
#include "licguard.h"
#include <pthread.h>
#include "log.h"
#include "mcsd.h"
#include "migrate.h"
#include "scheduler.h" /* issue #10 */
#include "notify.h" /* alarms (#7) */
#include "store.h"
#include "timeutil.h"

#include <mosquitto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#define STOP_BUDGET_MS 12000

static void usage(void)
{
    fprintf(stderr,
            "usage: mcsd [--env-file FILE] [--set NAME=VALUE]... [--check-config] [--migrate]\n"
            "            [--decommission]\n"
            "  Configuration comes from .env, the environment and --set (see docs/OPERATIONS.md).\n"
            "  --decommission: take what the broker queued for this INSTANCE_ID, store it,\n"
            "  then end the broker session so the group no longer routes messages here.\n");
}

/* Waits up to ms for SIGTERM/SIGINT (blocked in every thread, taken here).
 * Returns the signal, or 0 when the time passed. SIGHUP is ignored. */
static int wait_signal(const sigset_t *set, int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    for(;;) {
        int sig = sigtimedwait(set, NULL, &ts);
        if(sig == SIGHUP) {
            LOG_I("main", "SIGHUP ignored: restart to change configuration");
            continue;
        }
        return sig > 0 ? sig : 0;
    }
}

/* Connects and applies migrations, retrying while the database is not up
 * (containers start in any order) unless once is set; a stop signal ends
 * the retries (*stopped set). */
static int run_migrations(const struct mcs_config *cfg, int once, const sigset_t *set,
                          int *stopped)
{
    char err[512];
    for(;;) {
        PGconn *pg = mcs_pg_connect(cfg, "mcsd-migrate", err, sizeof(err));
        if(pg) {
            int rc = migrate_apply(pg);
            PQfinish(pg);
            return rc;
        }
        LOG_W("main", "database unavailable", LS("error", err));
        if(once || (set && wait_signal(set, 2000))) {
            if(stopped)
                *stopped = !once;
            return MCS_EDB;
        }
    }
}

/* mkdir -p of the spool directory, then its absolute path (a relative
 * SPOOL_DIR would follow the working directory of whoever starts mcsd). */
static int spool_path(const char *dir, char *out, size_t n)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for(char *p = tmp + 1; *p; p++)
        if(*p == '/') {
            *p = '\0';
            if(mkdir(tmp, 0750) != 0 && errno != EEXIST)
                return MCS_EIO;
            *p = '/';
        }
    if(mkdir(tmp, 0750) != 0 && errno != EEXIST)
        return MCS_EIO;
    char *abs = realpath(tmp, NULL);
    if(!abs)
        return MCS_EIO;
    snprintf(out, n, "%s", abs);
    free(abs);
    return 0;
}

/* The license watch (issue #17): the license file is evaluated at start and
 * every LICWATCH_MS, so an installed file takes effect without a restart.
 * Locked, the store keeps deciding alarms but stores no readings. Every
 * LICMARK_MS the watch moves the high-water mark of time seen on by the
 * monotonic time that passed, so a clock turned back buys no grace. A new
 * license (or the start) asks the check thread for an online check. */
#define LICWATCH_MS 2000
#define LICMARK_MS 60000

struct licwatch {
    struct mcsd *d;
    int last_state;
    char license_id[LIC_VALUE_MAX + 1];
    int64_t mark_mono, mark_now;
    pthread_t th;
    int th_started;
    _Atomic int want_check;
};

struct mark {
    const struct mcs_config *cfg;
    const char *license_id;
    int64_t now, passed;
};

static int advance_mark(struct lic_record *r, int loaded, void *arg)
{
    const struct mark *m = arg;
    int64_t hwm;
    licguard_record_for(m->cfg, r, loaded, m->license_id, m->now);
    hwm = r->hwm + m->passed > m->now ? r->hwm + m->passed : m->now;
    r->hwm = hwm > r->hwm ? hwm : r->hwm;
    return 0;
}

/* The online check at start and after a new license is installed (the
 * daily one is the scheduler's license job). */
static void *check_main(void *arg)
{
    struct licwatch *w = arg;
    char msg[400];
    while(!atomic_load(&w->d->stopping)) {
        if(!atomic_exchange(&w->want_check, 0)) {
            mcs_sleep_ms(200);
            continue;
        }
        enum liccheck_outcome o = liccheck_run(w->d->cfg, &w->d->stopping, msg, sizeof(msg));
        if(o == LICCHECK_OK)
            LOG_I("license", "online license check", LS("result", "ok"));
        else if(o != LICCHECK_NO_LICENSE)
            LOG_W("license", "online license check",
                  LS("result", o == LICCHECK_REJECTED ? "rejected" : "failed"), LS("reason", msg));
    }
    return NULL;
}

static void licwatch(struct licwatch *w)
{
    struct mcsd *d = w->d;
    struct lic_view v;
    int64_t now = licguard_now(), mono = mcs_mono_ms();

    licguard_eval(d->cfg, now, &v);
    if(v.have_license && (strcmp(w->license_id, v.lic.id) != 0 || !w->mark_mono ||
                          mono - w->mark_mono >= LICMARK_MS)) {
        struct mark m = {d->cfg, v.lic.id, now, w->mark_mono ? (mono - w->mark_mono) / 1000 : 0};
        if(licguard_state_update(d->cfg, advance_mark, &m) != 0)
            LOG_W("license", "license.state not written");
        w->mark_mono = mono;
        if(strcmp(w->license_id, v.lic.id) != 0) {
            snprintf(w->license_id, sizeof(w->license_id), "%s", v.lic.id);
            atomic_store(&w->want_check, 1);
        }
        licguard_eval(d->cfg, now, &v);
    }
    atomic_store(&d->licensed, licguard_running(&v));
    if((int)v.state == w->last_state)
        return;
    w->last_state = (int)v.state;
    if(licguard_running(&v))
        LOG_I("license", "license state", LS("state", licguard_state_name(v.state)),
              LS("customer", v.lic.customer), LS("expires", v.lic.expires),
              LI("max_devices", v.lic.max_devices));
    else
        LOG_E("license",
              "license not valid: telemetry is not stored; gas alarms are still evaluated and "
              "notified",
              LS("state", licguard_state_name(v.state)), LI("code", v.code),
              LS("reason", v.reason));
}

int main(int argc, char **argv)
{
    struct mcs_config cfg;
    struct mcsd *d = NULL;
    struct mcs_ingest *in = NULL;
    struct mcs_store *st = NULL;
    struct mcs_devsync *ds = NULL;
    struct mcs_sched *sc = NULL; /* issue #10 */
    struct mcs_notify *nt = NULL; /* alarms (#7) */
    int check = 0, migrate_only = 0, decommission = 0, rc = 1, sig = 0;
    int64_t lic_next = 0;
    static struct licwatch lw;
    sigset_t set;

    if(mcs_config_load(&cfg, &argc, argv)) {
        fprintf(stderr, "mcsd: invalid configuration (see above)\n");
        return 2;
    }
    for(int i = 1; i < argc; i++) {
        if(!strcmp(argv[i], "--check-config"))
            check = 1;
        else if(!strcmp(argv[i], "--migrate"))
            migrate_only = 1;
        else if(!strcmp(argv[i], "--decommission"))
            decommission = 1;
        else {
            fprintf(stderr, "mcsd: unknown argument '%s'\n", argv[i]);
            usage();
            return 2;
        }
    }
    if(check) {
        char err[512];
        mcs_config_print(&cfg);
        if(cfg.alarms_enabled) {
            int crc = notify_check_secrets(&cfg, err, sizeof(err));
            if(crc == MCS_EINVAL) {
                fprintf(stderr, "mcsd: %s\n", err);
                return 2;
            }
            if(crc)
                fprintf(stderr, "mcsd: alarm channels not checked (%s)\n", err);
        }
        fprintf(stderr, "mcsd: configuration is valid\n");
        return 0;
    }
    if(migrate_only)
        return run_migrations(&cfg, 1, NULL, NULL) ? 1 : 0;

    /* Signals are taken synchronously by sigwait in this thread only. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if(spool_path(cfg.spool_dir, cfg.spool_dir, sizeof(cfg.spool_dir))) {
        LOG_E("main", "cannot create the spool directory", LS("spool", cfg.spool_dir),
              LS("error", strerror(errno)));
        return 1;
    }
    LOG_I("main", "starting", LS("instance", cfg.instance_id), LS("spool", cfg.spool_dir));
    {
        int stopped = 0;
        if(run_migrations(&cfg, 0, &set, &stopped)) {
            if(stopped)
                LOG_I("main", "stopped before the database was reachable");
            return stopped ? 0 : 1;
        }
    }
    mosquitto_lib_init();
    d = calloc(1, sizeof(*d));
    if(!d)
        goto out;
    d->cfg = &cfg;
    metrics_init(&d->metrics);
    for(int i = 0; i < MCS_REJ_COUNT; i++)
        mcs_ratelimit_init(&d->reject_rl[i], 10, 1000);
    if(registry_init(&d->reg))
        goto out;
    if(cmdres_init(&d->cmdres, 10000))
        goto out;
    if(journal_open(&d->journal, cfg.spool_dir, (int64_t)cfg.spool_max_mb << 20))
        goto out;
    journal_set_fsync(&d->journal,
                      !strcmp(cfg.journal_fsync, "always")     ? MCS_FSYNC_ALWAYS
                      : !strcmp(cfg.journal_fsync, "interval") ? MCS_FSYNC_INTERVAL
                                                               : MCS_FSYNC_OFF,
                      cfg.journal_fsync_ms);
    /* The first registry load is waited for here (ingest must not start
     * with an empty registry), a stop signal ends the wait. */
    for(;;) {
        int drc = devsync_start(d, &ds);
        if(drc == 0)
            break;
        if(drc != MCS_EAGAIN)
            goto out;
        if((sig = wait_signal(&set, 2000))) {
            LOG_I("main", "stopped before the registry could be loaded");
            rc = 0;
            goto out;
        }
    }
    lw.d = d; /* issue #17: the license state before the store writes anything */
    lw.last_state = -1;
    licwatch(&lw);
    lic_next = mcs_mono_ms() + LICWATCH_MS;
    lw.th_started = pthread_create(&lw.th, NULL, check_main, &lw) == 0;
    if(notify_start(d, &nt)) /* alarms (#7): makes d->alarm, before the store */
        goto out;
    if(store_start(d, &st))
        goto out;
    if(ingest_start(d, &in))
        goto out;
    if(cfg.sched_enabled && sched_start(&cfg, &sc)) /* issue #10 */
        goto out;

    {
        /* Decommissioning ends once the queued messages have stopped coming
         * (3 s without one after the subscription is up). */
        uint64_t last = 0;
        int64_t quiet_since = mcs_mono_ms();
        for(;;) {
            if((sig = wait_signal(&set, 500)))
                break;
            if(mcs_mono_ms() >= lic_next) {
                licwatch(&lw);
                lic_next = mcs_mono_ms() + LICWATCH_MS;
            }
            if(!decommission)
                continue;
            uint64_t now_recv = atomic_load(&d->metrics.received);
            if(now_recv != last || !atomic_load(&d->metrics.mqtt_connected)) {
                last = now_recv;
                quiet_since = mcs_mono_ms();
            }
            else if(mcs_mono_ms() - quiet_since >= 3000) {
                LOG_I("main", "decommission: queue drained, leaving the group",
                      LI("received", (long long)now_recv));
                break;
            }
        }
    }
    LOG_I("main", "stopping", LI("signal", sig > 0 ? sig : 0));
    rc = 0;
out:
    if(d) {
        /* Stopped within STOP_BUDGET_MS whatever the state (a service
         * manager kills at 15 s): ingest first (no more appends), then the
         * store drains what it can; a thread stuck in a blocking connect or
         * statement is left behind and the process exits (the journal keeps
         * every record; the database rolls back an unfinished batch). */
        int64_t deadline = mcs_mono_ms() + STOP_BUDGET_MS;
        int left = 0;
        atomic_store(&d->stopping, 1);
        left |= sched_stop(sc, mcs_mono_ms() + 3000) != 0; /* issue #10 */
        left |= ingest_stop(in, decommission, mcs_mono_ms() + 3000) != 0;
        atomic_store(&d->ingest_done, 1);
        left |= store_join(st, deadline) != 0;
        if(!left) /* alarms (#7): after the store, which uses d->alarm */
            left |= notify_stop(nt, deadline) != 0;
        left |= devsync_stop(ds, deadline) != 0;
        if(lw.th_started) /* its request gives up on d->stopping */
            pthread_join(lw.th, NULL);
        if(left) {
            LOG_W("main", "stopped with a thread still blocked; exiting anyway");
            fflush(NULL);
            _exit(rc ? 1 : 0);
        }
        if(d->journal.dir[0])
            journal_close(&d->journal);
        registry_cleanup(&d->reg);
        cmdres_cleanup(&d->cmdres);
        free(d);
    }
    mosquitto_lib_cleanup();
    if(rc)
        LOG_E("main", "start-up failed");
    else
        LOG_I("main", "stopped");
    return rc;
}
