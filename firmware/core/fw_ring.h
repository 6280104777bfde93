/* fw_ring.h - the offline ring (R-FW-1, manual §2.2 断网模式): readings taken
 * while the link is down, FW_RING_SLOTS records in the HAL's flash record
 * store, sent oldest first after reconnect, the oldest dropped when full.
 *
 * Power-loss safety: there is no index block to tear. Each record carries a
 * write counter and a CRC-32; at boot the ring is rebuilt by scanning every
 * slot (a record whose CRC fails was torn by a power cut: it is skipped and
 * erased). A record is erased once the broker acknowledged it.
 *
 * Record layout (FW_REC_SIZE = 32 bytes, little endian):
 *   0 magic "MCSR" | 4 ctr u32 | 8 ts u32 | 12 seq u16 | 14 flags u16 |
 *   16 v_raw i32 (0.1 mV) | 20 temp i16 (0.1 C) | 22 humi u16 (0.1 %) |
 *   24 bat u8 | 25 rssi i8 | 26 err u8 | 27 reserved | 28 crc32 of 0..27
 *
 * Owns the RAM view of the ring (counters, pending bitmap), not the flash.
 * No OS, no heap. Thread: the core's main loop. */
#ifndef FW_RING_H
#define FW_RING_H

#include "fw_hal.h"

#include <stdint.h>

#define FW_REC_F_TEMP 1u /* temp valid */
#define FW_REC_F_HUMI 2u /* humi valid */

/* One reading, as kept in flash. */
struct fw_rec {
    uint32_t ts;
    uint16_t seq;
    uint16_t flags;
    int32_t v_raw_d; /* tenths of mV */
    int16_t temp_d;  /* tenths of deg C */
    uint16_t humi_d; /* tenths of % */
    uint8_t bat;
    int8_t rssi;
    uint8_t err;
};

struct fw_ring {
    const struct fw_hal *hal;
    uint32_t head; /* counter of the next record; counters start at 1 */
    uint32_t tail; /* oldest counter that may still be pending */
    uint32_t next; /* next counter to send; tail <= next <= head */
    uint32_t npending;
    uint32_t dropped; /* oldest records overwritten because the ring was full */
    uint32_t torn;    /* records found with a bad CRC */
    uint8_t pending[(FW_RING_SLOTS + 7) / 8];
};

/* Encodes/decodes the flash layout above. decode returns FW_E_CRC for a
 * torn or erased slot. */
void fw_rec_encode(const struct fw_rec *r, uint32_t ctr, uint8_t out[FW_REC_SIZE]);
int fw_rec_decode(const uint8_t in[FW_REC_SIZE], struct fw_rec *r, uint32_t *ctr);

/* Rebuilds the ring from flash (boot). Torn records are counted in ->torn
 * and erased. Returns FW_OK (a failing slot read counts as torn). */
int fw_ring_open(struct fw_ring *g, const struct fw_hal *hal);

/* Appends r. When the ring is full the oldest record is dropped first and
 * *dropped (may be NULL) is set to 1. Returns FW_OK or FW_E_IO (the write
 * failed: the reading is lost). */
int fw_ring_push(struct fw_ring *g, const struct fw_rec *r, int *dropped);

/* The oldest record not yet sent since the last rewind, in write order,
 * skipping torn ones. FW_OK with *r and *ctr, or FW_E_AGAIN when there is
 * none. Does not advance: call fw_ring_sent() once it was handed over. */
int fw_ring_peek(struct fw_ring *g, struct fw_rec *r, uint32_t *ctr);
void fw_ring_sent(struct fw_ring *g, uint32_t ctr);

/* The broker has the record ctr: erase it. Unknown or dropped ctr: no-op. */
void fw_ring_ack(struct fw_ring *g, uint32_t ctr);

/* After a link loss: everything not acknowledged is to be sent again. */
void fw_ring_rewind(struct fw_ring *g);

/* Records waiting (sent but unacknowledged ones included). */
uint32_t fw_ring_count(const struct fw_ring *g);

#endif
