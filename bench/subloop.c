/* subloop.c - the subscriber skeleton of mcs-nullsub and mcs-copysub (see
 * subloop.h). Owns the libmosquitto client it creates. Thread: the
 * caller's. */
#include "subloop.h"

#include <errno.h>
#include <limits.h>
#include <mqtt_protocol.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "numparse.h"
#include "timeutil.h"

#define ROUND_MS 50
#define SUBSCRIBE_TIMEOUT_MS 10000

void sub_defaults(struct sub *s, const char *prog, volatile sig_atomic_t *stop)
{
    s->prog = prog;
    s->host = "127.0.0.1";
    s->port = 1883;
    s->topic = "mcs/+/up";
    s->idle = 5;
    s->stop = stop;
}

int sub_opt(struct sub *s, int c, const char *arg)
{
    long v;

    switch(c) {
    case 'h':
        s->host = arg;
        return 1;
    case 'p':
        if(mcs_parse_long(arg, 1, 65535, &v))
            goto bad;
        s->port = (int)v;
        return 1;
    case 'C':
        s->cafile = arg;
        return 1;
    case 'u':
        s->user = arg;
        return 1;
    case 'P':
        s->pass = arg;
        return 1;
    case 't':
        s->topic = arg;
        return 1;
    case 'q':
        if(mcs_parse_long(arg, 0, 2, &v))
            goto bad;
        s->qos = (int)v;
        return 1;
    case 'd':
        if(mcs_parse_double(arg, 0, 1e8, &s->duration))
            goto bad;
        return 1;
    case 'n':
        if(mcs_parse_long(arg, 0, LONG_MAX, &s->count))
            goto bad;
        return 1;
    case 'i':
        if(mcs_parse_double(arg, 0, 1e8, &s->idle))
            goto bad;
        return 1;
    case 'I':
        s->id = arg;
        return 1;
    case 'r':
        s->ready_file = arg;
        return 1;
    case 'Q':
        s->quiet = 1;
        return 1;
    default:
        return 0;
    }
bad:
    fprintf(stderr, "%s: bad value '%s'\n", s->prog, arg);
    return -1;
}

int sub_check(const struct sub *s)
{
    if(s->duration <= 0 && s->count <= 0 && s->idle <= 0) {
        fprintf(stderr, "%s: give --duration, --count or --idle\n", s->prog);
        return -1;
    }
    return 0;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    struct sub *s = obj;
    int src;

    (void)flags;
    (void)props;
    if(rc != 0) {
        fprintf(stderr, "%s: connection refused: %s (%d)\n", s->prog, mosquitto_reason_string(rc),
                rc);
        s->failed = 1;
        return;
    }
    s->connected = 1;
    src = mosquitto_subscribe_v5(mosq, NULL, s->topic, s->qos, 0, NULL);
    if(src != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "%s: subscribe: %s\n", s->prog, mosquitto_strerror(src));
        s->failed = 1;
    }
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *granted,
                         const mosquitto_property *props)
{
    struct sub *s = obj;
    FILE *f;

    (void)mosq;
    (void)mid;
    (void)props;
    if(n < 1 || granted[0] >= 0x80) {
        fprintf(stderr, "%s: subscription to '%s' refused (%d)\n", s->prog, s->topic,
                n < 1 ? -1 : granted[0]);
        s->failed = 1;
        return;
    }
    s->subscribed = 1;
    if(!s->quiet)
        fprintf(stderr, "%s: subscribed to %s (qos %d)\n", s->prog, s->topic, granted[0]);
    if(s->ready_file) {
        f = fopen(s->ready_file, "w");
        if(f)
            fclose(f);
    }
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m,
                       const mosquitto_property *props)
{
    struct sub *s = obj;

    (void)mosq;
    (void)props;
    if(s->received == 0)
        s->first_ms = mcs_mono_ms();
    s->received++;
    if(s->on_msg)
        s->on_msg(s->arg, m);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
                          const mosquitto_property *props)
{
    struct sub *s = obj;

    (void)mosq;
    (void)props;
    if(!*s->stop && !s->failed && !s->stopping)
        fprintf(stderr, "%s: disconnected: %s\n", s->prog, mosquitto_strerror(rc));
    s->connected = 0;
    s->failed = 1;
}

