/* fw_cfg.c - persisted configuration with CRC (fw_cfg.h). Owns nothing.
 * No OS, no heap. Thread: the core's main loop. */
#include "fw_cfg.h"
#include "fw_crc.h"
#include "fw_err.h"

#include <string.h>

void fw_cfg_defaults(struct fw_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->magic = FW_CFG_MAGIC;
    c->version = FW_CFG_VERSION;
    c->k = 1.0f;
    c->interval_ms = FW_INTERVAL_MS;
}

int fw_cfg_load(const struct fw_hal *hal, struct fw_cfg *c)
{
    struct fw_cfg t;

    fw_cfg_defaults(c);
    if(hal->cfg_read(hal->ctx, &t, sizeof(t)) != FW_OK)
        return FW_E_IO;
    if(t.magic != FW_CFG_MAGIC || t.version != FW_CFG_VERSION ||
       t.crc != fw_crc32(&t, offsetof(struct fw_cfg, crc)))
        return FW_E_CRC;
    if(t.interval_ms < 1000u || t.interval_ms > 3600000u)
        t.interval_ms = FW_INTERVAL_MS;
    *c = t;
    return FW_OK;
}

int fw_cfg_save(const struct fw_hal *hal, struct fw_cfg *c)
{
    c->magic = FW_CFG_MAGIC;
    c->version = FW_CFG_VERSION;
    c->crc = fw_crc32(c, offsetof(struct fw_cfg, crc));
    return hal->cfg_write(hal->ctx, c, sizeof(*c)) == FW_OK ? FW_OK : FW_E_IO;
}
