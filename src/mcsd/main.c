/* main.c - mcsd, the MCS-IoT server daemon: configuration, schema, then the
 * three threads of the ingest spine (ingest → journal → store, plus devsync),
 * and an orderly stop on SIGTERM/SIGINT.
 * Owns the struct mcsd context. Thread: main (signals are waited for here;
 * all other threads block them). */
#include "conn.h"
#include "devsync.h"
#include "err.h"
#include "ingest.h"
#include "log.h"
#include "mcsd.h"
#include "migrate.h"
#include "notify.h" /* alarms (#7) */
#include "store.h"
#include "timeutil.h"

#include <mosquitto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(void)
{
    fprintf(stderr,
            "usage: mcsd [--env-file FILE] [--set NAME=VALUE]... [--check-config] [--migrate]\n"
            "            [--decommission]\n"
            "  Configuration comes from .env, the environment and --set (see docs/OPERATIONS.md).\n"
            "  --decommission: take what the broker queued for this INSTANCE_ID, store it,\n"
            "  then end the broker session so the group no longer routes messages here.\n");
}

/* Connects and applies migrations, retrying while the database is not up
 * (containers start in any order) unless once is set. */
static int run_migrations(const struct mcs_config *cfg, int once, volatile sig_atomic_t *stop)
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
        if(once || (stop && *stop))
            return MCS_EDB;
        mcs_sleep_ms(2000);
    }
}

int main(int argc, char **argv)
{
    struct mcs_config cfg;
    struct mcsd *d = NULL;
    struct mcs_ingest *in = NULL;
    struct mcs_store *st = NULL;
    struct mcs_devsync *ds = NULL;
    struct mcs_notify *nt = NULL; /* alarms (#7) */
    int check = 0, migrate_only = 0, decommission = 0, rc = 1, sig = 0;
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
        mcs_config_print(&cfg);
        fprintf(stderr, "mcsd: configuration is valid\n");
        return 0;
    }
    if(migrate_only)
        return run_migrations(&cfg, 1, NULL) ? 1 : 0;

    /* Signals are taken synchronously by sigwait in this thread only. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    LOG_I("main", "starting", LS("instance", cfg.instance_id), LS("spool", cfg.spool_dir));
    if(run_migrations(&cfg, 0, NULL))
        return 1;
    mosquitto_lib_init();
    d = calloc(1, sizeof(*d));
    if(!d)
        goto out;
    d->cfg = &cfg;
    metrics_init(&d->metrics);
    mcs_ratelimit_init(&d->reject_rl, 20, 1000);
    if(registry_init(&d->reg))
        goto out;
    if(journal_open(&d->journal, cfg.spool_dir, (int64_t)cfg.spool_max_mb << 20))
        goto out;
    if(devsync_start(d, &ds))
        goto out;
    if(notify_start(d, &nt)) /* alarms (#7): makes d->alarm, before the store */
        goto out;
    if(store_start(d, &st))
        goto out;
    if(ingest_start(d, &in))
        goto out;

    {
        /* Decommissioning ends once the queued messages have stopped coming
         * (3 s without one after the subscription is up). */
        uint64_t last = 0;
        int64_t quiet_since = mcs_mono_ms();
        struct timespec tick = {0, 500 * 1000000L};
        for(;;) {
            sig = sigtimedwait(&set, NULL, &tick);
            if(sig == SIGHUP) {
                LOG_I("main", "SIGHUP ignored: restart to change configuration");
                continue;
            }
            if(sig > 0)
                break;
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
        atomic_store(&d->stopping, 1);
        ingest_stop(in, decommission);
        atomic_store(&d->ingest_done, 1);
        store_join(st);
        notify_stop(nt); /* alarms (#7): after the store, which uses d->alarm */
        devsync_stop(ds);
        if(d->journal.dir[0])
            journal_close(&d->journal);
        registry_cleanup(&d->reg);
        free(d);
    }
    mosquitto_lib_cleanup();
    if(rc)
        LOG_E("main", "start-up failed");
    else
        LOG_I("main", "stopped");
    return rc;
}