struct mosquitto *sub_connect(struct sub *s)
{
    struct mosquitto *mosq;
    int mrc;

    if(!s->id) {
        snprintf(s->idbuf, sizeof(s->idbuf), "%s-%ld", s->prog, (long)getpid());
        s->id = s->idbuf;
    }
    mosq = mosquitto_new(s->id, true, s);
    if(!mosq) {
        fprintf(stderr, "%s: out of memory\n", s->prog);
        return NULL;
    }
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_int_option(mosq, MOSQ_OPT_RECEIVE_MAXIMUM, 1000);
    mosquitto_connect_v5_callback_set(mosq, on_connect);
    mosquitto_subscribe_v5_callback_set(mosq, on_subscribe);
    mosquitto_message_v5_callback_set(mosq, on_message);
    mosquitto_disconnect_v5_callback_set(mosq, on_disconnect);
    if(s->user)
        mosquitto_username_pw_set(mosq, s->user, s->pass);
    if(s->cafile && (mosquitto_tls_set(mosq, s->cafile, NULL, NULL, NULL, NULL) != 0 ||
                     mosquitto_tls_opts_set(mosq, 1, "tlsv1.2", NULL) != 0)) {
        fprintf(stderr, "%s: cannot use CA file %s\n", s->prog, s->cafile);
        goto bad;
    }
    mrc = mosquitto_connect_bind_v5(mosq, s->host, s->port, 60, NULL, NULL);
    if(mrc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "%s: cannot connect to %s:%d: %s\n", s->prog, s->host, s->port,
                mrc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(mrc));
        goto bad;
    }
    return mosq;
bad:
    mosquitto_destroy(mosq);
    return NULL;
}

void sub_run(struct sub *s, struct mosquitto *mosq)
{
    struct pollfd pfd;
    int64_t t0 = mcs_mono_ms(), now, next_misc = t0 + 1000;
    uint64_t prev = 0;
    int i, n, mrc;

    while(!*s->stop && !s->failed) {
        now = mcs_mono_ms();
        if(s->should_stop && s->should_stop(s->arg))
            break;
        if(!s->subscribed && now - t0 > SUBSCRIBE_TIMEOUT_MS) {
            fprintf(stderr, "%s: not subscribed after 10 s\n", s->prog);
            s->failed = 1;
            break;
        }
        if(s->duration > 0 && now - t0 >= (int64_t)(s->duration * 1000))
            break;
        if(s->count > 0 && s->received >= (uint64_t)s->count)
            break;
        if(s->idle > 0 && s->received > 0 && now - s->last_ms >= (int64_t)(s->idle * 1000))
            break;
        pfd.fd = mosquitto_socket(mosq);
        if(pfd.fd < 0)
            break;
        pfd.events = POLLIN | (mosquitto_want_write(mosq) ? POLLOUT : 0);
        pfd.revents = 0;
        n = poll(&pfd, 1, ROUND_MS);
        if(n < 0 && errno != EINTR)
            break;
        if(n > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP))) {
            /* One packet per call: drain what is buffered (bounded). */
            for(i = 0; i < 4096 && !s->failed; i++) {
                errno = 0;
                mrc = mosquitto_loop_read(mosq, 1);
                if(mrc != MOSQ_ERR_SUCCESS || errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
            }
        }
        if(!s->failed && mosquitto_want_write(mosq))
            mosquitto_loop_write(mosq, 1);
        now = mcs_mono_ms();
        if(s->received != prev) {
            s->last_ms = now;
            prev = s->received;
        }
        if(s->on_round)
            s->on_round(s->arg, now);
        if(now >= next_misc && !s->failed) {
            mosquitto_loop_misc(mosq);
            next_misc = now + 1000;
        }
    }
}

void sub_close(struct sub *s, struct mosquitto *mosq)
{
    if(!mosq)
        return;
    s->stopping = 1;
    if(s->connected)
        mosquitto_disconnect_v5(mosq, 0, NULL);
    mosquitto_destroy(mosq);
}
