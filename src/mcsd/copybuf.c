/* copybuf.c - PostgreSQL binary COPY encoding (network byte order; timestamps
 * as microseconds since 2000-01-01 UTC). Owns its buffer. Thread: store. */
#include "copybuf.h"
#include "err.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PG_EPOCH_OFFSET_S 946684800LL /* 2000-01-01 - 1970-01-01 */

int copybuf_init(struct mcs_copybuf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->cap = 64 * 1024;
    b->max = max;
    b->data = malloc(b->cap);
    return b->data ? 0 : MCS_ENOMEM;
}

void copybuf_cleanup(struct mcs_copybuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static int reserve(struct mcs_copybuf *b, size_t n)
{
    if(b->len + n <= b->cap)
        return 0;
    size_t ncap = b->cap * 2;
    while(ncap < b->len + n)
        ncap *= 2;
    if(ncap > b->max)
        return MCS_ETOOBIG;
    unsigned char *nd = realloc(b->data, ncap);
    if(!nd)
        return MCS_ENOMEM;
    b->data = nd;
    b->cap = ncap;
    return 0;
}

static void put16(struct mcs_copybuf *b, uint16_t v)
{
    v = htons(v);
    memcpy(b->data + b->len, &v, 2);
    b->len += 2;
}

static void put32(struct mcs_copybuf *b, uint32_t v)
{
    v = htonl(v);
    memcpy(b->data + b->len, &v, 4);
    b->len += 4;
}

static void put64(struct mcs_copybuf *b, uint64_t v)
{
    put32(b, (uint32_t)(v >> 32));
    put32(b, (uint32_t)v);
}

static void field_f8(struct mcs_copybuf *b, double d)
{
    uint64_t u;
    if(isnan(d)) {
        put32(b, 0xffffffffu); /* NULL */
        return;
    }
    memcpy(&u, &d, 8);
    put32(b, 8);
    put64(b, u);
}

static void field_i4(struct mcs_copybuf *b, int32_t v, int null)
{
    if(null) {
        put32(b, 0xffffffffu);
        return;
    }
    put32(b, 4);
    put32(b, (uint32_t)v);
}

static void field_i2(struct mcs_copybuf *b, int16_t v)
{
    put32(b, 2);
    put16(b, (uint16_t)v);
}

void copybuf_reset(struct mcs_copybuf *b)
{
    static const unsigned char sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    b->len = 0;
    b->rows = 0;
    memcpy(b->data, sig, sizeof(sig));
    b->len = sizeof(sig);
    put32(b, 0); /* flags */
    put32(b, 0); /* header extension length */
}

int copybuf_add(struct mcs_copybuf *b, const struct mcs_jrec *r)
{
    size_t snlen = strnlen(r->sn, MCS_SN_MAX);
    int rc = reserve(b, 2 + 11 * 4 + 8 * 5 + 4 * 4 + 2 * 2 + snlen);
    if(rc)
        return rc;
    put16(b, 11);
    put32(b, 8);
    put64(b, (uint64_t)((r->ts - PG_EPOCH_OFFSET_S) * 1000000LL));
    put32(b, (uint32_t)snlen);
    memcpy(b->data + b->len, r->sn, snlen);
    b->len += snlen;
    field_f8(b, r->v_raw);
    field_f8(b, r->ppm);
    field_f8(b, r->temp);
    field_f8(b, r->humi);
    field_i4(b, r->bat, r->bat == MCS_ABSENT_INT);
    field_i4(b, r->rssi, r->rssi == MCS_ABSENT_INT);
    field_i4(b, r->seq, 0);
    field_i2(b, r->err);
    field_i2(b, (int16_t)r->flags);
    b->rows++;
    return 0;
}

int copybuf_finish(struct mcs_copybuf *b)
{
    int rc = reserve(b, 2);
    if(rc)
        return rc;
    put16(b, 0xffff);
    return 0;
}
