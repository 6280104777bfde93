/* loadgen.c - mcs-loadgen: many MQTT v5 device connections from one process.
 * Owns its connections, the simulated device states and the figures it prints
 * (stdout: `name: value` lines; diagnostics on stderr). Touches no project
 * service other than the broker it is pointed at. Thread: one; our own epoll
 * loop drives unthreaded libmosquitto clients (no thread per connection).
 *
 * Two modes:
 *  - bench (default): publish as fast as the broker takes it (--rate 0) or
 *    token-bucket paced at --rate msg/s in total, for --duration or --count.
 *  - realistic (--interval S): each device reports every S seconds with its
 *    own phase, with noise, drift, gas events, battery drain, weak signal and
 *    dropouts (seq gaps). `make demo` uses it as the simulated fleet (R-FW-2).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "devcred.h"
#include "mqepoll.h"
#include "numparse.h"
#include "timeutil.h"

#define SN_MAX 33
#define TOPIC_MAX 160
#define PAYLOAD_MAX 320
#define BATCH 64      /* messages per connection per turn at full speed */
#define TURN_MAX 8192 /* messages per turn at full speed, all connections */
#define KEEPALIVE_S 60
#define RECONNECT_MS 1000
#define CONNECT_WAIT_MS 15000
#define DRAIN_WAIT_MS 10000
#define TRACE_MAX 1000000 /* --trace-file samples kept at most */

/* The signal flag is the one piece of mutable global state here: a signal
 * handler has nowhere else to write. */
static volatile sig_atomic_t g_stop;

struct opts {
    const char *host;
    int port;
    const char *cafile;
    const char *user;
    const char *pass;
    const char *vendor_secret; /* when set, conn user = device_{sn} (R-MQ-6) */
    const char *sn_prefix;
    const char *topic_prefix;
    const char *client_prefix;
    long sn_start;
    long devices;
    long conns;
    double rate;     /* total msg/s; 0 = as fast as possible */
    double duration; /* seconds; 0 = unbounded by time */
    long count;      /* total messages; 0 = unbounded by count */
    int qos;
    long window; /* QoS 1: max in flight per connection */
    int trace;
    const char *trace_file; /* every --trace-every'th message: sn,ts,seq,pub_us */
    long trace_every;
    double interval; /* > 0: realistic per-device reporting mode */
    int lwt;
    unsigned seed;
    int quiet;
};

struct dev {
    char sn[SN_MAX];
    uint16_t seq;
    uint32_t rng;
    int conn; /* index of the connection that carries it */
    /* Realistic-mode state. */
    double v_base;  /* mV, slowly drifting baseline */
    double phase;   /* radians, so temperature/humidity differ per device */
    double v_event; /* mV added during a gas event */
    int64_t event_until_ms;
    double bat;
    int rssi_base;
    int drop_left; /* messages still to skip (dropout) */
    const char *net;
    const char *ver;
};

/* One publish remembered for --trace-file: the bench finds its row in
 * PostgreSQL by (sn, ts, seq) and subtracts pub_us from the commit time. */
struct trace_rec {
    long dev;
    int64_t ts_s;
    int64_t pub_us;
    uint16_t seq;
};

enum conn_state { CS_DOWN = 0, CS_CONNECTING, CS_UP, CS_FAILED };

struct conn {
    struct lg *lg;
    struct mosquitto *mosq;
    struct mqe mq; /* epoll registration (bench/mqepoll.c) */
    int idx;
    enum conn_state state;
    long *devs; /* device indexes carried by this connection */
    long ndevs;
    long next_dev; /* round-robin cursor */
    long inflight;
    int64_t retry_ms;
    int started; /* connect called once: later attempts reconnect */
    int ever_up;
    int refused_rc; /* CONNACK reason code when refused */
    int status_mid; /* mid of our own "online" status message */
};

struct lg {
    struct opts o;
    struct dev *devs;
    struct conn *conns;
    int epfd;
    uint64_t sent, acked, nacked, pub_err, skipped, dropped_dev;
    uint64_t disconnects, reconnects;
    long conns_up, conns_ever_up;
    int stopping;                     /* our own DISCONNECTs: not counted as losses */
    int fail_lines;                   /* connection-failure lines written so far */
    int lost_lines;                   /* connection-lost lines written so far */
    int64_t now_s;                    /* cached wall-clock seconds for payloads */
    int64_t pub_start_ms, pub_end_ms; /* wall clock of the publishing period */
    struct trace_rec *trace;
    size_t ntrace;
};

/* xorshift32: cheap, deterministic per-device randomness. */
static uint32_t rnd(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x ? x : 0x9e3779b9u;
    return *s;
}

/* Uniform in [0, 1). */
static double rndf(uint32_t *s)
{
    return (double)(rnd(s) >> 8) / 16777216.0;
}

