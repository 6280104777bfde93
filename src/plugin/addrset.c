/* addrset.c - internal address lists (see addrset.h). Owns nothing.
 * Thread: any. */
#include "addrset.h"
#include "err.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int addr_parse(const char *text, unsigned char out[16])
{
    char buf[64];
    size_t len;
    struct in_addr v4;

    if(!text)
        return MCS_EINVAL;
    len = strcspn(text, "%");
    if(len == 0 || len >= sizeof(buf))
        return MCS_EINVAL;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if(inet_pton(AF_INET, buf, &v4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &v4, 4);
        return 0;
    }
    if(inet_pton(AF_INET6, buf, out) == 1)
        return 0;
    return MCS_EINVAL;
}

/* Parses one "addr" or "addr/bits" entry. */
static int parse_net(const char *e, struct addr_net *n)
{
    char buf[80];
    char *slash, *end = NULL;
    long bits;
    int v4;

    if(strlen(e) >= sizeof(buf))
        return MCS_EINVAL;
    snprintf(buf, sizeof(buf), "%s", e);
    slash = strchr(buf, '/');
    if(slash)
        *slash = '\0';
    v4 = strchr(buf, ':') == NULL;
    if(addr_parse(buf, n->a))
        return MCS_EINVAL;
    bits = v4 ? 32 : 128;
    if(slash) {
        bits = strtol(slash + 1, &end, 10);
        if(end == slash + 1 || *end || bits < 0 || bits > (v4 ? 32 : 128))
            return MCS_EINVAL;
    }
    n->bits = (unsigned)(v4 ? bits + 96 : bits);
    return 0;
}

int addrset_parse(struct addrset *s, const char *list, char *err, size_t errn)
{
    const char *p = list ? list : "";

    memset(s, 0, sizeof(*s));
    while(*p) {
        char e[80];
        size_t len;
        p += strspn(p, ", \t");
        len = strcspn(p, ", \t");
        if(!len)
            break;
        if(len >= sizeof(e) || s->n == ADDRSET_MAX) {
            snprintf(err, errn, "internal_addresses: too long an entry or more than %d entries",
                     ADDRSET_MAX);
            return MCS_ECONFIG;
        }
        memcpy(e, p, len);
        e[len] = '\0';
        if(parse_net(e, &s->net[s->n])) {
            snprintf(err, errn, "internal_addresses: '%.60s' is not an address or network", e);
            return MCS_ECONFIG;
        }
        s->n++;
        p += len;
    }
    return 0;
}

static int in_net(const struct addr_net *n, const unsigned char a[16])
{
    unsigned full = n->bits / 8, rest = n->bits % 8;

    if(memcmp(n->a, a, full) != 0)
        return 0;
    if(rest) {
        unsigned char mask = (unsigned char)(0xff << (8 - rest));
        if((n->a[full] & mask) != (a[full] & mask))
            return 0;
    }
    return 1;
}

int addrset_has(const struct addrset *s, const unsigned char a[16])
{
    for(size_t i = 0; i < s->n; i++)
        if(in_net(&s->net[i], a))
            return 1;
    return 0;
}
