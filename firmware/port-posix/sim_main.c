/* sim_main.c - mcs-sim: options, scenarios, the scheduler of many firmware
 * cores on one epoll loop, control lines on stdin and the counters it
 * writes (sim.h; docs/FIRMWARE.md). Owns the process: every device, the
 * epoll set, the shared TLS context. Thread: one. */
#include "numparse.h"
#include "sim.h"
#include "sim_tls.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define SCEN_MAX 256
#define CTRL_LINE 256

/* The signal flags are the only mutable globals: a handler has nowhere
 * else to write. */
static volatile sig_atomic_t g_stop, g_dump;

enum scen_kind { SC_LEAK, SC_OFFLINE, SC_HANG };

/* One scripted event: devices [lo, hi] at t seconds for dur seconds. */
struct scen {
    enum scen_kind kind;
    long lo, hi;
    double t, dur, peak;
    int done;
};

/* Min-heap of (due, device); entries whose due no longer matches the
 * device's are stale and skipped. */
struct hent {
    int64_t due;
    long dev;
};

struct heap {
    struct hent *v;
    size_t n, cap;
};

struct app {
    struct sim s;
    struct scen sc[SCEN_MAX];
    int nsc;
    struct heap h;
    char ctrl[CTRL_LINE * 4];
    size_t ctrl_len;
    int ctrl_eof;
};

static void on_signal(int sig)
{
    if(sig == SIGUSR1)
        g_dump = 1;
    else
        g_stop = 1;
}

/* ---- heap ------------------------------------------------------------- */

static int heap_push(struct heap *h, int64_t due, long dev)
{
    size_t i;

    if(h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        struct hent *v = realloc(h->v, cap * sizeof(*v));
        if(!v)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    i = h->n++;
    while(i > 0 && h->v[(i - 1) / 2].due > due) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i].due = due;
    h->v[i].dev = dev;
    return 0;
}

static struct hent heap_pop(struct heap *h)
{
    struct hent top = h->v[0], last = h->v[--h->n];
    size_t i = 0, c;

