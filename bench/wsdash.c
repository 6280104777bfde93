/* wsdash.c - mcs-wsdash: N dashboard clients of /ws/dashboard for the api
 * benchmark (bench/api_bench.py, issue #8). Each opens the WebSocket, sends
 * {"type":"auth","token":...} as the big screen does, and then only reads.
 * For every complete `realtime` message received inside the measuring
 * window it takes now - the frame's `ts_ms` (when mcs-api built it).
 *
 * Written here on plain sockets rather than on a library: libwebsockets'
 * client parses received frames byte by byte (~0.5 s of CPU for the 94 MB a
 * second that 200 clients of a 10,000-device screen receive) and Python's
 * websocket-client needs its interpreter lock; both measured themselves,
 * not the server. It reads 256 KiB at a time and looks only at frame
 * headers and the first bytes of each message. It speaks just what the
 * benchmark needs: the RFC 6455 upgrade (101 expected, the accept key not
 * checked), one masked text frame out, unmasked server frames in (text,
 * continuation, ping, close; no extensions).
 * Owns its sockets. Traffic only to the given loopback port.
 * Thread: one (epoll). Output: `name: value` lines on stdout. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "numparse.h"
#include "timeutil.h"

#define RBUF (256 * 1024)
#define HEAD_MAX 96        /* bytes of a message that hold its type and ts_ms */
#define HS_MAX 4096        /* the server's upgrade answer */
#define LAT_MAX (1 << 20)

static volatile sig_atomic_t g_stop;

enum st { S_HS, S_FRAME_HDR, S_PAYLOAD, S_DEAD };

struct dash {
    int fd;
    enum st st;
    char hs[HS_MAX + 1];
    size_t hslen;
    unsigned char hdr[14];
    size_t hdrlen;
    uint64_t left;   /* payload bytes of the current frame still to come */
    int opcode, fin; /* of the current frame */
    int in_msg;      /* inside a fragmented text message */
    char head[HEAD_MAX + 1];
    size_t headlen;  /* bytes of the current message's head */
};