/* Approximately normal (mean 0, sd 1): sum of four uniforms. */
static double rndn(uint32_t *s)
{
    return (rndf(s) + rndf(s) + rndf(s) + rndf(s) - 2.0) * 1.732;
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mcs-loadgen --host H --port P --devices N --conns C\n"
               "         (--duration S | --count N) [options]\n"
               "  --cafile F          TLS with this CA (TLS 1.2+)\n"
               "  --user U --pass P   MQTT credentials for every connection\n"
               "  --vendor-secret S   authenticate each connection as device_{sn}\n"
               "                      of its first device (needs --conns = --devices);\n"
               "                      S = @env takes it from $VENDOR_SECRET\n"
               "  --sn-prefix P       serial number prefix (BENCH); sn = P + 6 digits\n"
               "  --sn-start I        first device index (0)\n"
               "  --topic-prefix T    topic prefix (mcs): publishes T/{sn}/up\n"
               "  --client-prefix P   client id prefix (lg-): id = P + sn with one device\n"
               "                      per connection, else P + pid-index\n"
               "  --rate R            total messages/s, 0 = as fast as possible (0)\n"
               "  --qos 0|1           publish QoS (0); QoS 1 counts PUBACKs\n"
               "  --window N          QoS 1 messages in flight per connection (100)\n"
               "  --trace             add user property mcs-pt = publish time (us)\n"
               "  --trace-file F      write sn,ts,seq,pub_us of every --trace-every'th\n"
               "                      message to F at exit (CSV; up to 1,000,000)\n"
               "  --trace-every N     sampling step of --trace-file (100)\n"
               "  --interval S        realistic mode: every device reports every S s\n"
               "  --lwt               Last Will on T/{first sn}/status per connection\n"
               "  --seed N            random seed (1)\n"
               "  --quiet             no progress lines on stderr\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    enum {
        O_HOST = 1000,
        O_PORT,
        O_CAFILE,
        O_USER,
        O_PASS,
        O_VSECRET,
        O_DEVICES,
        O_SNPREFIX,
        O_SNSTART,
        O_CONNS,
        O_TOPIC,
        O_CLIENT,
        O_RATE,
        O_DURATION,
        O_COUNT,
        O_QOS,
        O_WINDOW,
        O_TRACE,
        O_TRACEFILE,
        O_TRACEEVERY,
        O_INTERVAL,
        O_LWT,
        O_SEED,
        O_QUIET,
        O_HELP
    };
    static const struct option lo[] = {
        {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},
        {"cafile", required_argument, 0, O_CAFILE},
        {"user", required_argument, 0, O_USER},
        {"pass", required_argument, 0, O_PASS},
        {"vendor-secret", required_argument, 0, O_VSECRET},
        {"devices", required_argument, 0, O_DEVICES},
        {"sn-prefix", required_argument, 0, O_SNPREFIX},
        {"sn-start", required_argument, 0, O_SNSTART},
        {"conns", required_argument, 0, O_CONNS},
        {"topic-prefix", required_argument, 0, O_TOPIC},
        {"client-prefix", required_argument, 0, O_CLIENT},
        {"rate", required_argument, 0, O_RATE},
        {"duration", required_argument, 0, O_DURATION},
        {"count", required_argument, 0, O_COUNT},
        {"qos", required_argument, 0, O_QOS},
        {"window", required_argument, 0, O_WINDOW},
        {"trace", no_argument, 0, O_TRACE},
        {"trace-file", required_argument, 0, O_TRACEFILE},
        {"trace-every", required_argument, 0, O_TRACEEVERY},
        {"interval", required_argument, 0, O_INTERVAL},
        {"lwt", no_argument, 0, O_LWT},
        {"seed", required_argument, 0, O_SEED},
        {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    long v;
    int c;
    int rc = -1;

    o->host = "127.0.0.1";
    o->port = 1883;
    o->sn_prefix = "BENCH";
    o->topic_prefix = "mcs";
    o->client_prefix = "lg-";
    o->devices = 1000;
    o->conns = 10;
    o->window = 100;
    o->seed = 1;
    o->trace_every = 100;

    while((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
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
        case O_USER:
            o->user = optarg;
            break;
        case O_PASS:
            o->pass = optarg;
            break;
        case O_VSECRET:
            /* "@env" keeps the secret out of the process list. */
            o->vendor_secret = strcmp(optarg, "@env") ? optarg : getenv("VENDOR_SECRET");
            if(!o->vendor_secret || !o->vendor_secret[0]) {
                fprintf(stderr, "mcs-loadgen: --vendor-secret @env but VENDOR_SECRET is unset\n");
                goto usage_out;
            }
            break;
        case O_DEVICES:
            if(mcs_parse_long(optarg, 1, 10000000, &o->devices))
                goto bad;
            break;
        case O_SNPREFIX:
            o->sn_prefix = optarg;
            break;
        case O_SNSTART:
            if(mcs_parse_long(optarg, 0, 99999999, &o->sn_start))
                goto bad;
            break;
        case O_CONNS:
            if(mcs_parse_long(optarg, 1, 100000, &o->conns))
                goto bad;
            break;
        case O_TOPIC:
            o->topic_prefix = optarg;
            break;
        case O_CLIENT:
            o->client_prefix = optarg;
            break;
        case O_RATE:
            if(mcs_parse_double(optarg, 0, 1e8, &o->rate))
                goto bad;
            break;
        case O_DURATION:
            if(mcs_parse_double(optarg, 0, 1e8, &o->duration))
                goto bad;
            break;
        case O_COUNT:
            if(mcs_parse_long(optarg, 0, LONG_MAX, &o->count))
                goto bad;
            break;
        case O_QOS:
            if(mcs_parse_long(optarg, 0, 1, &v))
                goto bad;
            o->qos = (int)v;
            break;
        case O_WINDOW:
            if(mcs_parse_long(optarg, 1, 65535, &o->window))
                goto bad;
            break;
        case O_TRACE:
            o->trace = 1;
            break;
        case O_TRACEFILE:
            o->trace_file = optarg;
            break;
        case O_TRACEEVERY:
            if(mcs_parse_long(optarg, 1, 100000000, &o->trace_every))
                goto bad;
            break;
        case O_INTERVAL:
            if(mcs_parse_double(optarg, 0.01, 86400, &o->interval))
                goto bad;
            break;
        case O_LWT:
            o->lwt = 1;
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
            goto usage_out;
        }
    }
    if(optind < argc) {
        fprintf(stderr, "mcs-loadgen: unexpected argument '%s'\n", argv[optind]);
        goto usage_out;
    }
    if(o->duration <= 0 && o->count <= 0) {
        fprintf(stderr, "mcs-loadgen: give --duration or --count (it must stop by itself)\n");
        goto usage_out;
    }
    if(o->conns > o->devices) {
        fprintf(stderr, "mcs-loadgen: --conns %ld > --devices %ld; using %ld\n", o->conns,
                o->devices, o->devices);
        o->conns = o->devices;
    }
    if(o->vendor_secret && o->conns != o->devices)
        fprintf(stderr, "mcs-loadgen: warning: --vendor-secret with several devices per "
                        "connection; the ACL will deny all but the first device's topic\n");
    if(strlen(o->sn_prefix) > 20 || !mcs_sn_valid(o->sn_prefix, strlen(o->sn_prefix))) {
        fprintf(stderr, "mcs-loadgen: bad --sn-prefix\n");
        goto usage_out;
    }
    if(strlen(o->topic_prefix) > 64 || strlen(o->client_prefix) > 32) {
        fprintf(stderr, "mcs-loadgen: --topic-prefix/--client-prefix too long\n");
        goto usage_out;
    }
    rc = 0;
    goto out;
bad:
    fprintf(stderr, "mcs-loadgen: bad value '%s' for --%s\n", optarg, lo[c - O_HOST].name);
usage_out:
    usage(stderr);
out:
    return rc;
}

/* Initialises device i: its serial number and, for realistic mode, a varied
 * starting state so the fleet does not look cloned. */
static void dev_init(struct lg *lg, long i)
{
    struct dev *d = &lg->devs[i];
    static const char *nets[] = {"4G", "4G", "4G", "4G", "4G", "4G", "WIFI", "LORA"};
    double r;

    snprintf(d->sn, sizeof(d->sn), "%s%06ld", lg->o.sn_prefix, lg->o.sn_start + i);
    d->rng = (uint32_t)(lg->o.seed * 2654435761u) ^ (uint32_t)(i * 40503u + 1u);
    rnd(&d->rng);
    rnd(&d->rng);
    d->seq = 0;
    d->conn = (int)(i % lg->o.conns);
    /* Baseline 150-450 mV: well inside the usual limits (50 / 1000 ppm with
     * k 1-1.5); gas events add 900-2100 mV, which is over them. */
    d->v_base = 150.0 + 300.0 * rndf(&d->rng);
    d->phase = 6.2832 * rndf(&d->rng);
    d->event_until_ms = 0;
    d->v_event = 0;
    r = rndf(&d->rng);
    /* A few devices start near the LOW_BAT thresholds (R-MQ-5 10/11). */
    d->bat = r < 0.05 ? 12.0 + 10.0 * rndf(&d->rng) : 40.0 + 60.0 * rndf(&d->rng);
    /* About one device in sixteen sits behind a poor signal (< -100 dBm). */
    d->rssi_base = rndf(&d->rng) < 0.06 ? -103 : -75 + (int)(rndn(&d->rng) * 4.0);
    d->drop_left = 0;
    d->net = nets[rnd(&d->rng) % 8];
    d->ver = rndf(&d->rng) < 0.2 ? "1.0.1" : "1.0.2";
}

/* Builds the telemetry payload (R-MQ-2) for device d into buf. In realistic
 * mode the device state evolves one step. Returns the length, or -1 when the
 * device skips this report (a dropout: its seq still advances, so the server
 * sees a gap). */
static int dev_payload(struct lg *lg, struct dev *d, int64_t now_ms, char *buf, size_t n)
{
    double v, temp, humi;
    int rssi, bat, err = 0;
    uint16_t seq = d->seq++;
    int len;

    if(lg->o.interval > 0) {
        if(d->drop_left > 0) {
            d->drop_left--;
            lg->dropped_dev++;
            return -1;
        }
        /* About one report in 400 starts a dropout of 2-12 reports. */
        if(rndf(&d->rng) < 0.0025) {
            d->drop_left = 1 + (int)(rnd(&d->rng) % 11);
            lg->dropped_dev++;
            return -1;
        }
        /* Slow bounded drift of the baseline plus sensor noise. */
        d->v_base += rndn(&d->rng) * 1.5;
        if(d->v_base < 120)
            d->v_base = 120;
        if(d->v_base > 480)
            d->v_base = 480;
        /* Gas events: on average one per device per ~50 min of reports at
         * 10 s, lasting 20-90 s, ramping up then down. */
        if(now_ms >= d->event_until_ms) {
            d->v_event = 0;
            if(rndf(&d->rng) < lg->o.interval / 3000.0) {
                d->event_until_ms = now_ms + 20000 + (int64_t)(rnd(&d->rng) % 70000);
                d->v_event = 900.0 + 1200.0 * rndf(&d->rng);
            }
        }
        v = d->v_base + rndn(&d->rng) * 4.0;
        if(now_ms < d->event_until_ms)
            v += d->v_event * (0.8 + 0.2 * rndf(&d->rng));
        d->bat -= 0.004 * lg->o.interval; /* ~1 % per 4 min at 10 s */
        if(d->bat < 5)
            d->bat = 100; /* battery replaced */
        rssi = d->rssi_base + (int)(rndn(&d->rng) * 3.0);
        temp = 25.0 + 3.0 * sin((double)now_ms / 3.6e6 * 0.2618 + d->phase) + rndn(&d->rng) * 0.2;
        humi = 55.0 + 10.0 * sin((double)now_ms / 5.4e6 + d->phase) + rndn(&d->rng) * 0.5;
        bat = (int)d->bat;
        if(bat < 10)
            err = 11;
        else if(bat < 20)
            err = 10;
        else if(rssi < -100)
            err = 20;
        else if(rndf(&d->rng) < 0.0005)
            err = 1;
    }
    else {
        v = 2000.0 + (double)(rnd(&d->rng) % 7000) / 10.0;
        temp = 25.4;
        humi = 65.2;
        bat = 85;
        rssi = -75 + (int)(rnd(&d->rng) % 7) - 3;
    }
    len = snprintf(buf, n,
                   "{\"ts\":%" PRId64 ",\"seq\":%u,\"v_raw\":%.1f,\"temp\":%.1f,"
                   "\"humi\":%.1f,\"bat\":%d,\"rssi\":%d,\"net\":\"%s\","
                   "\"ver\":\"%s\",\"err\":%d}",
                   lg->now_s, (unsigned)seq, v, temp, humi, bat, rssi,
                   lg->o.interval > 0 ? d->net : "4G", lg->o.interval > 0 ? d->ver : "1.0.2", err);
    if(len < 0 || (size_t)len >= n)
        return -1;
    return len;
}

/* Keeps the epoll registration of c in step with what libmosquitto wants. */
static void conn_sync(struct conn *c)
{
    if(c->state == CS_DOWN || c->state == CS_FAILED)
        return;
    mqe_sync(c->lg->epfd, &c->mq, c);
}

/* Forgets the socket before libmosquitto closes it. */
static void conn_unregister(struct conn *c)
{
    mqe_forget(c->lg->epfd, &c->mq);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    struct conn *c = obj;
    struct lg *lg = c->lg;
    char topic[TOPIC_MAX], payload[96];
    int n;

    (void)flags;
    (void)props;
    if(rc != 0) {
        /* Refused (bad credentials, not authorised, ...): final. */
        c->refused_rc = rc;
        c->state = CS_FAILED;
        if(lg->fail_lines++ < 3)
            fprintf(stderr, "mcs-loadgen: connection %d refused by broker: %s (%d)%s\n", c->idx,
                    mosquitto_reason_string(rc), rc,
                    lg->fail_lines == 3 ? " (further refusals not shown)" : "");
        return;
    }
    if(c->ever_up)
        lg->reconnects++;
    else
        lg->conns_ever_up++;
    c->ever_up = 1;
    c->state = CS_UP;
    c->inflight = 0;
    lg->conns_up++;
    if(lg->o.lwt) {
        /* Like the firmware: announce online, retained, next to the Will. */
        snprintf(topic, sizeof(topic), "%s/%s/status", lg->o.topic_prefix, lg->devs[c->devs[0]].sn);
        n = snprintf(payload, sizeof(payload), "{\"status\":\"online\",\"ts\":%" PRId64 "}",
                     (int64_t)time(NULL));
        mosquitto_publish_v5(mosq, &c->status_mid, topic, n, payload, 1, true, NULL);
    }
}

/* The connection of c is gone (rc: why): forget its socket and schedule a
 * reconnect. Idempotent. Reached from on_disconnect and from conn_io, since
 * libmosquitto closes a socket after a failed TLS handshake without calling
 * on_disconnect. */
static void conn_lost(struct conn *c, int rc)
{
    struct lg *lg = c->lg;

    conn_unregister(c);
    if(c->state == CS_CONNECTING && !lg->stopping && lg->fail_lines++ < 3)
        fprintf(stderr, "mcs-loadgen: connection %d failed before CONNACK: %s%s\n", c->idx,
                mosquitto_strerror(rc), lg->fail_lines == 3 ? " (further failures not shown)" : "");
    if(c->state == CS_UP && !lg->stopping) {
        lg->conns_up--;
        lg->disconnects++;
        if(lg->lost_lines++ < 3)
            fprintf(stderr, "mcs-loadgen: connection %d lost: %s%s\n", c->idx,
                    mosquitto_strerror(rc),
                    lg->lost_lines == 3 ? " (further losses only counted)" : "");
    }
    if(c->state != CS_FAILED)
        c->state = CS_DOWN;
    c->retry_ms = mcs_mono_ms() + RECONNECT_MS;
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
                          const mosquitto_property *props)
{
    (void)mosq;
    (void)props;
    conn_lost(obj, rc);
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid, int reason,
                       const mosquitto_property *props)
{
    struct conn *c = obj;

    (void)mosq;
    (void)props;
    if(c->lg->o.qos == 0 || (c->status_mid && mid == c->status_mid))
        return; /* QoS 0: called when written; or our status message */
    if(c->inflight > 0)
        c->inflight--;
    if(reason >= 0x80)
        c->lg->nacked++;
    else
        c->lg->acked++;
}

static int conn_setup(struct lg *lg, struct conn *c)
{
    char id[96], user[64], pass[17];
    const struct dev *first = &lg->devs[c->devs[0]];
    int rc = -1;

    if(c->ndevs == 1 && lg->o.vendor_secret)
        /* A device logs in as itself: the broker plugin requires the client
         * id device_{sn} (docs/PLUGIN.md). */
        snprintf(id, sizeof(id), "device_%s", first->sn);
    else if(c->ndevs == 1)
        snprintf(id, sizeof(id), "%s%s", lg->o.client_prefix, first->sn);
    else
        snprintf(id, sizeof(id), "%s%ld-%d", lg->o.client_prefix, (long)getpid(), c->idx);
    c->mosq = mosquitto_new(id, true, c);
    if(!c->mosq) {
        fprintf(stderr, "mcs-loadgen: mosquitto_new: %s\n", strerror(errno));
        goto out;
    }
    mqe_init(&c->mq, c->mosq);
    mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_int_option(c->mosq, MOSQ_OPT_SEND_MAXIMUM, (int)lg->o.window);
    mosquitto_connect_v5_callback_set(c->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(c->mosq, on_disconnect);
    mosquitto_publish_v5_callback_set(c->mosq, on_publish);
    if(lg->o.vendor_secret) {
        snprintf(user, sizeof(user), "device_%s", first->sn);
        if(mcs_device_password(first->sn, lg->o.vendor_secret, pass) != 0)
            goto out;
        mosquitto_username_pw_set(c->mosq, user, pass);
    }
    else if(lg->o.user) {
        mosquitto_username_pw_set(c->mosq, lg->o.user, lg->o.pass);
    }
    if(lg->o.cafile) {
        if(mosquitto_tls_set(c->mosq, lg->o.cafile, NULL, NULL, NULL, NULL) != MOSQ_ERR_SUCCESS ||
           mosquitto_tls_opts_set(c->mosq, 1, "tlsv1.2", NULL) != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "mcs-loadgen: cannot use CA file %s\n", lg->o.cafile);
            goto out;
        }
    }
    rc = 0;
out:
    return rc;
}

/* Sets the Last Will of c (R-MQ-1) with the current time, before each
 * (re)connect so that its ts is not the time the process started. */
static void set_will(struct lg *lg, struct conn *c)
{
    char topic[TOPIC_MAX], payload[96];
    int n;

    snprintf(topic, sizeof(topic), "%s/%s/status", lg->o.topic_prefix, lg->devs[c->devs[0]].sn);
    n = snprintf(payload, sizeof(payload), "{\"status\":\"offline\",\"ts\":%" PRId64 "}",
                 (int64_t)time(NULL));
    if(mosquitto_will_set_v5(c->mosq, topic, n, payload, 1, true, NULL) != MOSQ_ERR_SUCCESS)
        fprintf(stderr, "mcs-loadgen: connection %d: cannot set the Last Will\n", c->idx);
}

/* Starts (or restarts) the TCP connection of c; CONNACK arrives later. */
static void conn_start(struct lg *lg, struct conn *c)
{
    int rc;

    if(lg->o.lwt)
        set_will(lg, c);
    if(c->started) {
        rc = mosquitto_reconnect(c->mosq);
    }
    else {
        c->started = 1;
        rc = mosquitto_connect_bind_v5(c->mosq, lg->o.host, lg->o.port, KEEPALIVE_S, NULL, NULL);
    }
    if(rc != MOSQ_ERR_SUCCESS) {
        /* The first few failures name their cause; the rest are counted
         * (conn_failed) so that a dead broker does not flood stderr. */
        if(!c->ever_up && !c->retry_ms && lg->fail_lines++ < 3)
            fprintf(stderr, "mcs-loadgen: connection %d to %s:%d failed: %s%s\n", c->idx,
                    lg->o.host, lg->o.port,
                    rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc),
                    lg->fail_lines == 3 ? " (further failures not shown)" : "");
        c->state = CS_DOWN;
        c->retry_ms = mcs_mono_ms() + RECONNECT_MS;
        return;
    }
    c->state = CS_CONNECTING;
    mqe_closed(&c->mq);
    conn_sync(c);
}