    while((c = 2 * i + 1) < h->n) {
        if(c + 1 < h->n && h->v[c + 1].due < h->v[c].due)
            c++;
        if(h->v[c].due >= last.due)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if(h->n)
        h->v[i] = last;
    return top;
}

/* ---- options and scenarios -------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mcs-sim --host H --port P --devices N [options]\n"
            "  --cafile F            TLS (1.2+) with this CA; one context for all devices\n"
            "  --vendor-secret S     R-MQ-6 passwords (S = @env: $VENDOR_SECRET)\n"
            "  --sn-prefix P         serial numbers P + 6 digits (SIM)\n"
            "  --sn-start I          first index (0)\n"
            "  --topic-prefix T      topic prefix (mcs)\n"
            "  --interval S          default reporting interval, seconds (10)\n"
            "  --duration S          stop after S seconds (0: on SIGINT/SIGTERM)\n"
            "  --connect-rate R      first connections per second (200)\n"
            "  --reconnect-min-ms M  first reconnect wait after a loss (2000)\n"
            "  --reconnect-max-ms M  longest reconnect wait (60000)\n"
            "  --leak D@T+DUR[:MV]   gas release on devices D (index, A-B, sn or all) from\n"
            "                        T s for DUR s rising MV mV over the zero (1.2 x level 2)\n"
            "  --offline D@T+DUR     link loss of devices D from T s for DUR s\n"
            "  --hang D@T+DUR        main loop of D stuck (watchdog reset after 30 s)\n"
            "  --leaks-per-hour X    random releases per device per hour (0.05)\n"
            "  --link-loss-per-hour X  random link losses per device per hour (0)\n"
            "  --link-loss-max S     longest random link loss, seconds (300)\n"
            "  --level1-mv V --level2-mv V  alarm levels the releases aim past (1100, 2100)\n"
            "  --battery-per-hour X  battery discharge, %% per hour (0.5)\n"
            "  --ota-size N          bytes of the image served for an OTA command (65536)\n"
            "  --ota-md5 URL         print the MD5 of the image served for URL and exit\n"
            "  --stats FILE          counters as JSON, written on SIGUSR1, 'stats' and exit\n"
            "  --control             read control lines from stdin: offline D S | leak D S [MV]\n"
            "                        | hang D S | stats | quit\n"
            "  --seed N --quiet\n");
}

/* "3", "2-5", "all" or a serial number -> [lo, hi]. */
static int parse_devs(struct app *a, const char *s, size_t n, long *lo, long *hi)
{
    char buf[64];
    char *dash, *end;
    long i;

    if(n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if(!strcmp(buf, "all")) {
        *lo = 0;
        *hi = a->s.o.devices - 1;
        return 0;
    }
    for(i = 0; i < a->s.o.devices; i++) {
        if(!strcmp(buf, a->s.devs[i].id.sn)) {
            *lo = *hi = i;
            return 0;
        }
    }
    errno = 0;
    *lo = strtol(buf, &end, 10);
    if(end == buf || errno)
        return -1;
    *hi = *lo;
    dash = end;
    if(*dash == '-') {
        *hi = strtol(dash + 1, &end, 10);
        if(end == dash + 1 || errno)
            return -1;
    }
    if(*end || *lo < 0 || *hi < *lo || *hi >= a->s.o.devices)
        return -1;
    return 0;
}

/* "D@T+DUR[:MV]" */
static int parse_scen(struct app *a, enum scen_kind k, const char *arg)
{
    struct scen *sc;
    const char *at = strchr(arg, '@'), *plus, *colon;
    char num[32];
    size_t n;

    if(a->nsc >= SCEN_MAX || !at || !(plus = strchr(at, '+')))
        return -1;
    sc = &a->sc[a->nsc];
    memset(sc, 0, sizeof(*sc));
    sc->kind = k;
    if(parse_devs(a, arg, (size_t)(at - arg), &sc->lo, &sc->hi))
        return -1;
    n = (size_t)(plus - at - 1);
    if(n == 0 || n >= sizeof(num))
        return -1;
    memcpy(num, at + 1, n);
    num[n] = '\0';
    if(mcs_parse_double(num, 0, 1e7, &sc->t))
        return -1;
    colon = strchr(plus, ':');
    n = colon ? (size_t)(colon - plus - 1) : strlen(plus + 1);
    if(n == 0 || n >= sizeof(num))
        return -1;
    memcpy(num, plus + 1, n);
    num[n] = '\0';
    if(mcs_parse_double(num, 0.001, 1e7, &sc->dur))
        return -1;
    if(colon && (k != SC_LEAK || mcs_parse_double(colon + 1, 1, 1e5, &sc->peak)))
        return -1;
    a->nsc++;
    return 0;
}

/* Scenario arguments are parsed after the devices exist (they may name
 * serial numbers): kept here until then. */
struct pending {
    enum scen_kind k;
    const char *arg;
};

static int parse_opts(int argc, char **argv, struct app *a, struct pending *pend, int *npend)
{
    enum {
        O_HOST = 1000,
        O_PORT,
        O_CAFILE,
        O_VSECRET,
        O_SNPREFIX,
        O_SNSTART,
        O_TOPIC,
        O_DEVICES,
        O_INTERVAL,
        O_DURATION,
        O_CRATE,
        O_RMIN,
        O_RMAX,
        O_LEAK,
        O_OFFLINE,
        O_HANG,
        O_LPH,
        O_LLPH,
        O_LLMAX,
        O_L1,
        O_L2,
        O_BAT,
        O_OTASIZE,
        O_OTAMD5,
        O_STATS,
        O_CONTROL,
        O_SEED,
        O_QUIET,
        O_HELP
    };
    static const struct option lo[] = {
        {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},
        {"cafile", required_argument, 0, O_CAFILE},
        {"vendor-secret", required_argument, 0, O_VSECRET},
        {"sn-prefix", required_argument, 0, O_SNPREFIX},
        {"sn-start", required_argument, 0, O_SNSTART},
        {"topic-prefix", required_argument, 0, O_TOPIC},
        {"devices", required_argument, 0, O_DEVICES},
        {"interval", required_argument, 0, O_INTERVAL},
        {"duration", required_argument, 0, O_DURATION},
        {"connect-rate", required_argument, 0, O_CRATE},
        {"reconnect-min-ms", required_argument, 0, O_RMIN},
        {"reconnect-max-ms", required_argument, 0, O_RMAX},
        {"leak", required_argument, 0, O_LEAK},
        {"offline", required_argument, 0, O_OFFLINE},
        {"hang", required_argument, 0, O_HANG},
        {"leaks-per-hour", required_argument, 0, O_LPH},
        {"link-loss-per-hour", required_argument, 0, O_LLPH},
        {"link-loss-max", required_argument, 0, O_LLMAX},
        {"level1-mv", required_argument, 0, O_L1},
        {"level2-mv", required_argument, 0, O_L2},
        {"battery-per-hour", required_argument, 0, O_BAT},
        {"ota-size", required_argument, 0, O_OTASIZE},
        {"ota-md5", required_argument, 0, O_OTAMD5},
        {"stats", required_argument, 0, O_STATS},
        {"control", no_argument, 0, O_CONTROL},
        {"seed", required_argument, 0, O_SEED},
        {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    struct sim_opts *o = &a->s.o;
    struct sim_model_opts *mo = &a->s.mo;
    const char *ota_url = NULL;
    long v;
    int c;

    o->host = "127.0.0.1";
    o->port = 1883;
    o->sn_prefix = "SIM";
    o->topic_prefix = "mcs";
    o->devices = 10;
    o->interval_s = 10;
    o->connect_rate = 200;
    o->reconnect_min_ms = 2000;
    o->reconnect_max_ms = 60000;
    o->link_loss_max_s = 300;
    o->ota_size = 65536;
    o->seed = 1;
    mo->level1_mv = 1100;
    mo->level2_mv = 2100;
    mo->leaks_per_hour = 0.05;
    mo->bat_per_hour = 0.5;
    while((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        double *dp = NULL, dlo = 0, dhi = 1e9;
        long *lp = NULL, llo = 0, lhi = 0;
        switch(c) {
        case O_HOST:
            o->host = optarg;
            break;
        case O_PORT:
            if(mcs_parse_long(optarg, 1, 65535, &v))
                goto bad;
            o->port = (int)v;
            break;
        case O_CAFILE:
            o->cafile = optarg;
            break;
        case O_VSECRET:
            o->vendor_secret = strcmp(optarg, "@env") ? optarg : getenv("VENDOR_SECRET");
            if(!o->vendor_secret || !o->vendor_secret[0]) {
                fprintf(stderr, "mcs-sim: --vendor-secret @env but VENDOR_SECRET is unset\n");
                return -1;
            }
            break;
        case O_SNPREFIX:
            o->sn_prefix = optarg;
            break;
        case O_SNSTART:
            lp = &o->sn_start;
            llo = 0;
            lhi = 99999999;
            break;
        case O_TOPIC:
            o->topic_prefix = optarg;
            break;
        case O_DEVICES:
            lp = &o->devices;
            llo = 1;
            lhi = 1000000;
            break;
        case O_INTERVAL:
            dp = &o->interval_s;
            dlo = 1;
            dhi = 3600;
            break;
        case O_DURATION:
            dp = &o->duration_s;
            break;
        case O_CRATE:
            dp = &o->connect_rate;
            dlo = 1;
            dhi = 1e6;
            break;
        case O_RMIN:
            lp = &o->reconnect_min_ms;
            llo = 10;
            lhi = 3600000;
            break;
        case O_RMAX:
            lp = &o->reconnect_max_ms;
            llo = 10;
            lhi = 3600000;
            break;
        case O_LEAK:
            pend[(*npend)++] = (struct pending){SC_LEAK, optarg};
            break;
        case O_OFFLINE:
            pend[(*npend)++] = (struct pending){SC_OFFLINE, optarg};
            break;
        case O_HANG:
            pend[(*npend)++] = (struct pending){SC_HANG, optarg};
            break;
        case O_LPH:
            dp = &mo->leaks_per_hour;
            dhi = 3600;
            break;
        case O_LLPH:
            dp = &o->link_loss_per_hour;
            dhi = 3600;
            break;
        case O_LLMAX:
            dp = &o->link_loss_max_s;
            dlo = 1;
            dhi = 86400;
            break;
        case O_L1:
            dp = &mo->level1_mv;
            dlo = 1;
            dhi = 1e5;
            break;
        case O_L2:
            dp = &mo->level2_mv;
            dlo = 1;
            dhi = 1e5;
            break;
        case O_BAT:
            dp = &mo->bat_per_hour;
            dhi = 100;
            break;
        case O_OTASIZE:
            lp = &o->ota_size;
            llo = 1;
            lhi = (long)FW_OTA_MAX * 2;
            break;
        case O_OTAMD5:
            ota_url = optarg;
            break;
        case O_STATS:
            o->stats_file = optarg;
            break;
        case O_CONTROL:
            o->control = 1;
            break;
        case O_SEED:
            if(mcs_parse_long(optarg, 0, 0xffffffffL, &v))
                goto bad;
            o->seed = (unsigned)v;
            break;
        case O_QUIET:
            o->quiet = 1;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
        if(dp && mcs_parse_double(optarg, dlo, dhi, dp))
            goto bad;
        if(lp && mcs_parse_long(optarg, llo, lhi, lp))
            goto bad;
        if(*npend >= SCEN_MAX) {
            fprintf(stderr, "mcs-sim: too many scenario options\n");
            return -1;
        }
        continue;
    bad:
        fprintf(stderr, "mcs-sim: bad value '%s' for --%s\n", optarg, lo[c - O_HOST].name);
        return -1;
    }
    if(ota_url) {
        char md5[33];
        sim_ota_md5(ota_url, o->ota_size, md5);
        printf("%s\n", md5);
        exit(0);
    }
    if(optind < argc) {
        fprintf(stderr, "mcs-sim: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if(strlen(o->sn_prefix) > 26 || strlen(o->topic_prefix) > 16) {
        fprintf(stderr, "mcs-sim: --sn-prefix or --topic-prefix too long\n");
        return -1;
    }
    if(o->reconnect_max_ms < o->reconnect_min_ms)
        o->reconnect_max_ms = o->reconnect_min_ms;
    return 0;
}

/* ---- counters --------------------------------------------------------- */

static cJSON *dev_json(const struct sim_dev *d)
{
    const struct fw_stats *st = &d->fw.st;
    cJSON *j = cJSON_CreateObject();

    cJSON_AddStringToObject(j, "sn", d->id.sn);
    cJSON_AddStringToObject(j, "state", d->boot_at_ms ? "rebooting" : fw_state_name(d->fw.state));
    cJSON_AddNumberToObject(j, "interval_ms", fw_interval_ms(&d->fw));
    cJSON_AddNumberToObject(j, "seq_next", d->fw.seq);
    cJSON_AddStringToObject(j, "ver", d->id.ver);
    cJSON_AddNumberToObject(j, "samples", st->samples);
    cJSON_AddNumberToObject(j, "sent_live", st->sent_live);
    cJSON_AddNumberToObject(j, "cached", st->cached);
    cJSON_AddNumberToObject(j, "sent_backlog", st->sent_backlog);
    cJSON_AddNumberToObject(j, "acked_backlog", st->acked_backlog);
    cJSON_AddNumberToObject(j, "ring", fw_ring_count(&d->fw.ring));
    cJSON_AddNumberToObject(j, "dropped_full", st->dropped_full);
    cJSON_AddNumberToObject(j, "lost", st->lost);
    cJSON_AddNumberToObject(j, "torn", st->torn);
    cJSON_AddNumberToObject(j, "cmds_ok", st->cmds_ok);
    cJSON_AddNumberToObject(j, "cmds_rejected", st->cmds_rejected);
    cJSON_AddNumberToObject(j, "connects", st->connects);
    cJSON_AddNumberToObject(j, "link_losses", st->link_losses);
    cJSON_AddNumberToObject(j, "ota_ok", st->ota_ok);
    cJSON_AddNumberToObject(j, "ota_failed", st->ota_failed);
    cJSON_AddNumberToObject(j, "boots", d->boots);
    cJSON_AddNumberToObject(j, "watchdog_resets", d->wdt_resets);
    cJSON_AddNumberToObject(j, "bytes_tx", (double)(d->tx_done + d->tx_cur));
    cJSON_AddNumberToObject(j, "bytes_rx", (double)(d->rx_done + d->rx_cur));
    cJSON_AddNumberToObject(j, "segments", (double)(d->segs_done + d->segs_cur));
    cJSON_AddNumberToObject(j, "connect_bytes", (double)d->connect_bytes);
    return j;
}

/* Every counter as one JSON document (a line when printed); NULL on OOM. */
static char *stats_json(struct app *a)
{
    static const char *sum[] = {"samples",       "sent_live",    "cached",   "sent_backlog",
                                "acked_backlog", "dropped_full", "cmds_ok",  "cmds_rejected",
                                "connects",      "link_losses",  "bytes_tx", "bytes_rx",
                                "segments"};
    cJSON *root = cJSON_CreateObject(), *devs = cJSON_CreateArray(), *tot = cJSON_CreateObject();
    double t[sizeof(sum) / sizeof(sum[0])] = {0};
    long up = 0;
    char *out;

    for(long i = 0; i < a->s.o.devices; i++) {
        cJSON *j = dev_json(&a->s.devs[i]);
        for(size_t k = 0; k < sizeof(sum) / sizeof(sum[0]); k++)
            t[k] += cJSON_GetObjectItem(j, sum[k])->valuedouble;
        up += a->s.devs[i].link == 2;
        cJSON_AddItemToArray(devs, j);
    }
    for(size_t k = 0; k < sizeof(sum) / sizeof(sum[0]); k++)
        cJSON_AddNumberToObject(tot, sum[k], t[k]);
    cJSON_AddNumberToObject(tot, "connected", (double)up);
    cJSON_AddNumberToObject(root, "t", (double)(sim_now_ms() - a->s.t0_ms) / 1000.0);
    cJSON_AddNumberToObject(root, "devices", (double)a->s.o.devices);
    cJSON_AddItemToObject(root, "total", tot);
    cJSON_AddItemToObject(root, "devs", devs);
    out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

static void write_stats(struct app *a, int to_stdout)
{
    char *js = stats_json(a), tmp[4096];
    FILE *f;

    if(!js)
        return;
    if(to_stdout) {
        printf("%s\n", js);
        fflush(stdout);
    }
    if(a->s.o.stats_file) {
        snprintf(tmp, sizeof(tmp), "%s.tmp", a->s.o.stats_file);
        f = fopen(tmp, "w");
        if(f) {
            fputs(js, f);
            fputc('\n', f);
            if(fclose(f) == 0)
                rename(tmp, a->s.o.stats_file);
        }
    }
    free(js);
}

/* ---- scenarios and control -------------------------------------------- */

static void apply(struct app *a, enum scen_kind k, long lo, long hi, double dur, double peak)
{
    for(long i = lo; i <= hi; i++) {
        struct sim_dev *d = &a->s.devs[i];
        if(k == SC_LEAK)
            sim_model_leak(&d->model, sim_dev_t(d), dur, peak);
        else if(k == SC_OFFLINE)
            sim_dev_cut(d, dur);
        else {
            sim_dev_hang(d, dur);
            heap_push(&a->h, d->due_ms, i);
        }
    }
}

static void run_scenarios(struct app *a, double t)
{
    for(int i = 0; i < a->nsc; i++) {
        struct scen *sc = &a->sc[i];
        if(!sc->done && t >= sc->t) {
            sc->done = 1;
            apply(a, sc->kind, sc->lo, sc->hi, sc->dur, sc->peak);
        }
    }
}

static void control_line(struct app *a, char *line)
{
    char verb[16], who[64];
    double secs = 0, peak = 0;
    long lo, hi;
    int n = sscanf(line, "%15s %63s %lf %lf", verb, who, &secs, &peak);

    if(n < 1)
        return;
    if(!strcmp(verb, "stats")) {
        write_stats(a, 1);
        return;
    }
    if(!strcmp(verb, "quit")) {
        g_stop = 1;
        return;
    }
    if(n < 3 || parse_devs(a, who, strlen(who), &lo, &hi) || secs <= 0) {
        printf("{\"error\":\"bad control line\"}\n");
        fflush(stdout);
        return;
    }
    if(!strcmp(verb, "offline"))
        apply(a, SC_OFFLINE, lo, hi, secs, 0);
    else if(!strcmp(verb, "leak"))
        apply(a, SC_LEAK, lo, hi, secs, n >= 4 ? peak : 0);
    else if(!strcmp(verb, "hang"))
        apply(a, SC_HANG, lo, hi, secs, 0);
    else {
        printf("{\"error\":\"unknown control verb\"}\n");
        fflush(stdout);
        return;
    }
    printf("{\"ok\":\"%s\"}\n", verb);
    fflush(stdout);
}

static void control_read(struct app *a)
{
    ssize_t n;
    char *nl;

    n = read(0, a->ctrl + a->ctrl_len, sizeof(a->ctrl) - 1 - a->ctrl_len);
    if(n <= 0) {
        if(n == 0 || (errno != EAGAIN && errno != EINTR)) {
            a->ctrl_eof = 1;
            epoll_ctl(a->s.epfd, EPOLL_CTL_DEL, 0, NULL);
        }
        return;
    }
    a->ctrl_len += (size_t)n;
    a->ctrl[a->ctrl_len] = '\0';
    while((nl = memchr(a->ctrl, '\n', a->ctrl_len))) {
        *nl = '\0';
        control_line(a, a->ctrl);
        a->ctrl_len -= (size_t)(nl + 1 - a->ctrl);
        memmove(a->ctrl, nl + 1, a->ctrl_len);
    }
    if(a->ctrl_len >= sizeof(a->ctrl) - 1)
        a->ctrl_len = 0; /* an overlong line: dropped */
}

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static struct app app;
    struct app *a = &app;
    struct sim *s = &a->s;
    struct pending *pend;
    struct epoll_event evs[256];
    struct sigaction sa;
    sigset_t block, waitmask;
    struct rlimit rl;
    int npend = 0, rc = 1, n, k;
    int64_t now, next_misc, next_report, next_loss, end_ms = 0;
    long i;

    pend = calloc(SCEN_MAX + 1, sizeof(*pend));
    if(!pend || parse_opts(argc, argv, a, pend, &npend)) {
        free(pend);
        return 2;
    }
    if(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Three descriptors per device: its socket and libmosquitto's internal
     * socket pair. */
    if(getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)s->o.devices * 3 + 64 > rl.rlim_cur)
        fprintf(stderr,
                "mcs-sim: warning: %ld devices need %ld open files, only %ld allowed "
                "(run several processes with --sn-start)\n",
                s->o.devices, s->o.devices * 3 + 64, (long)rl.rlim_cur);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Signals arrive only while the loop waits (epoll_pwait), never in the
     * middle of a connect or a write of some device. */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    mosquitto_lib_init();

    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->devs = calloc((size_t)s->o.devices, sizeof(*s->devs));
    if(s->epfd < 0 || !s->devs) {
        fprintf(stderr, "mcs-sim: out of memory\n");
        goto out;
    }
    if(s->o.cafile && !(s->tls = sim_tls_new(s->o.cafile)))
        goto out;
    s->t0_ms = sim_now_ms();
    for(i = 0; i < s->o.devices; i++) {
        if(sim_dev_setup(s, &s->devs[i], i)) {
            fprintf(stderr, "mcs-sim: bad serial number for device %ld\n", i);
            goto out;
        }
    }
    for(k = 0; k < npend; k++) {
        if(parse_scen(a, pend[k].k, pend[k].arg)) {
            fprintf(stderr, "mcs-sim: bad scenario '%s' (D@T+DUR[:MV])\n", pend[k].arg);
            goto out;
        }
    }
    /* Power-up spread over the connect rate: a fleet does not start in one
     * instant. */
    for(i = 0; i < s->o.devices; i++) {
        struct sim_dev *d = &s->devs[i];
        d->boot_at_ms = s->t0_ms + (int64_t)((double)i * 1000.0 / s->o.connect_rate);
        d->due_ms = d->boot_at_ms;
        if(heap_push(&a->h, d->due_ms, i))
            goto out;
    }
    if(s->o.control) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        if(epoll_ctl(s->epfd, EPOLL_CTL_ADD, 0, &ev) != 0) {
            fprintf(stderr, "mcs-sim: --control: stdin cannot be polled\n");
            goto out;
        }
    }
    if(!s->o.quiet)
        fprintf(stderr, "mcs-sim: %ld devices (%s%06ld...), %.0f s interval, %s:%d%s\n",
                s->o.devices, s->o.sn_prefix, s->o.sn_start, s->o.interval_s, s->o.host, s->o.port,
                s->tls ? " TLS" : "");
    if(s->o.duration_s > 0)
        end_ms = s->t0_ms + (int64_t)(s->o.duration_s * 1000.0);
    /* A first counters file: whoever waits for it knows SIGUSR1 is safe. */
    write_stats(a, 0);
    next_misc = s->t0_ms + 1000;
    next_report = s->t0_ms + 10000;
    next_loss = s->t0_ms + 1000;

    while(!g_stop && (!end_ms || sim_now_ms() < end_ms)) {
        int timeout = 100;

        now = sim_now_ms();
        /* Devices whose main loop is due. */
        while(a->h.n && a->h.v[0].due <= now) {
            struct hent e = heap_pop(&a->h);
            struct sim_dev *d = &s->devs[e.dev];
            if(e.due != d->due_ms)
                continue; /* stale */
            if(heap_push(&a->h, sim_dev_turn(d, now), e.dev))
                goto out;
        }
        if(a->h.n) {
            int64_t w = a->h.v[0].due - sim_now_ms();
            timeout = w <= 0 ? 0 : (w < 100 ? (int)w : 100);
        }
        n = epoll_pwait(s->epfd, evs, 256, timeout, &waitmask);
        if(n < 0 && errno != EINTR) {
            fprintf(stderr, "mcs-sim: epoll_wait: %s\n", strerror(errno));
            break;
        }
        now = sim_now_ms();
        for(k = 0; k < n; k++) {
            struct sim_dev *d = evs[k].data.ptr;
            if(!d) {
                control_read(a);
                continue;
            }
            sim_dev_io(d, evs[k].events);
            if(d->kicked && !d->boot_at_ms) {
                /* An event for the core (CONNACK, PUBACK, command, loss):
                 * its loop runs at once. */
                if(heap_push(&a->h, sim_dev_turn(d, now), d->idx))
                    goto out;
            }
        }
        if(now >= next_misc) {
            double t = (double)(now - s->t0_ms) / 1000.0;
            next_misc = now + 1000;
            run_scenarios(a, t);
            for(i = 0; i < s->o.devices; i++) {
                struct sim_dev *d = &s->devs[i];
                int64_t before = d->due_ms;
                sim_dev_misc(d, now);
                if(d->kicked || d->due_ms != before) {
                    d->kicked = 0;
                    if(d->due_ms == before)
                        d->due_ms = now;
                    heap_push(&a->h, d->due_ms, i);
                }
            }
        }
        if(s->o.link_loss_per_hour > 0 && now >= next_loss) {
            /* Random link losses (weak coverage, a cell outage). */
            next_loss = now + 1000;
            for(i = 0; i < s->o.devices; i++) {
                struct sim_dev *d = &s->devs[i];
                if(d->link == 2 && sim_rndf(&d->model.rng) < s->o.link_loss_per_hour / 3600.0)
                    sim_dev_cut(d, 5.0 + sim_rndf(&d->model.rng) * s->o.link_loss_max_s);
            }
        }
        if(g_dump) {
            g_dump = 0;
            write_stats(a, 0);
        }
        if(!s->o.quiet && now >= next_report) {
            long up = 0, off = 0;
            uint32_t sent = 0;
            next_report = now + 10000;
            for(i = 0; i < s->o.devices; i++) {
                up += s->devs[i].link == 2;
                off += s->devs[i].fw.state == FW_ST_OFFLINE;
                sent += s->devs[i].fw.st.sent_live + s->devs[i].fw.st.acked_backlog;
            }
            fprintf(stderr, "mcs-sim: t=%.0fs connected=%ld offline=%ld readings_sent=%u\n",
                    (double)(now - s->t0_ms) / 1000.0, up, off, sent);
        }
    }
    /* Quiet shutdown: every connected device says goodbye (no Will). */
    for(i = 0; i < s->o.devices; i++) {
        struct sim_dev *d = &s->devs[i];
        if(d->mosq && d->link == 2)
            mosquitto_disconnect(d->mosq);
    }
    write_stats(a, 0);
    rc = 0;
out:
    if(s->devs)
        for(i = 0; i < s->o.devices; i++)
            sim_dev_free(&s->devs[i]);
    free(s->devs);
    free(a->h.v);
    free(pend);
    if(s->tls)
        sim_tls_free(s->tls);
    if(s->epfd >= 0)
        close(s->epfd);
    mosquitto_lib_cleanup();
    return rc;
}
