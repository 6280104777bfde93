/* nullsub.c - mcs-nullsub: a bare MQTT v5 subscriber that only counts, to
 * measure what the broker itself delivers. Owns one libmosquitto client and
 * its counters; prints `name: value` lines on stdout at exit (diagnostics on
 * stderr). Thread: one; a poll loop over an unthreaded client.
 *
 * It stops after --duration S, after --count N messages, or when nothing has
 * arrived for --idle S seconds after the first message. Besides the overall
 * rate it prints rate_mid: the rate over the middle half of the span from the
 * first to the last message, i.e. the steady state without ramp-up/down.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "numparse.h"
#include "timeutil.h"

#define SAMPLE_MS 50
#define SAMPLES_MAX (1 << 21) /* ~29 h of 50 ms samples */

/* Set by the signal handler; the one mutable global it can reach. */
static volatile sig_atomic_t g_stop;

struct sample {
    int64_t t_ms;
    uint64_t count;
};

struct ns {
    const char *host, *cafile, *user, *pass, *topic, *id, *ready_file;
    int port, qos, quiet;
    double duration, idle;
    long count;
    int subscribed, connected, failed, stopping;
    uint64_t received, bytes;
    int64_t first_ms, last_ms;
    struct sample *samples;
    size_t nsamples;
};

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mcs-nullsub --host H --port P [--topic F] [--qos 0|1]\n"
               "         [--duration S] [--count N] [--idle S] [--cafile F]\n"
               "         [--user U --pass P] [--id CLIENTID] [--ready-file F] [--quiet]\n"
               "  --topic F       topic filter (mcs/+/up; e.g. $share/bench/mcs/+/up)\n"
               "  --idle S        exit when nothing arrived for S s after the first (5)\n"
               "  --ready-file F  create F once the subscription is acknowledged\n");
}

static int parse_opts(int argc, char **argv, struct ns *s)
{
    static const struct option lo[] = {
        {"host", required_argument, 0, 'h'},
        {"port", required_argument, 0, 'p'},
        {"cafile", required_argument, 0, 'C'},
        {"user", required_argument, 0, 'u'},
        {"pass", required_argument, 0, 'P'},
        {"topic", required_argument, 0, 't'},
        {"qos", required_argument, 0, 'q'},
        {"duration", required_argument, 0, 'd'},
        {"count", required_argument, 0, 'n'},
        {"idle", required_argument, 0, 'i'},
        {"id", required_argument, 0, 'I'},
        {"ready-file", required_argument, 0, 'r'},
        {"quiet", no_argument, 0, 'Q'},
        {"help", no_argument, 0, 'H'},
        {0, 0, 0, 0},
    };
    long v;
    int c, rc = -1;

    s->host = "127.0.0.1";
    s->port = 1883;
    s->topic = "mcs/+/up";
    s->idle = 5;
    while((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch(c) {
        case 'h':
            s->host = optarg;
            break;
        case 'p':
            if(mcs_parse_long(optarg, 1, 65535, &v))
                goto bad;
            s->port = (int)v;
            break;
        case 'C':
            s->cafile = optarg;
            break;
        case 'u':
            s->user = optarg;
            break;
        case 'P':
            s->pass = optarg;
            break;
        case 't':
            s->topic = optarg;
            break;
        case 'q':
            if(mcs_parse_long(optarg, 0, 2, &v))
                goto bad;
            s->qos = (int)v;
            break;
        case 'd':
            if(mcs_parse_double(optarg, 0, 1e8, &s->duration))
                goto bad;
            break;
        case 'n':
            if(mcs_parse_long(optarg, 0, LONG_MAX, &s->count))
                goto bad;
            break;
        case 'i':
            if(mcs_parse_double(optarg, 0, 1e8, &s->idle))
                goto bad;
            break;
        case 'I':
            s->id = optarg;
            break;
        case 'r':
            s->ready_file = optarg;
            break;
        case 'Q':
            s->quiet = 1;
            break;
        case 'H':
            usage(stdout);
            exit(0);
        default:
            goto usage_out;
        }
    }
    if(optind < argc)
        goto usage_out;
    if(s->duration <= 0 && s->count <= 0 && s->idle <= 0) {
        fprintf(stderr, "mcs-nullsub: give --duration, --count or --idle\n");
        goto usage_out;
    }
    rc = 0;
    goto out;
bad:
    fprintf(stderr, "mcs-nullsub: bad value '%s'\n", optarg);
usage_out:
    usage(stderr);
out:
    return rc;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    struct ns *s = obj;
    int src;

    (void)flags;
    (void)props;
    if(rc != 0) {
        fprintf(stderr, "mcs-nullsub: connection refused: %s (%d)\n", mosquitto_reason_string(rc),
                rc);
        s->failed = 1;
        return;
    }
    s->connected = 1;
    src = mosquitto_subscribe_v5(mosq, NULL, s->topic, s->qos, 0, NULL);
    if(src != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "mcs-nullsub: subscribe: %s\n", mosquitto_strerror(src));
        s->failed = 1;
    }
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *granted,
                         const mosquitto_property *props)
{
    struct ns *s = obj;
    FILE *f;

    (void)mosq;
    (void)mid;
    (void)props;
    if(n < 1 || granted[0] >= 0x80) {
        fprintf(stderr, "mcs-nullsub: subscription to '%s' refused (%d)\n", s->topic,
                n < 1 ? -1 : granted[0]);
        s->failed = 1;
        return;
    }
    s->subscribed = 1;
    if(!s->quiet)
        fprintf(stderr, "mcs-nullsub: subscribed to %s (qos %d)\n", s->topic, granted[0]);
    if(s->ready_file) {
        f = fopen(s->ready_file, "w");
        if(f)
            fclose(f);
    }
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m,
                       const mosquitto_property *props)
{
    struct ns *s = obj;

    (void)mosq;
    (void)props;
    if(s->received == 0)
        s->first_ms = mcs_mono_ms();
    s->received++;
    s->bytes += (uint64_t)m->payloadlen;
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
                          const mosquitto_property *props)
{
    struct ns *s = obj;

    (void)mosq;
    (void)props;
    if(!g_stop && !s->failed && !s->stopping)
        fprintf(stderr, "mcs-nullsub: disconnected: %s\n", mosquitto_strerror(rc));
    s->connected = 0;
    s->failed = 1;
}