static int conn_alive(void *obj)
{
    const struct conn *c = obj;
    return c->state == CS_UP || c->state == CS_CONNECTING;
}

/* Runs libmosquitto's read/write for one ready connection. */
static void conn_io(struct conn *c, uint32_t ev)
{
    int rc = mqe_io(&c->mq, ev, conn_alive, c);

    if(c->state == CS_FAILED && c->mq.fd >= 0)
        conn_unregister(c);
    if(conn_alive(c) && mosquitto_socket(c->mosq) < 0)
        conn_lost(c, rc != MOSQ_ERR_SUCCESS ? rc : MOSQ_ERR_CONN_LOST);
    conn_sync(c);
}

/* Publishes one message for device di over c. Returns 1 when sent, 0 when the
 * device skipped it (dropout), -1 on a connection error. */
static int publish_one(struct lg *lg, struct conn *c, long di, int64_t now_ms)
{
    struct dev *d = &lg->devs[di];
    char topic[TOPIC_MAX], payload[PAYLOAD_MAX], pt[24];
    mosquitto_property *props = NULL;
    int len, rc;

    len = dev_payload(lg, d, now_ms, payload, sizeof(payload));
    if(len < 0)
        return 0;
    snprintf(topic, sizeof(topic), "%s/%s/up", lg->o.topic_prefix, d->sn);
    if(lg->o.trace) {
        snprintf(pt, sizeof(pt), "%" PRId64, mcs_now_us());
        mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "mcs-pt", pt);
    }
    rc = mosquitto_publish_v5(c->mosq, NULL, topic, len, payload, lg->o.qos, false, props);
    mosquitto_property_free_all(&props);
    if(rc != MOSQ_ERR_SUCCESS) {
        lg->pub_err++;
        return -1;
    }
    lg->sent++;
    if(lg->trace && lg->sent % (uint64_t)lg->o.trace_every == 0 && lg->ntrace < TRACE_MAX) {
        struct trace_rec *t = &lg->trace[lg->ntrace++];
        t->dev = di;
        t->ts_s = lg->now_s;
        t->seq = (uint16_t)(d->seq - 1); /* dev_payload advanced it */
        t->pub_us = mcs_now_us();
    }
    if(lg->o.qos == 1)
        c->inflight++;
    return 1;
}

