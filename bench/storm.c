/* storm.c - mcs-storm: a connect-storm client for the broker benchmark
 * (bench/connect_storm.py, issue #3). N devices, one TLS connection each,
 * each doing what a detector does after power-up: TLS 1.2+ handshake,
 * MQTT v5 CONNECT as device_{sn} with its R-MQ-6 password and a retained
 * Last Will on {p}/{sn}/status, SUBSCRIBE to {p}/{sn}/cmd and
 * {p}/broadcast/cmd. A device counts as "up" when its SUBACK grants both.
 *
 * It connects everything, prints `ready`, and then waits: when the broker
 * goes away (a restart), every device reconnects after a random delay of
 * 0..--retry-ms, again and again, until all are up; then it prints the
 * storm figures and waits for the next restart, until SIGTERM or
 * --timeout. At most --inflight devices are between "TCP
 * connect" and "up" at any moment (a listen backlog of 100 would otherwise
 * drop SYNs and add 1 s retransmit timeouts that measure the kernel, not
 * the broker).
 *
 * Written here rather than in mcs-loadgen because the benchmark needs
 * non-blocking connects, a time stamp per device and the exact moment the
 * last device is back; libmosquitto's connect is blocking.
 * Owns its sockets and TLS state. Touches only the broker it is pointed at.
 * Thread: one (epoll). Output: `name: value` lines on stdout, progress on
 * stderr. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "devcred.h"
#include "timeutil.h"

#define SN_MAX 33
#define RBUF 2048
#define WBUF 512
#define KEEPALIVE_S 60
#define PING_EVERY_MS 45000
#define ATTEMPT_TIMEOUT_MS 20000

static volatile sig_atomic_t g_stop;

enum cstate { C_DOWN = 0, C_TCP, C_TLS, C_MQTT, C_SUB, C_UP, C_FAILED };

struct conn {
    int fd;
    SSL *ssl;
    enum cstate st;
    uint32_t events;
    int64_t retry_ms;   /* C_DOWN: next attempt not before this */
    int64_t attempt_ms; /* start of the current attempt */
    int64_t last_tx_ms;
    unsigned char rbuf[RBUF];
    size_t rlen;
    unsigned char wbuf[WBUF];
    size_t wlen, woff;
    char sn[SN_MAX];
};

struct opts {
    const char *host, *cafile, *vendor_secret, *sn_prefix, *topic_prefix;
    int port, id_is_sn, inflight, retry_ms;
    long devices, sn_start;
    double timeout_s;
};

