/* fw_ring.c - the offline ring over the flash record store (fw_ring.h).
 * Owns the RAM view of the ring. No OS, no heap. Thread: the core's main
 * loop. */
#include "fw_ring.h"
#include "fw_crc.h"
#include "fw_err.h"

#include <string.h>

static const uint8_t MAGIC[4] = {'M', 'C', 'S', 'R'};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) | ((uint32_t)get16(p + 2) << 16);
}

void fw_rec_encode(const struct fw_rec *r, uint32_t ctr, uint8_t out[FW_REC_SIZE])
{
    memset(out, 0, FW_REC_SIZE);
    memcpy(out, MAGIC, 4);
    put32(out + 4, ctr);
    put32(out + 8, r->ts);
    put16(out + 12, r->seq);
    put16(out + 14, r->flags);
    put32(out + 16, (uint32_t)r->v_raw_d);
    put16(out + 20, (uint16_t)r->temp_d);
    put16(out + 22, r->humi_d);
    out[24] = r->bat;
    out[25] = (uint8_t)r->rssi;
    out[26] = r->err;
    put32(out + 28, fw_crc32(out, 28));
}

int fw_rec_decode(const uint8_t in[FW_REC_SIZE], struct fw_rec *r, uint32_t *ctr)
{
    if(memcmp(in, MAGIC, 4) != 0 || get32(in + 28) != fw_crc32(in, 28))
        return FW_E_CRC;
    *ctr = get32(in + 4);
    r->ts = get32(in + 8);
    r->seq = get16(in + 12);
    r->flags = get16(in + 14);
    r->v_raw_d = (int32_t)get32(in + 16);
    r->temp_d = (int16_t)get16(in + 20);
    r->humi_d = get16(in + 22);
    r->bat = in[24];
    r->rssi = (int8_t)in[25];
    r->err = in[26];
    return *ctr ? FW_OK : FW_E_CRC;
}

static uint16_t slot_of(uint32_t ctr)
{
    return (uint16_t)(ctr % FW_RING_SLOTS);
}

static int bit(const struct fw_ring *g, uint32_t ctr)
{
    uint16_t s = slot_of(ctr);
    return (g->pending[s >> 3] >> (s & 7)) & 1;
}

static void set_bit(struct fw_ring *g, uint32_t ctr, int on)
{
    uint16_t s = slot_of(ctr);
    uint8_t m = (uint8_t)(1u << (s & 7));

    if(on && !(g->pending[s >> 3] & m)) {
        g->pending[s >> 3] |= m;
        g->npending++;
    }
    else if(!on && (g->pending[s >> 3] & m)) {
        g->pending[s >> 3] &= (uint8_t)~m;
        g->npending--;
    }
}

/* Moves tail past records that are no longer pending. */
static void settle(struct fw_ring *g)
{
    while(g->tail != g->head && !bit(g, g->tail))
        g->tail++;
    if((int32_t)(g->next - g->tail) < 0)
        g->next = g->tail;
}

int fw_ring_open(struct fw_ring *g, const struct fw_hal *hal)
{
    uint8_t buf[FW_REC_SIZE];
    struct fw_rec r;
    uint32_t ctr, max = 0, min = 0;
    int any = 0;

    memset(g, 0, sizeof(*g));
    g->hal = hal;
    /* First pass: the newest counter, and torn slots. */
    for(uint16_t s = 0; s < FW_RING_SLOTS; s++) {
        if(hal->rec_read(hal->ctx, s, buf) != FW_OK) {
            g->torn++;
            continue;
        }
        if(fw_rec_decode(buf, &r, &ctr) != FW_OK) {
            /* An erased slot is all 0xFF or all zero; anything else with a
             * bad CRC is a write a power cut interrupted. */
            int blank = 1;
            for(int i = 0; i < FW_REC_SIZE; i++)
                if(buf[i] != buf[0] || (buf[0] != 0 && buf[0] != 0xFF))
                    blank = 0;
            if(!blank) {
                g->torn++;
                hal->rec_erase(hal->ctx, s);
            }
            continue;
        }
        if(slot_of(ctr) != s) {
            g->torn++;
            hal->rec_erase(hal->ctx, s);
            continue;
        }
        if(!any || (int32_t)(ctr - max) > 0)
            max = ctr;
        any = 1;
    }
    if(!any) {
        g->head = g->tail = g->next = 1;
        return FW_OK;
    }
    /* Second pass: everything within one ring length of the newest is
     * pending; the oldest of those is the tail. */
    for(uint16_t s = 0; s < FW_RING_SLOTS; s++) {
        if(hal->rec_read(hal->ctx, s, buf) != FW_OK || fw_rec_decode(buf, &r, &ctr) != FW_OK ||
           slot_of(ctr) != s)
            continue;
        if(max - ctr >= FW_RING_SLOTS)
            continue;
        set_bit(g, ctr, 1);
        if(g->npending == 1 || (int32_t)(ctr - min) < 0)
            min = ctr;
    }
    g->head = max + 1;
    g->tail = g->next = min;
    return FW_OK;
}

int fw_ring_push(struct fw_ring *g, const struct fw_rec *r, int *dropped)
{
    uint8_t buf[FW_REC_SIZE];
    uint32_t ctr = g->head;

    if(dropped)
        *dropped = 0;
    if(g->head - g->tail >= FW_RING_SLOTS) {
        /* Full: the slot of the new record holds the oldest one. */
        if(bit(g, g->tail)) {
            set_bit(g, g->tail, 0);
            g->dropped++;
            if(dropped)
                *dropped = 1;
        }
        g->tail++;
    }
    fw_rec_encode(r, ctr, buf);
    if(g->hal->rec_write(g->hal->ctx, slot_of(ctr), buf) != FW_OK) {
        /* The counter is not used: the next push writes that slot again. */
        settle(g);
        return FW_E_IO;
    }
    set_bit(g, ctr, 1);
    g->head++;
    settle(g);
    return FW_OK;
}

int fw_ring_peek(struct fw_ring *g, struct fw_rec *r, uint32_t *ctr)
{
    uint8_t buf[FW_REC_SIZE];
    uint32_t c;

    while(g->next != g->head) {
        if(!bit(g, g->next)) {
            g->next++;
            continue;
        }
        if(g->hal->rec_read(g->hal->ctx, slot_of(g->next), buf) != FW_OK ||
           fw_rec_decode(buf, r, &c) != FW_OK || c != g->next) {
            /* Went bad in flash since boot: skip it. */
            g->torn++;
            g->hal->rec_erase(g->hal->ctx, slot_of(g->next));
            set_bit(g, g->next, 0);
            g->next++;
            settle(g);
            continue;
        }
        *ctr = c;
        return FW_OK;
    }
    return FW_E_AGAIN;
}

void fw_ring_sent(struct fw_ring *g, uint32_t ctr)
{
    if(ctr == g->next)
        g->next++;
}

void fw_ring_ack(struct fw_ring *g, uint32_t ctr)
{
    if((int32_t)(ctr - g->tail) < 0 || (int32_t)(ctr - g->head) >= 0 || !bit(g, ctr))
        return;
    g->hal->rec_erase(g->hal->ctx, slot_of(ctr));
    set_bit(g, ctr, 0);
    settle(g);
}

void fw_ring_rewind(struct fw_ring *g)
{
    g->next = g->tail;
}

uint32_t fw_ring_count(const struct fw_ring *g)
{
    return g->npending;
}
