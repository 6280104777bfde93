/* utf8.c - the UTF-8 decoder of the text checks (see utf8.h).
 * Owns nothing. Thread: any. */
#include "utf8.h"

#include <string.h>

size_t mcs_utf8_next(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c, v;
    size_t k;

    if(!n)
        return 0;
    c = s[0];
    if(c < 0x80) {
        *cp = c;
        return 1;
    }
    if(c >= 0xC2 && c <= 0xDF) {
        k = 1;
        v = c & 0x1F;
    } else if(c >= 0xE0 && c <= 0xEF) {
        k = 2;
        v = c & 0x0F;
    } else if(c >= 0xF0 && c <= 0xF4) {
        k = 3;
        v = c & 0x07;
    } else {
        return 0;
    }
    if(k >= n)
        return 0;
    for(size_t j = 1; j <= k; j++) {
        if((s[j] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[j] & 0x3F);
    }
    if((k == 2 && v < 0x800) || (k == 3 && (v < 0x10000 || v > 0x10FFFF)) ||
       (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return k + 1;
}

void mcs_utf8_clean(const char *in, char *out, size_t outn)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t n = strlen(in), o = 0;
    while(n > 0) {
        unsigned cp;
        size_t l = mcs_utf8_next(s, n, &cp);
        const unsigned char *src = s;
        size_t take = l;
        if(l == 0) { /* ill-formed here */
            size_t need = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 1;
            if(need > n)
                break; /* a character cut off at the end (snprintf): dropped */
        }
        if(l == 0) {
            src = (const unsigned char *)"?";
            take = 1;
            l = 1;
        }
        if(o + take >= outn)
            break;
        memcpy(out + o, src, take);
        o += take;
        s += l;
        n -= l;
    }
    out[o] = '\0';
}