/* Whether c can take another message now without growing an unbounded
 * client-side queue. */
static int conn_ready(const struct lg *lg, struct conn *c)
{
    if(c->state != CS_UP)
        return 0;
    if(lg->o.qos == 1 && c->inflight >= lg->o.window)
        return 0;
    return !mosquitto_want_write(c->mosq);
}

/* Bench mode: spends up to `budget` messages over the ready connections,
 * round-robin from *cursor. Returns how many were sent. */
static long publish_batch(struct lg *lg, long budget, long *cursor, int64_t now_ms)
{
    long sent = 0, k, visited;
    struct conn *c;
    int per;

    for(visited = 0; visited < lg->o.conns && sent < budget; visited++) {
        c = &lg->conns[*cursor];
        *cursor = (*cursor + 1) % lg->o.conns;
        for(per = 0; per < BATCH && sent < budget && conn_ready(lg, c); per++) {
            k = c->next_dev;
            c->next_dev = (c->next_dev + 1) % c->ndevs;
            if(publish_one(lg, c, c->devs[k], now_ms) < 0)
                break;
            sent++;
        }
        conn_sync(c);
    }
    return sent;
}

/* Writes the --trace-file samples as CSV (sn,ts,seq,pub_us). */
static int write_trace(const struct lg *lg)
{
    FILE *f = fopen(lg->o.trace_file, "w");
    size_t i;
    int rc = -1;

    if(!f) {
        fprintf(stderr, "mcs-loadgen: cannot write %s: %s\n", lg->o.trace_file, strerror(errno));
        return -1;
    }
    for(i = 0; i < lg->ntrace; i++) {
        const struct trace_rec *t = &lg->trace[i];
        if(fprintf(f, "%s,%" PRId64 ",%u,%" PRId64 "\n", lg->devs[t->dev].sn, t->ts_s,
                   (unsigned)t->seq, t->pub_us) < 0)
            goto out;
    }
    rc = 0;
out:
    if(fclose(f) != 0)
        rc = -1;
    if(rc)
        fprintf(stderr, "mcs-loadgen: writing %s failed\n", lg->o.trace_file);
    return rc;
}