struct storm {
    struct opts o;
    struct conn *c;
    SSL_CTX *ctx;
    int epfd;
    struct sockaddr_in addr;
    long up, inflight, down;
    long *heap;   /* DOWN devices, a min-heap on retry_ms (down entries) */
    uint32_t rng; /* xorshift32 state for retry jitter */
    uint64_t attempts, refused, timeouts, lost;
    int phase; /* 0 initial connect, 1 waiting for a drop, 2 storm */
    int64_t t0_ms, first_drop_ms, first_up_ms, last_up_ms;
};

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mcs-storm --host H --port P --cafile F --devices N --vendor-secret S\n"
               "  --vendor-secret S R-MQ-6 secret; @env takes it from $VENDOR_SECRET\n"
               "  --sn-prefix P     serial numbers P + 6 digits (STORM)\n"
               "  --sn-start I      first index (0)\n"
               "  --topic-prefix T  topic prefix (mcs)\n"
               "  --id-sn           client id = serial number (password-file broker with\n"
               "                    %%c ACL patterns); default client id = device_{sn}\n"
               "  --inflight K      devices between TCP connect and SUBACK at once (128)\n"
               "  --retry-ms M      reconnect after a random 0..M ms (500)\n"
               "  --timeout S       give up after S seconds in all (300)\n"
               "Prints `ready` once all are up, then waits for the broker to go away\n"
               "and measures each reconnect storm: storm_s (first drop to last device\n"
               "up), storm_end_mono_ms (CLOCK_MONOTONIC of the last SUBACK), ...\n"
               "Runs until SIGTERM or --timeout; exit 0 when at least one storm was\n"
               "measured and nothing was refused.\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"host", required_argument, 0, 'h'},
        {"port", required_argument, 0, 'p'},
        {"cafile", required_argument, 0, 'c'},
        {"devices", required_argument, 0, 'n'},
        {"vendor-secret", required_argument, 0, 'v'},
        {"sn-prefix", required_argument, 0, 's'},
        {"sn-start", required_argument, 0, 'S'},
        {"topic-prefix", required_argument, 0, 't'},
        {"id-sn", no_argument, 0, 'i'},
        {"inflight", required_argument, 0, 'k'},
        {"retry-ms", required_argument, 0, 'r'},
        {"timeout", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'H'},
        {0, 0, 0, 0},
    };
    int ch;
    char *end;

    memset(o, 0, sizeof(*o));
    o->sn_prefix = "STORM";
    o->topic_prefix = "mcs";
    o->inflight = 128;
    o->retry_ms = 500;
    o->timeout_s = 300;
    while((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        errno = 0;
        end = NULL;
        switch(ch) {
        case 'h':
            o->host = optarg;
            break;
        case 'c':
            o->cafile = optarg;
            break;
        case 'v':
            /* "@env" keeps the secret out of the process list. */
            o->vendor_secret = strcmp(optarg, "@env") ? optarg : getenv("VENDOR_SECRET");
            break;
        case 's':
            o->sn_prefix = optarg;
            break;
        case 't':
            o->topic_prefix = optarg;
            break;
        case 'i':
            o->id_is_sn = 1;
            break;
        case 'p':
            o->port = (int)strtol(optarg, &end, 10);
            break;
        case 'n':
            o->devices = strtol(optarg, &end, 10);
            break;
        case 'S':
            o->sn_start = strtol(optarg, &end, 10);
            break;
        case 'k':
            o->inflight = (int)strtol(optarg, &end, 10);
            break;
        case 'r':
            o->retry_ms = (int)strtol(optarg, &end, 10);
            break;
        case 'T':
            o->timeout_s = strtod(optarg, &end);
            break;
        case 'H':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
        if(end && (*end || errno)) {
            fprintf(stderr, "mcs-storm: bad value '%s'\n", optarg);
            return -1;
        }
    }
    if(!o->host || o->port <= 0 || o->port > 65535 || !o->cafile || !o->vendor_secret ||
       o->devices <= 0 || o->devices > 1000000 || o->inflight <= 0 || o->retry_ms < 0 ||
       o->sn_start < 0 || strlen(o->sn_prefix) > 20) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* --- MQTT v5 packets (just what a device sends) --------------------------- */

static size_t put_varint(unsigned char *p, size_t n)
{
    size_t i = 0;
    do {
        unsigned char b = n % 128;
        n /= 128;
        if(n)
            b |= 0x80;
        p[i++] = b;
    } while(n);
    return i;
}

static size_t put_str(unsigned char *p, const void *s, size_t n)
{
    p[0] = (unsigned char)(n >> 8);
    p[1] = (unsigned char)n;
    memcpy(p + 2, s, n);
    return n + 2;
}

/* Appends a packet of type `hdr` with body[0..blen) to the write buffer. */
static int queue_packet(struct conn *c, unsigned char hdr, const unsigned char *body, size_t blen)
{
    unsigned char lenb[4];
    size_t ln = put_varint(lenb, blen);
    if(c->wlen + 1 + ln + blen > WBUF)
        return -1;
    c->wbuf[c->wlen++] = hdr;
    memcpy(c->wbuf + c->wlen, lenb, ln);
    c->wlen += ln;
    memcpy(c->wbuf + c->wlen, body, blen);
    c->wlen += blen;
    return 0;
}

static int queue_connect(struct storm *s, struct conn *c)
{
    unsigned char b[WBUF];
    char user[64], pass[17], id[64], will_topic[128];
    const char *will = "{\"status\":\"offline\"}";
    size_t n = 0;

    snprintf(user, sizeof(user), "device_%s", c->sn);
    snprintf(id, sizeof(id), "%s", s->o.id_is_sn ? c->sn : user);
    snprintf(will_topic, sizeof(will_topic), "%s/%s/status", s->o.topic_prefix, c->sn);
    if(mcs_device_password(c->sn, s->o.vendor_secret, pass) != 0)
        return -1;
    n += put_str(b + n, "MQTT", 4);
    b[n++] = 5;
    /* user, password, will retain, will QoS 1, will, clean start */
    b[n++] = 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02;
    b[n++] = KEEPALIVE_S >> 8;
    b[n++] = KEEPALIVE_S & 0xff;
    b[n++] = 0; /* no properties */
    n += put_str(b + n, id, strlen(id));
    b[n++] = 0; /* no will properties */
    n += put_str(b + n, will_topic, strlen(will_topic));
    n += put_str(b + n, will, strlen(will));
    n += put_str(b + n, user, strlen(user));
    n += put_str(b + n, pass, 16);
    return queue_packet(c, 0x10, b, n);
}

static int queue_subscribe(struct storm *s, struct conn *c)
{
    unsigned char b[WBUF];
    char t1[128], t2[128];
    size_t n = 0;

    snprintf(t1, sizeof(t1), "%s/%s/cmd", s->o.topic_prefix, c->sn);
    snprintf(t2, sizeof(t2), "%s/broadcast/cmd", s->o.topic_prefix);
    b[n++] = 0;
    b[n++] = 1; /* packet id */
    b[n++] = 0; /* no properties */
    n += put_str(b + n, t1, strlen(t1));
    b[n++] = 1; /* QoS 1 */
    n += put_str(b + n, t2, strlen(t2));
    b[n++] = 1;
    return queue_packet(c, 0x82, b, n);
}

/* --- connections -------------------------------------------------------- */

static void want(struct storm *s, struct conn *c, uint32_t ev)
{
    struct epoll_event e;
    if(c->fd < 0 || c->events == ev)
        return;
    memset(&e, 0, sizeof(e));
    e.events = ev;
    e.data.ptr = c;
    if(epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &e) == 0)
        c->events = ev;
}

static int in_attempt(enum cstate st)
{
    return st == C_TCP || st == C_TLS || st == C_MQTT || st == C_SUB;
}

/* Retry jitter: no need for more than xorshift32. */
static uint32_t jitter(struct storm *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 17;
    s->rng ^= s->rng << 5;
    return s->rng;
}

/* --- the retry schedule: a binary min-heap of device indexes ------------ */

static int64_t due_of(const struct storm *s, long k)
{
    return s->c[s->heap[k]].retry_ms;
}

static void heap_swap(struct storm *s, long a, long b)
{
    long t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
}

static void heap_push(struct storm *s, long idx)
{
    long k = s->down++;
    s->heap[k] = idx;
    while(k > 0 && due_of(s, (k - 1) / 2) > due_of(s, k)) {
        heap_swap(s, k, (k - 1) / 2);
        k = (k - 1) / 2;
    }
}

static long heap_pop(struct storm *s)
{
    long top = s->heap[0], k = 0;
    s->heap[0] = s->heap[--s->down];
    for(;;) {
        long l = 2 * k + 1, r = l + 1, m = k;
        if(l < s->down && due_of(s, l) < due_of(s, m))
            m = l;
        if(r < s->down && due_of(s, r) < due_of(s, m))
            m = r;
        if(m == k)
            break;
        heap_swap(s, k, m);
        k = m;
    }
    return top;
}

/* Closes c and schedules a new attempt (random delay: devices do not
 * retry in lockstep). */
static void conn_down(struct storm *s, struct conn *c, int refused)
{
    int64_t now = mcs_mono_ms();

    if(c->st == C_UP) {
        s->up--;
        s->lost++;
        if(s->phase == 1) {
            s->phase = 2;
            s->first_drop_ms = now;
            fprintf(stderr, "mcs-storm: broker gone, reconnecting %ld devices\n", s->o.devices);
        }
    }
    else if(in_attempt(c->st)) {
        s->inflight--;
    }
    if(c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if(c->fd >= 0) {
        struct linger lg = {1, 0};
        /* RST rather than FIN: no TIME_WAIT for 20,000 local ports. */
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->events = 0;
    c->rlen = c->wlen = c->woff = 0;
    if(refused) {
        s->refused++;
        c->st = C_FAILED;
        return;
    }
    c->st = C_DOWN;
    c->retry_ms = now + (s->o.retry_ms > 0 ? (int64_t)(jitter(s) % (uint32_t)s->o.retry_ms) : 0);
    heap_push(s, c - s->c);
}

static void conn_start(struct storm *s, struct conn *c)
{
    struct epoll_event e;
    int one = 1;

    s->inflight++;
    s->attempts++;
    c->attempt_ms = mcs_mono_ms();
    c->st = C_TCP;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if(c->fd < 0) {
        conn_down(s, c, 0);
        return;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&e, 0, sizeof(e));
    e.events = EPOLLOUT;
    e.data.ptr = c;
    if(epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->fd, &e) != 0) {
        conn_down(s, c, 0);
        return;
    }
    c->events = EPOLLOUT;
    if(connect(c->fd, (struct sockaddr *)&s->addr, sizeof(s->addr)) != 0 && errno != EINPROGRESS)
        conn_down(s, c, 0);
}

/* Writes what is queued; returns -1 on a dead connection. */
static int flush_out(struct storm *s, struct conn *c)
{
    while(c->woff < c->wlen) {
        int w = SSL_write(c->ssl, c->wbuf + c->woff, (int)(c->wlen - c->woff));
        if(w <= 0) {
            int e = SSL_get_error(c->ssl, w);
            if(e == SSL_ERROR_WANT_WRITE) {
                want(s, c, EPOLLIN | EPOLLOUT);
                return 0;
            }
            if(e == SSL_ERROR_WANT_READ)
                return 0;
            return -1;
        }
        c->woff += (size_t)w;
    }
    c->wlen = c->woff = 0;
    c->last_tx_ms = mcs_mono_ms();
    want(s, c, EPOLLIN);
    return 0;
}

static void became_up(struct storm *s, struct conn *c)
{
    int64_t now = mcs_mono_ms();
    c->st = C_UP;
    s->inflight--;
    s->up++;
    if(s->phase == 2 && !s->first_up_ms)
        s->first_up_ms = now;
    s->last_up_ms = now;
}

/* Handles one complete packet; returns -1 to drop, 1 when refused. */
static int on_packet(struct storm *s, struct conn *c, const unsigned char *p, size_t hl, size_t len)
{
    unsigned type = p[0] >> 4;
    const unsigned char *v = p + hl;

    if(type == 2) { /* CONNACK: flags, reason */
        if(len < 2 || c->st != C_MQTT)
            return -1;
        if(v[1] != 0) {
            fprintf(stderr, "mcs-storm: %s refused by the broker: reason %u\n", c->sn, v[1]);
            return 1;
        }
        c->st = C_SUB;
        return queue_subscribe(s, c);
    }
    if(type == 9) { /* SUBACK: id, properties, reasons */
        size_t i = 2, plen = 0, mul = 1;
        if(len < 3 || c->st != C_SUB)
            return -1;
        while(i < len) { /* property length varint */
            plen += (v[i] & 127) * mul;
            mul *= 128;
            if(!(v[i++] & 128))
                break;
        }
        i += plen;
        if(i + 2 > len)
            return -1;
        for(; i < len; i++)
            if(v[i] >= 0x80) {
                fprintf(stderr, "mcs-storm: %s subscription refused: reason %u\n", c->sn, v[i]);
                return 1;
            }
        became_up(s, c);
        return 0;
    }
    if(type == 14) /* DISCONNECT from the broker */
        return -1;
    return 0; /* PINGRESP, or a message: ignored */
}

/* Splits the fixed header of the packet at b[0..n): returns 1 with the
 * header length and the remaining length, 0 when incomplete, -1 when the
 * length field is malformed. */
static int packet_len(const unsigned char *b, size_t n, size_t *hl, size_t *len)
{
    size_t l = 0, mul = 1;
    for(size_t i = 1; i < 5; i++) {
        if(i >= n)
            return 0;
        l += (size_t)(b[i] & 127) * mul;
        if(!(b[i] & 128)) {
            *hl = i + 1;
            *len = l;
            return 1;
        }
        mul *= 128;
    }
    return -1;
}

/* Reads and parses what arrived; returns -1 dead, 1 refused, 0 ok. */
static int read_in(struct storm *s, struct conn *c)
{
    for(;;) {
        int r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(RBUF - c->rlen));
        if(r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            if(e == SSL_ERROR_WANT_READ)
                break;
            if(e == SSL_ERROR_WANT_WRITE) {
                want(s, c, EPOLLIN | EPOLLOUT);
                break;
            }
            return -1;
        }
        c->rlen += (size_t)r;
        for(;;) {
            size_t hl = 0, len = 0;
            int pl = packet_len(c->rbuf, c->rlen, &hl, &len), rc;
            if(pl < 0)
                return -1;
            if(pl == 0 || c->rlen < hl + len) {
                if(hl + len > RBUF)
                    return -1; /* a message bigger than we care to hold */
                break;
            }
            rc = on_packet(s, c, c->rbuf, hl, len);
            if(rc)
                return rc;
            memmove(c->rbuf, c->rbuf + hl + len, c->rlen - hl - len);
            c->rlen -= hl + len;
        }
        if(c->rlen == RBUF)
            return -1;
    }
    return 0;
}

static void conn_io(struct storm *s, struct conn *c, uint32_t ev)
{
    int rc = 0, err = 0;
    socklen_t el = sizeof(err);

    if(c->st == C_TCP) {
        if(getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err) {
            conn_down(s, c, 0);
            return;
        }
        c->ssl = SSL_new(s->ctx);
        if(!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
            conn_down(s, c, 0);
            return;
        }
        SSL_set_connect_state(c->ssl);
        SSL_set_tlsext_host_name(c->ssl, "localhost");
        c->st = C_TLS;
    }
    if(c->st == C_TLS) {
        int r = SSL_do_handshake(c->ssl);
        if(r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if(e == SSL_ERROR_WANT_READ)
                want(s, c, EPOLLIN);
            else if(e == SSL_ERROR_WANT_WRITE)
                want(s, c, EPOLLOUT);
            else
                conn_down(s, c, 0);
            return;
        }
        c->st = C_MQTT;
        if(queue_connect(s, c) || flush_out(s, c))
            conn_down(s, c, 0);
        return;
    }
    if(ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
        rc = read_in(s, c);
    if(rc == 0 && c->wlen > c->woff)
        rc = flush_out(s, c);
    if(rc)
        conn_down(s, c, rc == 1);
}

static void keepalive_and_timeouts(struct storm *s, int64_t now)
{
    static const unsigned char ping[2] = {0xc0, 0x00};
    for(long i = 0; i < s->o.devices; i++) {
        struct conn *c = &s->c[i];
        if(c->st == C_UP && now - c->last_tx_ms > PING_EVERY_MS && c->wlen + 2 <= WBUF) {
            memcpy(c->wbuf + c->wlen, ping, 2);
            c->wlen += 2;
            if(flush_out(s, c))
                conn_down(s, c, 0);
        }
        else if(in_attempt(c->st) && now - c->attempt_ms > ATTEMPT_TIMEOUT_MS) {
            s->timeouts++;
            conn_down(s, c, 0);
        }
    }
}

/* Starts due attempts while fewer than --inflight are under way; returns
 * when the next one is due (or now + 100 ms). */
static int64_t start_due(struct storm *s, int64_t now)
{
    while(s->down > 0 && s->inflight < s->o.inflight && due_of(s, 0) <= now)
        conn_start(s, &s->c[heap_pop(s)]);
    /* At the cap, only progress of the attempts under way frees a place:
     * wait for their events instead of spinning. */
    if(s->down > 0 && s->inflight < s->o.inflight && due_of(s, 0) < now + 100)
        return due_of(s, 0);
    return now + 100;
}

static SSL_CTX *make_ctx(const struct opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    X509_VERIFY_PARAM *vp;
    struct in_addr ip;

    if(!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* Every reconnect a full handshake, as after a real broker restart. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if(SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1) {
        fprintf(stderr, "mcs-storm: cannot load CA file %s\n", o->cafile);
        SSL_CTX_free(ctx);
        return NULL;
    }
    vp = SSL_CTX_get0_param(ctx);
    if(inet_pton(AF_INET, o->host, &ip) == 1)
        X509_VERIFY_PARAM_set1_ip_asc(vp, o->host);
    else
        X509_VERIFY_PARAM_set1_host(vp, o->host, 0);
    return ctx;
}

static void print_storm(struct storm *s)
{
    printf("storm_devices: %ld\n", s->o.devices);
    printf("storm_up: %ld\n", s->up);
    printf("storm_s: %.3f\n", (double)(s->last_up_ms - s->first_drop_ms) / 1000.0);
    printf("storm_first_drop_mono_ms: %" PRId64 "\n", s->first_drop_ms);
    printf("storm_first_up_mono_ms: %" PRId64 "\n", s->first_up_ms);
    printf("storm_end_mono_ms: %" PRId64 "\n", s->last_up_ms);
    printf("storm_attempts: %" PRIu64 "\n", s->attempts);
    printf("storm_timeouts: %" PRIu64 "\n", s->timeouts);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct storm s;
    struct epoll_event evs[512];
    struct rlimit rl;
    struct sigaction sa;
    int64_t now, next_misc, next_report, next_due, deadline;
    int rc = 1;

    memset(&s, 0, sizeof(s));
    s.epfd = -1;
    if(parse_opts(argc, argv, &s.o))
        return 2;
    if(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if(getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)s.o.devices + 64 > rl.rlim_cur) {
        fprintf(stderr, "mcs-storm: %ld devices need more than %ld open files\n", s.o.devices,
                (long)rl.rlim_cur);
        goto out;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    s.rng = (uint32_t)getpid() | 1u;

    s.addr.sin_family = AF_INET;
    s.addr.sin_port = htons((uint16_t)s.o.port);
    if(inet_pton(AF_INET, s.o.host, &s.addr.sin_addr) != 1) {
        fprintf(stderr, "mcs-storm: --host must be an IPv4 address\n");
        goto out;
    }
    s.ctx = make_ctx(&s.o);
    s.c = calloc((size_t)s.o.devices, sizeof(*s.c));
    s.heap = calloc((size_t)s.o.devices, sizeof(*s.heap));
    s.epfd = epoll_create1(EPOLL_CLOEXEC);
    if(!s.ctx || !s.c || !s.heap || s.epfd < 0)
        goto out;
    for(long i = 0; i < s.o.devices; i++) {
        s.c[i].fd = -1;
        s.c[i].st = C_DOWN;
        snprintf(s.c[i].sn, SN_MAX, "%s%06ld", s.o.sn_prefix, s.o.sn_start + i);
        heap_push(&s, i); /* all due at once (retry_ms 0) */
    }
    s.t0_ms = mcs_mono_ms();
    deadline = s.t0_ms + (int64_t)(s.o.timeout_s * 1000);
    next_misc = s.t0_ms + 1000;
    next_report = s.t0_ms + 5000;

    while(!g_stop) {
        int n, timeout;
        now = mcs_mono_ms();
        if(now > deadline) {
            fprintf(stderr, "mcs-storm: time is up with %ld of %ld up\n", s.up, s.o.devices);
            break;
        }
        if(s.refused) {
            fprintf(stderr, "mcs-storm: the broker refused devices: check credentials\n");
            rc = 1;
            break;
        }
        if(s.phase == 0 && s.up == s.o.devices) {
            printf("initial_s: %.3f\nready\n", (double)(now - s.t0_ms) / 1000.0);
            fflush(stdout);
            fprintf(stderr, "mcs-storm: all %ld devices up\n", s.up);
            s.phase = 1;
        }
        if(s.phase == 2 && s.up == s.o.devices) {
            /* Report this storm and wait for the next restart. */
            print_storm(&s);
            fprintf(stderr, "mcs-storm: all %ld devices back\n", s.up);
            s.phase = 1;
            s.first_drop_ms = s.first_up_ms = 0;
            s.attempts = s.timeouts = 0;
            rc = 0;
        }
        next_due = start_due(&s, now);
        timeout = (int)(next_due - now);
        if(timeout < 0)
            timeout = 0;
        if(timeout > 100)
            timeout = 100;
        n = epoll_wait(s.epfd, evs, 512, timeout);
        for(int k = 0; k < n; k++)
            conn_io(&s, evs[k].data.ptr, evs[k].events);
        now = mcs_mono_ms();
        if(now >= next_misc) {
            next_misc = now + 1000;
            keepalive_and_timeouts(&s, now);
        }
        if(now >= next_report) {
            next_report = now + 5000;
            fprintf(stderr,
                    "mcs-storm: t=%.0fs up=%ld inflight=%ld down=%ld attempts=%" PRIu64 "\n",
                    (double)(now - s.t0_ms) / 1000.0, s.up, s.inflight, s.down, s.attempts);
        }
    }
out:
    if(s.c) {
        for(long i = 0; i < s.o.devices; i++) {
            if(s.c[i].ssl)
                SSL_free(s.c[i].ssl);
            if(s.c[i].fd >= 0) {
                struct linger lg = {1, 0};
                setsockopt(s.c[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
                close(s.c[i].fd);
            }
        }
    }
    free(s.c);
    free(s.heap);
    if(s.ctx)
        SSL_CTX_free(s.ctx);
    if(s.epfd >= 0)
        close(s.epfd);
    return rc;
}
