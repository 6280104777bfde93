/* fw_crc.c - bitwise CRC-32 (fw_crc.h). Owns nothing. Thread: any. */
#include "fw_crc.h"

uint32_t fw_crc32(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint32_t crc = 0xFFFFFFFFu;

    while(len--) {
        crc ^= *b++;
        for(int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}