static void print_figures(struct lg *lg, double elapsed)
{
    long failed = 0, refused = 0, i;

    for(i = 0; i < lg->o.conns; i++) {
        if(lg->conns[i].state == CS_FAILED)
            refused++;
        else if(!lg->conns[i].ever_up)
            failed++;
    }
    printf("sent: %" PRIu64 "\n", lg->sent);
    if(lg->o.qos == 1) {
        printf("acked: %" PRIu64 "\n", lg->acked);
        if(lg->nacked)
            printf("nacked: %" PRIu64 "\n", lg->nacked);
    }
    printf("elapsed_s: %.3f\n", elapsed);
    printf("rate: %.1f\n", elapsed > 0 ? (double)lg->sent / elapsed : 0.0);
    if(lg->pub_start_ms)
        printf("start_unix_ms: %" PRId64 "\nend_unix_ms: %" PRId64 "\n", lg->pub_start_ms,
               lg->pub_end_ms);
    printf("conns: %ld\n", lg->o.conns);
    printf("conn_failed: %ld\n", failed + refused);
    if(refused)
        printf("conn_refused: %ld\n", refused);
    if(lg->disconnects) {
        printf("disconnects: %" PRIu64 "\n", lg->disconnects);
        printf("reconnects: %" PRIu64 "\n", lg->reconnects);
    }
    if(lg->o.interval > 0)
        printf("dropped_by_devices: %" PRIu64 "\n", lg->dropped_dev);
    if(lg->pub_err)
        printf("publish_errors: %" PRIu64 "\n", lg->pub_err);
    if(lg->o.trace_file)
        printf("traced: %zu\n", lg->ntrace);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct lg lg;
    struct epoll_event evs[256];
    struct rlimit rl;
    struct sigaction sa;
    int64_t t_start = 0, t_end = 0, now, next_misc, deadline, last_tick, next_report;
    double tokens = 0, cap;
    long i, cursor = 0, budget, ring = 0, round = 0;
    int n, k, timeout, running, rc = 1, any_ready;
    uint64_t last_sent = 0;

    memset(&lg, 0, sizeof(lg));
    lg.epfd = -1;
    if(parse_opts(argc, argv, &lg.o))
        return 2;

    /* Many connections need many descriptors: take the hard limit. */
    if(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if(getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)lg.o.conns + 64 > rl.rlim_cur)
        fprintf(stderr, "mcs-loadgen: warning: %ld connections but only %ld open files allowed\n",
                lg.o.conns, (long)rl.rlim_cur);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    mosquitto_lib_init();
    lg.devs = calloc((size_t)lg.o.devices, sizeof(*lg.devs));
    lg.conns = calloc((size_t)lg.o.conns, sizeof(*lg.conns));
    lg.epfd = epoll_create1(EPOLL_CLOEXEC);
    if(lg.o.trace_file)
        lg.trace = calloc(TRACE_MAX, sizeof(*lg.trace));
    if(!lg.devs || !lg.conns || lg.epfd < 0 || (lg.o.trace_file && !lg.trace)) {
        fprintf(stderr, "mcs-loadgen: out of memory\n");
        goto out;
    }
    for(i = 0; i < lg.o.devices; i++)
        dev_init(&lg, i);
    for(i = 0; i < lg.o.conns; i++) {
        struct conn *c = &lg.conns[i];
        c->lg = &lg;
        c->idx = (int)i;
        mqe_init(&c->mq, NULL);
        c->ndevs = (lg.o.devices - i + lg.o.conns - 1) / lg.o.conns;
        c->devs = calloc((size_t)c->ndevs, sizeof(long));
        if(!c->devs)
            goto out;
    }
    for(i = 0; i < lg.o.devices; i++) {
        struct conn *c = &lg.conns[lg.devs[i].conn];
        c->devs[c->next_dev++] = i;
    }
    for(i = 0; i < lg.o.conns; i++) {
        lg.conns[i].next_dev = 0;
        if(conn_setup(&lg, &lg.conns[i]))
            goto out;
    }

    /* Connect everything, then wait for the CONNACKs (bounded). */
    for(i = 0; i < lg.o.conns && !g_stop; i++)
        conn_start(&lg, &lg.conns[i]);
    deadline = mcs_mono_ms() + CONNECT_WAIT_MS;
    while(!g_stop && mcs_mono_ms() < deadline) {
        long pending = 0;
        for(i = 0; i < lg.o.conns; i++)
            pending += lg.conns[i].state == CS_CONNECTING;
        if(pending == 0)
            break;
        n = epoll_wait(lg.epfd, evs, 256, 100);
        for(k = 0; k < n; k++)
            conn_io(evs[k].data.ptr, evs[k].events);
    }
    /* A simulated fleet behaves like field devices: it keeps retrying (every
     * second) instead of giving up when the broker is not ready for it. */
    if(lg.conns_up == 0 && lg.o.interval > 0)
        fprintf(stderr, "mcs-loadgen: no connection up yet; retrying every second\n");
    else if(lg.conns_up == 0) {
        fprintf(stderr, "mcs-loadgen: no connection to %s:%d could be established\n", lg.o.host,
                lg.o.port);
        print_figures(&lg, 0);
        goto out;
    }
    if(lg.conns_up < lg.o.conns)
        fprintf(stderr, "mcs-loadgen: only %ld of %ld connections are up; going on\n", lg.conns_up,
                lg.o.conns);
    if(!lg.o.quiet)
        fprintf(stderr, "mcs-loadgen: %ld connections up, %ld devices, publishing\n", lg.conns_up,
                lg.o.devices);

    t_start = mcs_mono_ms();
    lg.pub_start_ms = mcs_now_ms();
    last_tick = t_start;
    next_misc = t_start + 1000;
    next_report = t_start + 5000;
    lg.now_s = time(NULL);
    cap = lg.o.rate > 0 ? (lg.o.rate * 0.05 > 10 ? lg.o.rate * 0.05 : 10) : 0;
    running = 1;
    while(running) {
        now = mcs_mono_ms();
        lg.now_s = time(NULL);
        if(g_stop || (lg.o.duration > 0 && now - t_start >= (int64_t)(lg.o.duration * 1000)) ||
           (lg.o.count > 0 && lg.sent >= (uint64_t)lg.o.count)) {
            running = 0;
            break;
        }
        any_ready = 0;
        timeout = 100;
        if(lg.o.interval > 0) {
            /* Device ring: device `ring` is due at start + round*interval +
             * its phase; phases spread the fleet evenly over the interval. */
            double iv = lg.o.interval * 1000.0;
            for(;;) {
                int64_t due = t_start + (int64_t)(round * iv + ring * iv / lg.o.devices);
                struct conn *c;
                if(due > now) {
                    timeout = (int)(due - now < 100 ? due - now : 100);
                    break;
                }
                c = &lg.conns[lg.devs[ring].conn];
                if(conn_ready(&lg, c)) {
                    publish_one(&lg, c, ring, now);
                    conn_sync(c);
                }
                else {
                    lg.devs[ring].seq++; /* not sent: a gap, like a lost report */
                    lg.skipped++;
                }
                if(lg.o.count > 0 && lg.sent >= (uint64_t)lg.o.count)
                    break;
                if(++ring == lg.o.devices) {
                    ring = 0;
                    round++;
                }
            }
        }
        else {
            if(lg.o.rate > 0) {
                tokens += lg.o.rate * (double)(now - last_tick) / 1000.0;
                if(tokens > cap)
                    tokens = cap;
                budget = (long)tokens;
            }
            else {
                /* Bounded per turn, so that with thousands of (TLS)
                 * connections the loop still checks the clock often. */
                budget = lg.o.conns * BATCH < TURN_MAX ? lg.o.conns * BATCH : TURN_MAX;
            }
            if(lg.o.count > 0 && budget > lg.o.count - (long)lg.sent)
                budget = lg.o.count - (long)lg.sent;
            if(budget > 0) {
                long s = publish_batch(&lg, budget, &cursor, now);
                if(lg.o.rate > 0)
                    tokens -= (double)s;
                any_ready = (lg.o.rate <= 0 && s > 0);
            }
            if(lg.o.rate > 0) {
                /* Sleep until about one more message's worth of tokens. */
                double need = 1.0 - tokens;
                timeout = need <= 0 ? 0 : (int)(need * 1000.0 / lg.o.rate) + 1;
                if(timeout > 100)
                    timeout = 100;
            }
            else if(any_ready) {
                timeout = 0;
            }
        }
        last_tick = now;

        n = epoll_wait(lg.epfd, evs, 256, timeout);
        if(n < 0 && errno != EINTR) {
            fprintf(stderr, "mcs-loadgen: epoll_wait: %s\n", strerror(errno));
            break;
        }
        for(k = 0; k < n; k++)
            conn_io(evs[k].data.ptr, evs[k].events);

        now = mcs_mono_ms();
        if(now >= next_misc) {
            next_misc = now + 1000;
            for(i = 0; i < lg.o.conns; i++) {
                struct conn *c = &lg.conns[i];
                if(c->state == CS_UP || c->state == CS_CONNECTING) {
                    mosquitto_loop_misc(c->mosq);
                    conn_sync(c);
                }
                else if(c->state == CS_DOWN && now >= c->retry_ms) {
                    conn_start(&lg, c);
                }
            }
        }
        if(!lg.o.quiet && now >= next_report) {
            fprintf(stderr,
                    "mcs-loadgen: t=%.0fs sent=%" PRIu64 " (%.0f/s) up=%ld acked=%" PRIu64 "\n",
                    (double)(now - t_start) / 1000.0, lg.sent,
                    (double)(lg.sent - last_sent) / ((double)(now - next_report + 5000) / 1000.0),
                    lg.conns_up, lg.acked);
            last_sent = lg.sent;
            next_report = now + 5000;
        }
    }
    t_end = mcs_mono_ms();
    lg.pub_end_ms = mcs_now_ms();

    /* Drain: flush queued output; with QoS 1 wait for the PUBACKs. */
    deadline = mcs_mono_ms() + DRAIN_WAIT_MS;
    while(mcs_mono_ms() < deadline) {
        int busy = 0;
        for(i = 0; i < lg.o.conns; i++) {
            struct conn *c = &lg.conns[i];
            if(c->state != CS_UP)
                continue;
            if(mosquitto_want_write(c->mosq) || (lg.o.qos == 1 && c->inflight > 0))
                busy = 1;
        }
        if(!busy)
            break;
        n = epoll_wait(lg.epfd, evs, 256, 50);
        for(k = 0; k < n; k++)
            conn_io(evs[k].data.ptr, evs[k].events);
    }
    lg.stopping = 1;
    for(i = 0; i < lg.o.conns; i++) {
        struct conn *c = &lg.conns[i];
        if(c->state == CS_UP)
            mosquitto_disconnect_v5(c->mosq, 0, NULL);
    }
    if(lg.o.qos == 1 && lg.acked + lg.nacked < lg.sent)
        fprintf(stderr, "mcs-loadgen: %" PRIu64 " messages never acknowledged\n",
                lg.sent - lg.acked - lg.nacked);
    if(lg.skipped)
        fprintf(stderr, "mcs-loadgen: %" PRIu64 " reports skipped (connection down or busy)\n",
                lg.skipped);
    print_figures(&lg, (double)(t_end - t_start) / 1000.0);
    rc = lg.conns_ever_up > 0 ? 0 : 1;
    if(lg.o.trace_file && write_trace(&lg))
        rc = 1;
out:
    if(lg.conns) {
        for(i = 0; i < lg.o.conns; i++) {
            if(lg.conns[i].mosq)
                mosquitto_destroy(lg.conns[i].mosq);
            free(lg.conns[i].devs);
        }
    }
    free(lg.conns);
    free(lg.devs);
    free(lg.trace);
    if(lg.epfd >= 0)
        close(lg.epfd);
    mosquitto_lib_cleanup();
    return rc;
}
