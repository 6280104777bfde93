/* nullsub.c - mcs-nullsub: a bare MQTT v5 subscriber that only counts, to
 * measure what the broker itself delivers. Owns its counters and samples
 * (the client and its loop are bench/subloop.c); prints `name: value` lines
 * on stdout at exit (diagnostics on stderr). Thread: one.
 *
 * It stops after --duration S, after --count N messages, or when nothing has
 * arrived for --idle S seconds after the first message. Besides the overall
 * rate it prints rate_mid: the rate over the middle half of the span from the
 * first to the last message, i.e. the steady state without ramp-up/down.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subloop.h"

#define SAMPLE_MS 50
#define SAMPLES_MAX (1 << 21) /* ~29 h of 50 ms samples */

/* Set by the signal handler; the one mutable global it can reach. */
static volatile sig_atomic_t g_stop;

struct sample {
    int64_t t_ms;
    uint64_t count;
};

struct ns {
    struct sub sub;
    uint64_t bytes;
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
    fprintf(f, "usage: mcs-nullsub --host H --port P [options]\n" SUB_USAGE);
}

static int parse_opts(int argc, char **argv, struct ns *s)
{
    static const struct option lo[] = {
        SUB_LONGOPTS,
        {"help", no_argument, 0, 'H'},
        {0, 0, 0, 0},
    };
    int c, k;

    sub_defaults(&s->sub, "mcs-nullsub", &g_stop);
    while((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        k = sub_opt(&s->sub, c, optarg);
        if(k < 0)
            goto usage_out;
        if(k > 0)
            continue;
        if(c == 'H') {
            usage(stdout);
            exit(0);
        }
        goto usage_out;
    }
    if(optind < argc || sub_check(&s->sub))
        goto usage_out;
    return 0;
usage_out:
    usage(stderr);
    return -1;
}

static void on_msg(void *user, const struct mosquitto_message *m)
{
    struct ns *s = user;
    s->bytes += (uint64_t)m->payloadlen;
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

static void sample(void *user, int64_t now)
{
    struct ns *s = user;
    if(s->sub.received == 0 || s->nsamples >= SAMPLES_MAX)
        return;
    if(s->nsamples > 0 && now - s->samples[s->nsamples - 1].t_ms < SAMPLE_MS)
        return;
    s->samples[s->nsamples].t_ms = now;
    s->samples[s->nsamples].count = s->sub.received;
    s->nsamples++;
}

int main(int argc, char **argv)
{
    struct ns s;
    struct mosquitto *mosq = NULL;
    struct sigaction sa;
    double span, mid_rate = 0;
    int rc = 1;

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
    s.sub.on_msg = on_msg;
    s.sub.on_round = sample;
    s.sub.arg = &s;
    mosquitto_lib_init();
    mosq = sub_connect(&s.sub);
    if(!mosq)
        goto out;
    sub_run(&s.sub, mosq);
    /* A final sample at the last message, so the series ends where it did. */
    if(s.sub.received > 0 && s.nsamples < SAMPLES_MAX) {
        s.samples[s.nsamples].t_ms = s.sub.last_ms;
        s.samples[s.nsamples].count = s.sub.received;
        s.nsamples++;
    }
    sub_close(&s.sub, mosq);
    mosq = NULL;

    span = s.sub.received > 0 ? (double)(s.sub.last_ms - s.sub.first_ms) / 1000.0 : 0;
    if(s.nsamples > 2 && span > 0.4) {
        int64_t a = s.sub.first_ms + (int64_t)(span * 250.0);
        int64_t b = s.sub.first_ms + (int64_t)(span * 750.0);
        mid_rate = (count_at(&s, b) - count_at(&s, a)) / ((double)(b - a) / 1000.0);
    }
    printf("received: %" PRIu64 "\n", s.sub.received);
    printf("bytes: %" PRIu64 "\n", s.bytes);
    printf("elapsed_s: %.3f\n", span);
    printf("rate: %.1f\n", span > 0 ? (double)s.sub.received / span : 0.0);
    printf("rate_mid: %.1f\n", mid_rate);
    fflush(stdout);
    rc = s.sub.subscribed ? 0 : 1;
out:
    sub_close(&s.sub, mosq);
    mosquitto_lib_cleanup();
    free(s.samples);
    return rc;
}