struct run {
    const char *token;
    int64_t t_measure, t_end; /* wall clock ms */
    double *lat;
    size_t nlat;
    long up, closed, other;
};

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while(n) {
        ssize_t k = write(fd, c, n);
        if(k < 0 && errno == EINTR)
            continue;
        if(k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The upgrade request and then the masked auth frame: both small, written
 * on the still blocking socket. */
static int open_one(struct dash *d, int port, const char *token)
{
    struct sockaddr_in a;
    unsigned char key[16], mask[4], fr[1200];
    char key64[32], req[512];
    size_t plen, n = 0;
    char payload[1100];
    int one = 1, len;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d->fd = socket(AF_INET, SOCK_STREAM, 0);
    if(d->fd < 0 || connect(d->fd, (struct sockaddr *)&a, sizeof(a)))
        return -1;
    setsockopt(d->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if(RAND_bytes(key, sizeof(key)) != 1 || RAND_bytes(mask, sizeof(mask)) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)key64, key, sizeof(key));
    len = snprintf(req, sizeof(req),
                   "GET /ws/dashboard HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   port, key64);
    if(len < 0 || (size_t)len >= sizeof(req) || write_all(d->fd, req, (size_t)len))
        return -1;
    len = snprintf(payload, sizeof(payload), "{\"type\":\"auth\",\"token\":\"%s\"}", token);
    if(len < 0 || (size_t)len >= sizeof(payload) || len > 65535)
        return -1;
    plen = (size_t)len;
    fr[n++] = 0x81; /* FIN, text */
    if(plen < 126) {
        fr[n++] = (unsigned char)(0x80 | plen);
    } else {
        fr[n++] = 0x80 | 126;
        fr[n++] = (unsigned char)(plen >> 8);
        fr[n++] = (unsigned char)plen;
    }
    memcpy(fr + n, mask, 4);
    n += 4;
    for(size_t i = 0; i < plen; i++)
        fr[n + i] = (unsigned char)payload[i] ^ mask[i & 3];
    n += plen;
    /* The frame may go right behind the request: the server reads it once
     * the upgrade is done. */
    if(write_all(d->fd, fr, n))
        return -1;
    if(fcntl(d->fd, F_SETFL, fcntl(d->fd, F_GETFL) | O_NONBLOCK))
        return -1;
    d->st = S_HS;
    return 0;
}

static void message_done(struct run *r, struct dash *d)
{
    const char *p;
    long long ts_ms;
    int64_t now = mcs_now_ms();

    d->head[d->headlen] = '\0';
    if(strncmp(d->head, "{\"type\":\"realtime\"", 18) != 0) {
        r->other++;
        return;
    }
    p = strstr(d->head, "\"ts_ms\":");
    if(!p || sscanf(p + 8, "%lld", &ts_ms) != 1)
        return;
    if(now < r->t_measure || now >= r->t_end || r->nlat == LAT_MAX)
        return;
    r->lat[r->nlat++] = (double)(now - ts_ms);
}

/* Consumes n received bytes. Returns 0, or -1 when the connection is over
 * (closed by the server or broken). */
static int feed(struct run *r, struct dash *d, const unsigned char *b, size_t n)
{
    while(n) {
        if(d->st == S_HS) {
            size_t k = HS_MAX - d->hslen < n ? HS_MAX - d->hslen : n;
            char *end;
            memcpy(d->hs + d->hslen, b, k);
            d->hslen += k;
            d->hs[d->hslen] = '\0';
            end = strstr(d->hs, "\r\n\r\n");
            if(!end) {
                if(d->hslen == HS_MAX)
                    return -1;
                return 0;
            }
            if(strncmp(d->hs, "HTTP/1.1 101", 12) != 0) {
                fprintf(stderr, "mcs-wsdash: upgrade refused: %.40s\n", d->hs);
                return -1;
            }
            /* The bytes after the header belong to frames. */
            {
                size_t used = (size_t)(end + 4 - d->hs) - (d->hslen - k);
                b += used;
                n -= used;
            }
            r->up++;
            d->st = S_FRAME_HDR;
            d->hdrlen = 0;
            continue;
        }
        if(d->st == S_FRAME_HDR) {
            size_t need = 2;
            d->hdr[d->hdrlen++] = *b++;
            n--;
            if(d->hdrlen >= 2) {
                int l7 = d->hdr[1] & 0x7f;
                need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0);
                if(d->hdr[1] & 0x80)
                    return -1; /* a server never masks */
            }
            if(d->hdrlen < need)
                continue;
            d->fin = (d->hdr[0] & 0x80) != 0;
            d->opcode = d->hdr[0] & 0x0f;
            if(need == 2) {
                d->left = d->hdr[1] & 0x7f;
            } else {
                d->left = 0;
                for(size_t i = 2; i < need; i++)
                    d->left = d->left << 8 | d->hdr[i];
            }
            d->hdrlen = 0;
            if(d->opcode == 8)
                return -1; /* close */
            if(d->opcode == 1) {
                d->in_msg = 1;
                d->headlen = 0;
            }
            d->st = S_PAYLOAD;
            if(d->left == 0)
                goto frame_end;
            continue;
        }
        /* S_PAYLOAD */
        {
            size_t k = d->left < n ? (size_t)d->left : n;
            if(d->in_msg && (d->opcode == 1 || d->opcode == 0) && d->headlen < HEAD_MAX) {
                size_t h = HEAD_MAX - d->headlen < k ? HEAD_MAX - d->headlen : k;
                memcpy(d->head + d->headlen, b, h);
                d->headlen += h;
            }
            b += k;
            n -= k;
            d->left -= k;
            if(d->left)
                continue;
        }
    frame_end:
        if(d->fin && d->in_msg && (d->opcode == 1 || d->opcode == 0)) {
            message_done(r, d);
            d->in_msg = 0;
        }
        d->st = S_FRAME_HDR; /* a ping's payload is skipped: no pong needed here */
    }
    return 0;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const struct run *r, double q)
{
    size_t i = (size_t)((double)r->nlat * q);
    return r->lat[i >= r->nlat ? r->nlat - 1 : i];
}

static void usage(void)
{
    fprintf(stderr, "usage: mcs-wsdash --port P --clients N [--warmup S] [--secs S]\n"
                    "  the token comes from the environment, MCS_TOKEN\n");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"port", required_argument, 0, 'p'},
        {"clients", required_argument, 0, 'n'},
        {"warmup", required_argument, 0, 'w'},
        {"secs", required_argument, 0, 's'},
        {0, 0, 0, 0},
    };
    struct run r;
    struct dash *d = NULL;
    struct epoll_event ev, evs[64];
    unsigned char *buf = NULL;
    long port = 0, nc = 0, warm = 3, secs = 10, v;
    int ep = -1, ch, rc = 1;

    memset(&r, 0, sizeof(r));
    while((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if(mcs_parse_long(optarg, 0, 100000, &v)) {
            usage();
            return 2;
        }
        if(ch == 'p')
            port = v;
        else if(ch == 'n')
            nc = v;
        else if(ch == 'w')
            warm = v;
        else if(ch == 's')
            secs = v;
        else {
            usage();
            return 2;
        }
    }
    r.token = getenv("MCS_TOKEN");
    if(port < 1 || port > 65535 || nc < 1 || secs < 1 || !r.token || strlen(r.token) > 1000) {
        usage();
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    d = calloc((size_t)nc, sizeof(*d));
    r.lat = malloc(sizeof(double) * LAT_MAX);
    buf = malloc(RBUF);
    ep = epoll_create1(0);
    if(!d || !r.lat || !buf || ep < 0)
        goto out;
    for(long i = 0; i < nc; i++) {
        d[i].fd = -1;
        if(open_one(&d[i], (int)port, r.token)) {
            fprintf(stderr, "mcs-wsdash: client %ld: %s\n", i, strerror(errno));
            if(d[i].fd >= 0)
                close(d[i].fd);
            d[i].fd = -1;
            d[i].st = S_DEAD;
            r.closed++;
            continue;
        }
        ev.events = EPOLLIN;
        ev.data.ptr = &d[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, d[i].fd, &ev);
    }
    r.t_measure = mcs_now_ms() + warm * 1000;
    r.t_end = r.t_measure + secs * 1000;
    while(!g_stop && mcs_now_ms() < r.t_end + 200) {
        int k = epoll_wait(ep, evs, 64, 50);
        for(int i = 0; i < k; i++) {
            struct dash *c = evs[i].data.ptr;
            ssize_t got = read(c->fd, buf, RBUF);
            if(got < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if(got <= 0 || feed(&r, c, buf, (size_t)got)) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                c->st = S_DEAD;
                r.closed++;
            }
        }
    }
    qsort(r.lat, r.nlat, sizeof(double), cmp_dbl);
    printf("ws_clients_up: %ld\n", r.up);
    printf("ws_clients_closed: %ld\n", r.closed);
    printf("ws_frames: %zu\n", r.nlat);
    printf("ws_frames_expected: %ld\n", nc * secs);
    if(r.nlat) {
        printf("ws_frame_p50_ms: %.1f\n", pct(&r, 0.50));
        printf("ws_frame_p99_ms: %.1f\n", pct(&r, 0.99));
        printf("ws_frame_max_ms: %.1f\n", r.lat[r.nlat - 1]);
    }
    rc = r.nlat ? 0 : 1;
out:
    if(d)
        for(long i = 0; i < nc; i++)
            if(d[i].fd >= 0)
                close(d[i].fd);
    if(ep >= 0)
        close(ep);
    free(d);
    free(r.lat);
    free(buf);
    return rc;
}
