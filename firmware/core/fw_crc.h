/* fw_crc.h - CRC-32 (IEEE 802.3, reflected, init and final xor 0xFFFFFFFF)
 * for flash records and the persisted configuration. Owns nothing. No OS, no
 * heap, no table (small flash over speed: records are 32 bytes). Thread: any. */
#ifndef FW_CRC_H
#define FW_CRC_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32 of len bytes at p. fw_crc32("123456789", 9) == 0xCBF43926. */
uint32_t fw_crc32(const void *p, size_t len);

#endif
