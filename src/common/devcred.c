/* devcred.c - device password derivation with libsodium's SHA-256.
 * Owns nothing. Thread: any (sodium_init is called once, idempotent). */
#include "devcred.h"
#include "err.h"

#include <sodium.h>
#include <string.h>

#define SN_BROADCAST "broadcast"

int mcs_sn_reserved(const char *sn, size_t len)
{
    return len == sizeof(SN_BROADCAST) - 1 && !memcmp(sn, SN_BROADCAST, len);
}

int mcs_sn_valid(const char *sn, size_t len)
{
    if(len == 0 || len > 32 || mcs_sn_reserved(sn, len))
        return 0;
    for(size_t i = 0; i < len; i++) {
        char c = sn[i];
        if(!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int mcs_device_password(const char *sn, const char *vendor_secret, char out[17])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state st;
    char hex[2 * crypto_hash_sha256_BYTES + 1];

    if(!sn || !mcs_sn_valid(sn, strlen(sn)))
        return MCS_EINVAL;
    if(sodium_init() < 0)
        return MCS_ENOMEM;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)sn, strlen(sn));
    crypto_hash_sha256_update(&st, (const unsigned char *)vendor_secret, strlen(vendor_secret));
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    memcpy(out, hex, 16);
    out[16] = '\0';
    return 0;
}
