/* copysub.c - mcs-copysub: the pipeline limit of the ingest benchmark. A
 * subscriber that turns each telemetry message into a sensor_data row and
 * binary-COPYs the rows into PostgreSQL, nothing else: no validation, no
 * journal, no registry, no Redis. What it sustains is what the broker plus
 * PostgreSQL (same table, same unique index) allow on this box, the ceiling
 * for mcsd's e2e_rate (bench/README.md: pipeline_limit_rate).
 * Owns one libpq connection and two row buffers (the MQTT client and its
 * loop are bench/subloop.c).
 * Threads: main (MQTT poll loop: parse, append rows) and one writer (COPY),
 * so that receiving and storing overlap as in mcsd.
 * Prints `name: value` lines on stdout at exit; diagnostics on stderr.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "numparse.h"
#include "subloop.h"
#include "timeutil.h"

#define PG_EPOCH_OFFSET_S 946684800LL /* 2000-01-01 - 1970-01-01 */
#define SN_MAX 32
#define ROW_MAX 160                         /* one encoded row, sn included */
#define BUF_MAX ((size_t)256 * 1024 * 1024) /* per buffer; the reader waits beyond */
#define COPY_COLUMNS "time, sn, v_raw, ppm, temp, humi, bat, rssi, seq, err, flags"

/* Set by the signal handler; the one mutable global it can reach. */
static volatile sig_atomic_t g_stop;

struct rowbuf {
    unsigned char *data;
    size_t len, cap;
    long rows;
    int64_t first_ms; /* monotonic time of its first row */
};

struct cs {
    struct sub sub;
    const char *db, *table;
    double k, b;
    long batch_rows, batch_ms;
    uint64_t parse_errors;
    /* Shared with the writer, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* writer: rows arrived or stop */
    pthread_cond_t room; /* reader: the buffer was taken */
    struct rowbuf cur;
    int done;       /* reader finished: flush and exit */
    int writer_err; /* the database connection failed */
    /* Writer only, read by main after join. */
    PGconn *pg;
    uint64_t stored, batches, copy_failed;
    int64_t last_commit_ms;
};

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: mcs-copysub --db CONNINFO --host H --port P [options]\n"
        "  --db CONNINFO   libpq connection string of the database\n"
        "  --table T       target table (sensor_data)\n"
        "  --k K --b B     ppm = K * v_raw + B for every row (1.5, -10: the bench devices)\n"
        "  --batch-rows N  rows per COPY at most (5000, as mcsd's BATCH_MAX_ROWS)\n"
        "  --batch-ms MS   age of the oldest row before a COPY (25, as BATCH_MAX_MS)\n" SUB_USAGE);
}

static int parse_opts(int argc, char **argv, struct cs *s)
{
    static const struct option lo[] = {
        SUB_LONGOPTS,
        {"db", required_argument, 0, 'D'},
        {"table", required_argument, 0, 'T'},
        {"k", required_argument, 0, 'k'},
        {"b", required_argument, 0, 'b'},
        {"batch-rows", required_argument, 0, 'R'},
        {"batch-ms", required_argument, 0, 'M'},
        {"help", no_argument, 0, 'H'},
        {0, 0, 0, 0},
    };
    int c, k, rc = -1;

    sub_defaults(&s->sub, "mcs-copysub", &g_stop);
    s->table = "sensor_data";
    s->k = 1.5;
    s->b = -10;
    s->batch_rows = 5000;
    s->batch_ms = 25;
    while((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        k = sub_opt(&s->sub, c, optarg);
        if(k < 0)
            goto usage_out;
        if(k > 0)
            continue;
        switch(c) {
        case 'D':
            s->db = optarg;
            break;
        case 'T':
            s->table = optarg;
            break;
        case 'k':
            if(mcs_parse_double(optarg, -1e9, 1e9, &s->k))
                goto bad;
            break;
        case 'b':
            if(mcs_parse_double(optarg, -1e9, 1e9, &s->b))
                goto bad;
            break;
        case 'R':
            if(mcs_parse_long(optarg, 1, 1000000, &s->batch_rows))
                goto bad;
            break;
        case 'M':
            if(mcs_parse_long(optarg, 1, 60000, &s->batch_ms))
                goto bad;
            break;
        case 'H':
            usage(stdout);
            exit(0);
        default:
            goto usage_out;
        }
    }
    if(optind < argc || !s->db || sub_check(&s->sub))
        goto usage_out;
    if(strlen(s->table) > 63) {
        fprintf(stderr, "mcs-copysub: --table too long\n");
        goto usage_out;
    }
    rc = 0;
    goto out;
bad:
    fprintf(stderr, "mcs-copysub: bad value '%s'\n", optarg);
usage_out:
    usage(stderr);
out:
    return rc;
}

/* -- binary COPY encoding (network byte order) ---------------------------- */

static void put16(unsigned char **p, uint16_t v)
{
    v = htons(v);
    memcpy(*p, &v, 2);
    *p += 2;
}

static void put32(unsigned char **p, uint32_t v)
{
    v = htonl(v);
    memcpy(*p, &v, 4);
    *p += 4;
}

static void put64(unsigned char **p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p, (uint32_t)v);
}

