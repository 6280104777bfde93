/* secret.c - secretbox encryption of configuration secrets (see secret.h).
 * Owns nothing global. Thread: any. */
#include "secret.h"
#include "err.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PFX_LEN (sizeof(MCS_SECRET_PREFIX) - 1)
#define B64V sodium_base64_VARIANT_ORIGINAL

int secret_key_parse(struct mcs_secret_key *key, const char *text)
{
    size_t bin_len = 0;
    size_t tl;
    const char *end = NULL;

    if(sodium_init() < 0)
        return MCS_EINVAL;
    key->set = 0;
    if(!text)
        return MCS_EINVAL;
    tl = strlen(text);
    while(tl && (text[tl - 1] == '\n' || text[tl - 1] == '\r' || text[tl - 1] == ' '))
        tl--;
    if(tl == 2 * MCS_SECRET_KEYLEN &&
       sodium_hex2bin(key->k, sizeof(key->k), text, tl, NULL, &bin_len, &end) == 0 &&
       bin_len == MCS_SECRET_KEYLEN && end == text + tl) {
        key->set = 1;
        return 0;
    }
    if(sodium_base642bin(key->k, sizeof(key->k), text, tl, NULL, &bin_len, &end, B64V) == 0 &&
       bin_len == MCS_SECRET_KEYLEN && end == text + tl) {
        key->set = 1;
        return 0;
    }
    sodium_memzero(key->k, sizeof(key->k));
    return MCS_EINVAL;
}

int secret_key_from_env(struct mcs_secret_key *key)
{
    return secret_key_load(key, getenv("MCS_SECRET_KEY"), getenv("MCS_SECRET_KEY_FILE"));
}

int secret_key_load(struct mcs_secret_key *key, const char *v, const char *path)
{
    char buf[256];
    size_t n;
    FILE *f;
    int rc;

    key->set = 0;
    if(v && *v)
        return secret_key_parse(key, v);
    if(!path || !*path)
        return MCS_ENOTFOUND;
    f = fopen(path, "rb");
    if(!f)
        return MCS_EIO;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    rc = secret_key_parse(key, buf);
    if(rc && n == MCS_SECRET_KEYLEN) {
        /* 32 raw bytes */
        memcpy(key->k, buf, MCS_SECRET_KEYLEN);
        key->set = 1;
        rc = 0;
    }
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

size_t secret_enc_len(size_t plain_len)
{
    size_t bin = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plain_len;
    return PFX_LEN + sodium_base64_ENCODED_LEN(bin, B64V);
}

int secret_is_encrypted(const char *text)
{
    return text && !strncmp(text, MCS_SECRET_PREFIX, PFX_LEN);
}

int secret_encrypt(const struct mcs_secret_key *key, const char *plain, char *out, size_t outn)
{
    size_t pl = strlen(plain);
    size_t bl = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + pl;
    unsigned char *bin;

    if(!key->set)
        return MCS_EINVAL;
    if(outn < secret_enc_len(pl))
        return MCS_ETOOBIG;
    bin = malloc(bl);
    if(!bin)
        return MCS_ENOMEM;
    randombytes_buf(bin, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(bin + crypto_secretbox_NONCEBYTES, (const unsigned char *)plain, pl,
                          bin, key->k);
    memcpy(out, MCS_SECRET_PREFIX, PFX_LEN);
    sodium_bin2base64(out + PFX_LEN, outn - PFX_LEN, bin, bl, B64V);
    free(bin);
    return 0;
}

int secret_decrypt(const struct mcs_secret_key *key, const char *text, char *out, size_t outn)
{
    size_t tl, bl = 0, cap;
    unsigned char *bin = NULL;
    int rc = 0;

    if(!secret_is_encrypted(text)) {
        tl = strlen(text);
        if(tl + 1 > outn)
            return MCS_ETOOBIG;
        memcpy(out, text, tl + 1);
        return 0;
    }
    if(!key->set)
        return MCS_EINVAL;
    text += PFX_LEN;
    tl = strlen(text);
    cap = tl / 4 * 3 + 3;
    bin = malloc(cap);
    if(!bin)
        return MCS_ENOMEM;
    if(sodium_base642bin(bin, cap, text, tl, NULL, &bl, NULL, B64V) != 0) {
        rc = MCS_EPARSE;
        goto out;
    }
    if(bl < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
        rc = MCS_ECORRUPT;
        goto out;
    }
    size_t pl = bl - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    if(pl + 1 > outn) {
        rc = MCS_ETOOBIG;
        goto out;
    }
    if(crypto_secretbox_open_easy((unsigned char *)out, bin + crypto_secretbox_NONCEBYTES,
                                  bl - crypto_secretbox_NONCEBYTES, bin, key->k) != 0) {
        rc = MCS_ECORRUPT;
        goto out;
    }
    out[pl] = '\0';
out:
    free(bin);
    return rc;
}
