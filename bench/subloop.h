/* subloop.h - the MQTT v5 subscriber skeleton of the bench tools mcs-nullsub
 * and mcs-copysub: their common options, connect + subscribe + ready file,
 * and the poll loop over an unthreaded libmosquitto client with its stop
 * conditions (--duration, --count, --idle, a signal).
 * Owns the client it creates; the tool owns what it does with each message.
 * Thread: the caller's (one). */
#ifndef MCS_BENCH_SUBLOOP_H
#define MCS_BENCH_SUBLOOP_H

#include <getopt.h>
#include <mosquitto.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

struct sub {
    const char *prog; /* for messages: "mcs-nullsub" */
    /* Options (sub_defaults, then sub_opt). */
    const char *host, *cafile, *user, *pass, *topic, *id, *ready_file;
    int port, qos, quiet;
    double duration, idle;
    long count;
    /* State, read by the tool. */
    int subscribed, connected, failed, stopping;
    uint64_t received;
    int64_t first_ms, last_ms; /* monotonic: first message, last arrival */
    /* Hooks of the tool; arg is their argument. on_msg runs for every
     * message after it is counted; on_round (may be NULL) after every poll
     * round; should_stop (may be NULL) returns 1 to end the loop. */
    void (*on_msg)(void *user, const struct mosquitto_message *m);
    void (*on_round)(void *user, int64_t now_ms);
    int (*should_stop)(void *user);
    void *arg;
    volatile sig_atomic_t *stop; /* set by the tool's signal handler */
    char idbuf[64];
};

/* The getopt_long entries of the common options (letters h p C u P t q d n
 * i I r Q), for the tool's option table. */
#define SUB_LONGOPTS                                                                               \
    {"host", required_argument, 0, 'h'}, {"port", required_argument, 0, 'p'},                      \
        {"cafile", required_argument, 0, 'C'}, {"user", required_argument, 0, 'u'},                \
        {"pass", required_argument, 0, 'P'}, {"topic", required_argument, 0, 't'},                 \
        {"qos", required_argument, 0, 'q'}, {"duration", required_argument, 0, 'd'},               \
        {"count", required_argument, 0, 'n'}, {"idle", required_argument, 0, 'i'},                 \
        {"id", required_argument, 0, 'I'}, {"ready-file", required_argument, 0, 'r'},              \
    {                                                                                              \
        "quiet", no_argument, 0, 'Q'                                                               \
    }

/* The usage lines of the common options. */
#define SUB_USAGE                                                                                  \
    "  --host H --port P   the broker (127.0.0.1:1883); --cafile F for TLS,\n"                     \
    "                      --user U --pass P, --id CLIENTID\n"                                     \
    "  --topic F           topic filter (mcs/+/up; e.g. $share/bench/mcs/+/up), --qos 0|1\n"       \
    "  --duration S --count N --idle S  stop after S s, N messages, or S s without\n"              \
    "                      one after the first (idle 5)\n"                                         \
    "  --ready-file F      create F once the subscription is acknowledged\n"                       \
    "  --quiet\n"

/* Defaults: 127.0.0.1:1883, mcs/+/up, QoS 0, idle 5 s; stop is the flag
 * the tool's signal handler sets. */
void sub_defaults(struct sub *s, const char *prog, volatile sig_atomic_t *stop);

/* Takes one getopt_long result. Returns 1 when c was a common option, 0
 * when it is not one (the tool's own), -1 for a bad value (said on
 * stderr). */
int sub_opt(struct sub *s, int c, const char *arg);

/* 0 when a stop condition is given, else -1 (said on stderr). */
int sub_check(const struct sub *s);

/* Creates the client (clean session, v5, receive maximum 1000) and
 * connects. Returns it, or NULL with the reason on stderr. */
struct mosquitto *sub_connect(struct sub *s);

/* Runs the loop until a stop condition, a failure or 10 s without the
 * subscription. */
void sub_run(struct sub *s, struct mosquitto *mosq);

/* Disconnects if connected and destroys the client (NULL: no-op). */
void sub_close(struct sub *s, struct mosquitto *mosq);

#endif