static void field_f8(unsigned char **p, double d)
{
    uint64_t u;

    if(isnan(d)) {
        put32(p, 0xffffffffu); /* NULL */
        return;
    }
    memcpy(&u, &d, 8);
    put32(p, 8);
    put64(p, u);
}

static void field_i4(unsigned char **p, double d)
{
    if(isnan(d)) {
        put32(p, 0xffffffffu);
        return;
    }
    put32(p, 4);
    put32(p, (uint32_t)(int32_t)d);
}

static void field_i2(unsigned char **p, int16_t v)
{
    put32(p, 2);
    put16(p, (uint16_t)v);
}

/* Starts buffer b with the binary COPY signature and header. */
static void rowbuf_reset(struct rowbuf *b)
{
    static const unsigned char sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    unsigned char *p = b->data;

    memcpy(p, sig, sizeof(sig));
    p += sizeof(sig);
    put32(&p, 0); /* flags */
    put32(&p, 0); /* header extension length */
    b->len = (size_t)(p - b->data);
    b->rows = 0;
}

static int rowbuf_init(struct rowbuf *b)
{
    memset(b, 0, sizeof(*b));
    b->cap = 1024 * 1024;
    b->data = malloc(b->cap);
    if(!b->data)
        return -1;
    rowbuf_reset(b);
    return 0;
}

/* Room for one more row; grows up to BUF_MAX. Returns 0, or -1 when full. */
static int rowbuf_reserve(struct rowbuf *b)
{
    size_t ncap;
    unsigned char *nd;

    if(b->len + ROW_MAX + 2 <= b->cap)
        return 0;
    ncap = b->cap * 2;
    if(ncap > BUF_MAX)
        return -1;
    nd = realloc(b->data, ncap);
    if(!nd)
        return -1;
    b->data = nd;
    b->cap = ncap;
    return 0;
}

/* The numbers of one telemetry payload, NAN where absent. One pass over the
 * members, as mcsd's own parser does. Returns 0, or -1 without ts/seq. */
struct reading {
    double ts, seq, v_raw, temp, humi, bat, rssi, err;
};

static int parse_reading(const char *buf, size_t len, struct reading *r)
{
    cJSON *root = cJSON_ParseWithLength(buf, len), *it;
    double *slot;
    int rc = -1;

    r->ts = r->seq = r->v_raw = r->temp = r->humi = r->bat = r->rssi = r->err = NAN;
    if(!root)
        goto out;
    for(it = root->child; it; it = it->next) {
        const char *k = it->string;
        if(!k || !cJSON_IsNumber(it))
            continue;
        slot = !strcmp(k, "ts")      ? &r->ts
               : !strcmp(k, "seq")   ? &r->seq
               : !strcmp(k, "v_raw") ? &r->v_raw
               : !strcmp(k, "temp")  ? &r->temp
               : !strcmp(k, "humi")  ? &r->humi
               : !strcmp(k, "bat")   ? &r->bat
               : !strcmp(k, "rssi")  ? &r->rssi
               : !strcmp(k, "err")   ? &r->err
                                     : NULL;
        if(slot)
            *slot = it->valuedouble;
    }
    rc = isnan(r->ts) || isnan(r->seq) ? -1 : 0;
out:
    cJSON_Delete(root);
    return rc;
}

