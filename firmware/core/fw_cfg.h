/* fw_cfg.h - the configuration the device keeps across power cuts (EEPROM
 * through the HAL): calibration (R-MQ-4 calib), the reporting interval and
 * a temporary rate (debug / set_rate) with its end time on the RTC, so that
 * debug mode reverts by itself also across a reboot; the next seq after a
 * planned reboot. Stored as this struct followed by nothing, CRC-32 last;
 * a bad CRC means the defaults (and err 50, calibration lost). Owns nothing
 * beyond the caller's struct. No OS, no heap. Thread: the core's main loop. */
#ifndef FW_CFG_H
#define FW_CFG_H

#include "fw_hal.h"

#include <stdint.h>

#define FW_CFG_MAGIC 0x4353434Du /* "MCSC" */
#define FW_CFG_VERSION 1u
#define FW_INTERVAL_MS 10000u /* R-FW-1 default reporting interval */

/* All members 4-byte sized: no padding, the same bytes on every port. */
struct fw_cfg {
    uint32_t magic;
    uint32_t version;
    float k, b, t_comp; /* calibration as the server sent it last */
    uint32_t interval_ms;
    uint32_t rate_ms;    /* temporary interval while rate_until is ahead */
    uint32_t rate_until; /* RTC seconds; 0 = none */
    uint32_t seq_next;
    uint32_t crc;
};

/* Fills *c with the defaults (k 1, b 0, t_comp 0, 10 s). */
void fw_cfg_defaults(struct fw_cfg *c);

/* Loads *c. FW_OK; FW_E_CRC (nothing valid stored: *c has the defaults);
 * FW_E_IO (read failed: defaults). */
int fw_cfg_load(const struct fw_hal *hal, struct fw_cfg *c);

/* Stores *c with a fresh CRC. FW_OK or FW_E_IO. */
int fw_cfg_save(const struct fw_hal *hal, struct fw_cfg *c);

#endif