/* Count at time t, interpolated between the samples around it. */
static double count_at(const struct ns *s, int64_t t)
{
    size_t lo = 0, hi = s->nsamples - 1, mid;
    const struct sample *a, *b;

    if(t <= s->samples[0].t_ms)
        return (double)s->samples[0].count;
    if(t >= s->samples[hi].t_ms)
        return (double)s->samples[hi].count;
    while(hi - lo > 1) {
        mid = (lo + hi) / 2;
        if(s->samples[mid].t_ms <= t)
            lo = mid;
        else
            hi = mid;
    }
    a = &s->samples[lo];
    b = &s->samples[hi];
    if(b->t_ms == a->t_ms)
        return (double)a->count;
    return (double)a->count +
           (double)(b->count - a->count) * (double)(t - a->t_ms) / (double)(b->t_ms - a->t_ms);
}

static void sample(struct ns *s, int64_t now)
{
    if(s->received == 0 || s->nsamples >= SAMPLES_MAX)
        return;
    if(s->nsamples > 0 && now - s->samples[s->nsamples - 1].t_ms < SAMPLE_MS)
        return;
    s->samples[s->nsamples].t_ms = now;
    s->samples[s->nsamples].count = s->received;
    s->nsamples++;
}

int main(int argc, char **argv)
{
    struct ns s;
    struct mosquitto *mosq = NULL;
    struct pollfd pfd;
    struct sigaction sa;
    char id[64];
    int64_t t0, now, next_misc, connect_deadline;
    uint64_t prev = 0;
    double span, elapsed, mid_rate = 0;
    int rc = 1, i, mrc, n;

    memset(&s, 0, sizeof(s));
    if(parse_opts(argc, argv, &s))
        return 2;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    s.samples = calloc(SAMPLES_MAX, sizeof(*s.samples));
    if(!s.samples)
        goto out;
    mosquitto_lib_init();
    if(!s.id) {
        snprintf(id, sizeof(id), "nullsub-%ld", (long)getpid());
        s.id = id;
    }
    mosq = mosquitto_new(s.id, true, &s);
    if(!mosq)
        goto out;
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_int_option(mosq, MOSQ_OPT_RECEIVE_MAXIMUM, 1000);
    mosquitto_connect_v5_callback_set(mosq, on_connect);
    mosquitto_subscribe_v5_callback_set(mosq, on_subscribe);
    mosquitto_message_v5_callback_set(mosq, on_message);
    mosquitto_disconnect_v5_callback_set(mosq, on_disconnect);
    if(s.user)
        mosquitto_username_pw_set(mosq, s.user, s.pass);
    if(s.cafile && (mosquitto_tls_set(mosq, s.cafile, NULL, NULL, NULL, NULL) != 0 ||
                    mosquitto_tls_opts_set(mosq, 1, "tlsv1.2", NULL) != 0)) {
        fprintf(stderr, "mcs-nullsub: cannot use CA file %s\n", s.cafile);
        goto out;
    }
    mrc = mosquitto_connect_bind_v5(mosq, s.host, s.port, 60, NULL, NULL);
    if(mrc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "mcs-nullsub: cannot connect to %s:%d: %s\n", s.host, s.port,
                mrc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(mrc));
        goto out;
    }

    t0 = mcs_mono_ms();
    next_misc = t0 + 1000;
    connect_deadline = t0 + 10000;
    while(!g_stop && !s.failed) {
        now = mcs_mono_ms();
        if(!s.subscribed && now > connect_deadline) {
            fprintf(stderr, "mcs-nullsub: not subscribed after 10 s\n");
            s.failed = 1;
            break;
        }
        if(s.duration > 0 && now - t0 >= (int64_t)(s.duration * 1000))
            break;
        if(s.count > 0 && s.received >= (uint64_t)s.count)
            break;
        if(s.idle > 0 && s.received > 0 && now - s.last_ms >= (int64_t)(s.idle * 1000))
            break;
        pfd.fd = mosquitto_socket(mosq);
        if(pfd.fd < 0)
            break;
        pfd.events = POLLIN | (mosquitto_want_write(mosq) ? POLLOUT : 0);
        pfd.revents = 0;
        n = poll(&pfd, 1, SAMPLE_MS);
        if(n < 0 && errno != EINTR)
            break;
        if(n > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP))) {
            /* One packet per call: drain what is buffered (bounded). */
            for(i = 0; i < 4096 && !s.failed; i++) {
                errno = 0;
                mrc = mosquitto_loop_read(mosq, 1);
                if(mrc != MOSQ_ERR_SUCCESS || errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
            }
        }
        if(!s.failed && mosquitto_want_write(mosq))
            mosquitto_loop_write(mosq, 1);
        now = mcs_mono_ms();
        if(s.received != prev) {
            s.last_ms = now;
            prev = s.received;
        }
        sample(&s, now);
        if(now >= next_misc && !s.failed) {
            mosquitto_loop_misc(mosq);
            next_misc = now + 1000;
        }
    }
    /* A final sample at the last message, so the series ends where it did. */
    if(s.received > 0 && s.nsamples < SAMPLES_MAX) {
        s.samples[s.nsamples].t_ms = s.last_ms;
        s.samples[s.nsamples].count = s.received;
        s.nsamples++;
    }
    s.stopping = 1;
    if(s.connected)
        mosquitto_disconnect_v5(mosq, 0, NULL);

    span = s.received > 0 ? (double)(s.last_ms - s.first_ms) / 1000.0 : 0;
    if(s.nsamples > 2 && span > 0.4) {
        int64_t a = s.first_ms + (int64_t)(span * 250.0);
        int64_t b = s.first_ms + (int64_t)(span * 750.0);
        mid_rate = (count_at(&s, b) - count_at(&s, a)) / ((double)(b - a) / 1000.0);
    }
    elapsed = span;
    printf("received: %" PRIu64 "\n", s.received);
    printf("bytes: %" PRIu64 "\n", s.bytes);
    printf("elapsed_s: %.3f\n", elapsed);
    printf("rate: %.1f\n", elapsed > 0 ? (double)s.received / elapsed : 0.0);
    printf("rate_mid: %.1f\n", mid_rate);
    fflush(stdout);
    rc = s.subscribed ? 0 : 1;
out:
    if(mosq)
        mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    free(s.samples);
    return rc;
}