/* Appends the row of one message to s->cur (caller holds s->mu). */
static void append_row(struct cs *s, const char *sn, size_t snlen, const struct reading *r)
{
    struct rowbuf *b = &s->cur;
    unsigned char *p;

    if(b->rows == 0)
        b->first_ms = mcs_mono_ms();
    p = b->data + b->len;
    put16(&p, 11);
    put32(&p, 8);
    put64(&p, (uint64_t)(((int64_t)r->ts - PG_EPOCH_OFFSET_S) * 1000000LL));
    put32(&p, (uint32_t)snlen);
    memcpy(p, sn, snlen);
    p += snlen;
    field_f8(&p, r->v_raw);
    field_f8(&p, isnan(r->v_raw) ? NAN : s->k * r->v_raw + s->b);
    field_f8(&p, r->temp);
    field_f8(&p, r->humi);
    field_i4(&p, r->bat);
    field_i4(&p, r->rssi);
    field_i4(&p, r->seq);
    field_i2(&p, isnan(r->err) ? 0 : (int16_t)r->err);
    field_i2(&p, 0);
    b->len = (size_t)(p - b->data);
    b->rows++;
}

/* -- MQTT side (main thread) ---------------------------------------------- */

static void on_msg(void *user, const struct mosquitto_message *m)
{
    struct cs *s = user;
    struct reading r;
    const char *a, *z;

    /* The serial number is the topic level between the prefix and "up". */
    a = strchr(m->topic, '/');
    z = strrchr(m->topic, '/');
    if(!a || z <= a + 1 || (size_t)(z - a - 1) > SN_MAX ||
       parse_reading(m->payload, (size_t)m->payloadlen, &r)) {
        s->parse_errors++;
        return;
    }
    pthread_mutex_lock(&s->mu);
    while(rowbuf_reserve(&s->cur) && !s->writer_err && !g_stop)
        pthread_cond_wait(&s->room, &s->mu); /* full: wait for the writer */
    if(!s->writer_err && !g_stop) {
        append_row(s, a + 1, (size_t)(z - a - 1), &r);
        if(s->cur.rows >= s->batch_rows)
            pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

static int writer_failed(void *user)
{
    struct cs *s = user;
    int e;
    pthread_mutex_lock(&s->mu);
    e = s->writer_err;
    pthread_mutex_unlock(&s->mu);
    return e;
}

/* -- writer thread -------------------------------------------------------- */

/* COPYs the rows of b into the table (one transaction). Returns 0 or -1. */
static int copy_rows(struct cs *s, struct rowbuf *b)
{
    char sql[160];
    unsigned char trailer[2] = {0xff, 0xff};
    PGresult *r;
    int rc = -1;

    snprintf(sql, sizeof(sql), "COPY %s (" COPY_COLUMNS ") FROM STDIN (FORMAT binary)", s->table);
    r = PQexec(s->pg, sql);
    if(PQresultStatus(r) != PGRES_COPY_IN) {
        fprintf(stderr, "mcs-copysub: %s", PQerrorMessage(s->pg));
        PQclear(r);
        goto out;
    }
    PQclear(r);
    if(PQputCopyData(s->pg, (const char *)b->data, (int)b->len) != 1 ||
       PQputCopyData(s->pg, (const char *)trailer, 2) != 1 || PQputCopyEnd(s->pg, NULL) != 1) {
        fprintf(stderr, "mcs-copysub: COPY: %s", PQerrorMessage(s->pg));
        goto out;
    }
    rc = 0;
    while((r = PQgetResult(s->pg)) != NULL) {
        if(PQresultStatus(r) != PGRES_COMMAND_OK) {
            if(s->copy_failed++ < 3)
                fprintf(stderr, "mcs-copysub: COPY refused: %s", PQresultErrorMessage(r));
            rc = -1;
        }
        PQclear(r);
    }
out:
    return rc;
}

static void *writer_main(void *arg)
{
    struct cs *s = arg;
    struct rowbuf spare, tmp;
    struct timespec ts;
    int64_t age;
    int quit = 0;

    if(rowbuf_init(&spare)) {
        pthread_mutex_lock(&s->mu);
        s->writer_err = 1;
        pthread_cond_broadcast(&s->room);
        pthread_mutex_unlock(&s->mu);
        return NULL;
    }
    while(!quit) {
        pthread_mutex_lock(&s->mu);
        for(;;) {
            if(s->done || s->writer_err)
                break;
            if(s->cur.rows >= s->batch_rows)
                break;
            age = s->cur.rows ? mcs_mono_ms() - s->cur.first_ms : 0;
            if(s->cur.rows && age >= s->batch_ms)
                break;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 5 * 1000000L; /* re-check the batch age every 5 ms */
            if(ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        quit = s->done || s->writer_err;
        /* Take the filled buffer, leave the empty one to the reader. */
        tmp = s->cur;
        s->cur = spare;
        spare = tmp;
        pthread_cond_broadcast(&s->room);
        pthread_mutex_unlock(&s->mu);
        if(spare.rows > 0) {
            if(copy_rows(s, &spare) == 0) {
                s->stored += (uint64_t)spare.rows;
                s->last_commit_ms = mcs_mono_ms();
            }
            s->batches++;
            if(PQstatus(s->pg) != CONNECTION_OK) {
                pthread_mutex_lock(&s->mu);
                s->writer_err = 1;
                pthread_cond_broadcast(&s->room);
                pthread_mutex_unlock(&s->mu);
                quit = 1;
            }
        }
        rowbuf_reset(&spare);
        /* After the reader is done, one more round takes what it left. */
        if(quit && s->done && !s->writer_err) {
            pthread_mutex_lock(&s->mu);
            quit = s->cur.rows == 0;
            pthread_mutex_unlock(&s->mu);
        }
    }
    free(spare.data);
    return NULL;
}

/* -- main ----------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct cs s;
    struct mosquitto *mosq = NULL;
    struct sigaction sa;
    pthread_t th;
    double span;
    int rc = 1, started = 0;

    memset(&s, 0, sizeof(s));
    if(parse_opts(argc, argv, &s))
        return 2;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    pthread_cond_init(&s.room, NULL);
    if(rowbuf_init(&s.cur))
        goto out;

    s.pg = PQconnectdb(s.db);
    if(PQstatus(s.pg) != CONNECTION_OK) {
        fprintf(stderr, "mcs-copysub: database: %s", PQerrorMessage(s.pg));
        goto out;
    }
    s.sub.on_msg = on_msg;
    s.sub.should_stop = writer_failed;
    s.sub.arg = &s;
    mosquitto_lib_init();
    if(pthread_create(&th, NULL, writer_main, &s))
        goto out;
    started = 1;
    mosq = sub_connect(&s.sub);
    if(mosq)
        sub_run(&s.sub, mosq);
    sub_close(&s.sub, mosq);
    mosq = NULL;
    pthread_mutex_lock(&s.mu);
    s.done = 1;
    pthread_cond_broadcast(&s.cv);
    pthread_cond_broadcast(&s.room);
    pthread_mutex_unlock(&s.mu);
    pthread_join(th, NULL);
    started = 0;

    span = s.stored > 0 ? (double)(s.last_commit_ms - s.sub.first_ms) / 1000.0 : 0;
    printf("received: %" PRIu64 "\n", s.sub.received);
    printf("stored: %" PRIu64 "\n", s.stored);
    printf("parse_errors: %" PRIu64 "\n", s.parse_errors);
    printf("batches: %" PRIu64 "\n", s.batches);
    printf("copy_failed: %" PRIu64 "\n", s.copy_failed);
    printf("elapsed_s: %.3f\n", span);
    printf("rate: %.1f\n", span > 0 ? (double)s.stored / span : 0.0);
    fflush(stdout);
    rc = s.sub.subscribed && !s.writer_err ? 0 : 1;
out:
    if(started) {
        pthread_mutex_lock(&s.mu);
        s.done = 1;
        pthread_cond_broadcast(&s.cv);
        pthread_mutex_unlock(&s.mu);
        pthread_join(th, NULL);
    }
    sub_close(&s.sub, mosq);
    mosquitto_lib_cleanup();
    if(s.pg)
        PQfinish(s.pg);
    free(s.cur.data);
    pthread_cond_destroy(&s.room);
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.mu);
    return rc;
}
