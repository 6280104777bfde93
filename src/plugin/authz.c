/* authz.c - identity checks and topic rules of the broker plugin (see
 * authz.h). Owns nothing; pure functions over its arguments.
 * Thread: any. */
#include "authz.h"
#include "devcred.h"
#include "err.h"

#include <stdio.h>
#include <string.h>

#define DEVICE_PREFIX_LEN (sizeof(AUTHZ_DEVICE_USER_PREFIX) - 1)

static const char *const reason_names[] = {
#define AUTHZ_R_NAME(name, str) str,
    AUTHZ_REASONS(AUTHZ_R_NAME)
#undef AUTHZ_R_NAME
};

const char *authz_reason_name(enum authz_reason r)
{
    if((int)r < 0 || r >= AUTHZ_R_COUNT)
        return "?";
    return reason_names[r];
}

int authz_utf8_ok(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while(i < len) {
        unsigned c = p[i], cp, need, min;
        if(c < 0x80) {
            if(c < 0x20 || c == 0x7f)
                return 0;
            i++;
            continue;
        }
        if(c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
            min = 0x80;
        }
        else if(c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
            min = 0x800;
        }
        else if(c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
            min = 0x10000;
        }
        else {
            return 0; /* continuation byte first, 0xc0/0xc1 or > U+10FFFF */
        }
        if(len - i - 1 < need)
            return 0;
        for(unsigned k = 1; k <= need; k++) {
            if((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if(cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
           (cp >= 0x80 && cp <= 0x9f))
            return 0;
        i += need + 1;
    }
    return 1;
}

enum authz_reason authz_identify(const struct authz_limits *lim, const char *username,
                                 const char *password, const char *clientid, enum authz_role *role,
                                 char sn[AUTHZ_SN_MAX + 1])
{
    size_t ulen, plen, clen, mplen;
    const char *mp;
    int is_mcsd_id;

    *role = AUTHZ_NONE;
    sn[0] = '\0';
    if(!username || !password || !username[0] || !password[0])
        return AUTHZ_R_NO_CREDENTIALS;
    /* Bounded scans: a hostile 64 KiB field costs no more than the limit. */
    ulen = strnlen(username, lim->max_username + 1);
    plen = strnlen(password, lim->max_password + 1);
    clen = clientid ? strnlen(clientid, lim->max_clientid + 1) : 0;
    if(ulen > lim->max_username || plen > lim->max_password || clen > lim->max_clientid)
        return AUTHZ_R_BAD_INPUT;
    if(!authz_utf8_ok(username, ulen) || !authz_utf8_ok(password, plen) ||
       (clientid && !authz_utf8_ok(clientid, clen)))
        return AUTHZ_R_BAD_INPUT;
    if(!strncmp(username, AUTHZ_DEVICE_USER_PREFIX, DEVICE_PREFIX_LEN)) {
        const char *s = username + DEVICE_PREFIX_LEN;
        size_t n = ulen - DEVICE_PREFIX_LEN;
        /* Only [A-Za-z0-9_-]{1,32}: quotes, spaces, semicolons and the like
         * (an SN that looks like SQL) never get further than here. */
        if(!mcs_sn_valid(s, n))
            return AUTHZ_R_BAD_INPUT;
        if(!clientid || strcmp(clientid, username) != 0)
            return AUTHZ_R_CLIENTID;
        memcpy(sn, s, n);
        sn[n] = '\0';
        *role = AUTHZ_DEVICE;
        return AUTHZ_R_OK;
    }
    if(!strcmp(username, AUTHZ_WORKER_USER))
        *role = AUTHZ_WORKER;
    else if(!strcmp(username, AUTHZ_ADMIN_USER))
        *role = AUTHZ_ADMIN;
    else if(!strcmp(username, AUTHZ_MCSD_USER))
        *role = AUTHZ_MCSD;
    else
        return AUTHZ_R_UNKNOWN_USER;
    mp = lim->mcsd_prefix ? lim->mcsd_prefix : AUTHZ_MCSD_CLIENTID_PREFIX;
    mplen = strlen(mp);
    is_mcsd_id = clientid && mplen && !strncmp(clientid, mp, mplen);
    if(!clientid || !clientid[0] ||
       !strncmp(clientid, AUTHZ_DEVICE_USER_PREFIX, DEVICE_PREFIX_LEN) ||
       (*role == AUTHZ_MCSD ? !is_mcsd_id || clen <= mplen : is_mcsd_id)) {
        *role = AUTHZ_NONE;
        return AUTHZ_R_CLIENTID;
    }
    return AUTHZ_R_OK;
}

enum authz_role authz_role_of(const char *username, const char **sn, size_t *snlen)
{
    *sn = NULL;
    *snlen = 0;
    if(!username)
        return AUTHZ_NONE;
    if(!strncmp(username, AUTHZ_DEVICE_USER_PREFIX, DEVICE_PREFIX_LEN)) {
        const char *s = username + DEVICE_PREFIX_LEN;
        size_t n = strnlen(s, AUTHZ_SN_MAX + 1);
        if(!mcs_sn_valid(s, n))
            return AUTHZ_NONE;
        *sn = s;
        *snlen = n;
        return AUTHZ_DEVICE;
    }
    if(!strcmp(username, AUTHZ_WORKER_USER))
        return AUTHZ_WORKER;
    if(!strcmp(username, AUTHZ_ADMIN_USER))
        return AUTHZ_ADMIN;
    if(!strcmp(username, AUTHZ_MCSD_USER))
        return AUTHZ_MCSD;
    return AUTHZ_NONE;
}

int authz_rules_init(struct authz_rules *r, const char *prefix)
{
    size_t n = prefix ? strlen(prefix) : 0;
    int w = 0;

    memset(r, 0, sizeof(*r));
    if(n == 0 || n >= sizeof(r->prefix) || prefix[0] == '/' || prefix[n - 1] == '/' ||
       strpbrk(prefix, "+#") || strstr(prefix, "//") || !authz_utf8_ok(prefix, n) ||
       prefix[0] == '$')
        return MCS_EINVAL;
    memcpy(r->prefix, prefix, n + 1);
    r->plen = n;
    w |= snprintf(r->worker_read[0], sizeof(r->worker_read[0]), "%s/+/up", prefix) < 0;
    w |= snprintf(r->worker_read[1], sizeof(r->worker_read[1]), "%s/+/status", prefix) < 0;
    w |= snprintf(r->worker_write[0], sizeof(r->worker_write[0]), "%s/+/cmd", prefix) < 0;
    w |= snprintf(r->worker_write[1], sizeof(r->worker_write[1]), "%s/broadcast/cmd", prefix) < 0;
    w |= snprintf(r->admin_all, sizeof(r->admin_all), "%s/#", prefix) < 0;
    w |= snprintf(r->broadcast_cmd, sizeof(r->broadcast_cmd), "%s/broadcast/cmd", prefix) < 0;
    memcpy(r->sys_all, "$SYS/#", sizeof("$SYS/#"));
    memcpy(r->mcsd_group, AUTHZ_MCSD_GROUP, sizeof(AUTHZ_MCSD_GROUP));
    return w ? MCS_EINVAL : 0;
}

int authz_rules_set_group(struct authz_rules *r, const char *group)
{
    size_t n = group ? strlen(group) : 0;

    if(n == 0 || n >= sizeof(r->mcsd_group) || strpbrk(group, "/+#") || !authz_utf8_ok(group, n))
        return MCS_EINVAL;
    memcpy(r->mcsd_group, group, n + 1);
    return 0;
}

/* Whether sub is `$share/{mcsd_group}/...`. */
static int in_mcsd_group(const struct authz_rules *r, const char *sub)
{
    size_t n = strlen(r->mcsd_group);
    return !strncmp(sub, "$share/", 7) && !strncmp(sub + 7, r->mcsd_group, n) && sub[7 + n] == '/';
}

const char *authz_unshare(const char *sub)
{
    const char *g, *slash;

    if(strncmp(sub, "$share/", 7) != 0)
        return sub;
    g = sub + 7;
    slash = strchr(g, '/');
    if(!slash || slash == g || !slash[1])
        return NULL;
    for(const char *p = g; p < slash; p++)
        if(*p == '+' || *p == '#')
            return NULL;
    return slash + 1;
}

/* A level containing a wildcard must be that wildcard alone. */
static int level_ok(const char *s, size_t len)
{
    if(len == 1)
        return 1;
    return memchr(s, '+', len) == NULL && memchr(s, '#', len) == NULL;
}

/* Every level passes level_ok and '#' is only the last one. Checked before
 * the walk below, which stops at the pattern's '#' without looking at the
 * rest of the filter ("mcs/x/a+b" or "mcs/x/#/y" within "mcs/#"). */
static int filter_ok(const char *s)
{
    for(;;) {
        size_t l = strcspn(s, "/");
        if(!level_ok(s, l) || (l == 1 && s[0] == '#' && s[1] != '\0'))
            return 0;
        if(!s[l])
            return 1;
        s += l + 1;
    }
}

int authz_filter_within(const char *f, const char *p)
{
    if(!filter_ok(f) || !filter_ok(p))
        return 0;
    for(;;) {
        size_t fl = strcspn(f, "/"), pl = strcspn(p, "/");
        int f_hash = fl == 1 && f[0] == '#', p_hash = pl == 1 && p[0] == '#';
        int f_plus = fl == 1 && f[0] == '+', p_plus = pl == 1 && p[0] == '+';

        if(!level_ok(f, fl) || !level_ok(p, pl))
            return 0;
        if(f_hash && f[1] != '\0')
            return 0; /* '#' only as the last level */
        if(p_hash)
            return p[1] == '\0';
        if(f_hash)
            return 0; /* any depth below, the pattern does not allow that */
        if(!p_plus && (f_plus || fl != pl || memcmp(f, p, fl) != 0))
            return 0;
        f += fl;
        p += pl;
        if(!*f && !*p)
            return 1;
        if(!*f)
            return strcmp(p, "/#") == 0; /* "a/#" also matches "a" */
        if(!*p)
            return 0;
        f++;
        p++;
    }
}

/* Whether t is exactly {prefix}/{sn}/{leaf}. */
static int is_own(const struct authz_rules *r, const char *sn, size_t snlen, const char *t,
                  const char *leaf)
{
    if(strncmp(t, r->prefix, r->plen) != 0 || t[r->plen] != '/')
        return 0;
    t += r->plen + 1;
    if(strncmp(t, sn, snlen) != 0 || t[snlen] != '/')
        return 0;
    return strcmp(t + snlen + 1, leaf) == 0;
}

static int device_acl(const struct authz_rules *r, const char *sn, size_t snlen, const char *t,
                      int access)
{
    if(!sn || snlen == 0)
        return 0;
    if(access == AUTHZ_WRITE)
        return is_own(r, sn, snlen, t, "up") || is_own(r, sn, snlen, t, "status");
    /* SUBSCRIBE with a literal filter or READ of a delivered topic: both are
     * exact, since a filter with a wildcard is never within a literal. */
    return is_own(r, sn, snlen, t, "cmd") || strcmp(t, r->broadcast_cmd) == 0;
}

int authz_acl(const struct authz_rules *r, enum authz_role role, const char *sn, size_t snlen,
              const char *topic, int access)
{
    const char *t = topic;

    if(access == AUTHZ_UNSUBSCRIBE)
        return 1;
    if(!topic)
        return 0;
    if(access == AUTHZ_SUBSCRIBE) {
        t = authz_unshare(topic);
        if(!t)
            return 0;
    }
    else if(access == AUTHZ_READ || access == AUTHZ_WRITE) {
        if(strpbrk(topic, "+#"))
            return 0; /* a concrete topic never holds wildcards */
    }
    else {
        return 0;
    }
    switch(role) {
    case AUTHZ_DEVICE:
        return device_acl(r, sn, snlen, t, access);
    case AUTHZ_WORKER:
    case AUTHZ_MCSD:
        if(role == AUTHZ_WORKER && access == AUTHZ_SUBSCRIBE && in_mcsd_group(r, topic))
            return 0;
        if(access == AUTHZ_WRITE)
            return authz_filter_within(t, r->worker_write[0]) ||
                   authz_filter_within(t, r->worker_write[1]);
        return authz_filter_within(t, r->worker_read[0]) ||
               authz_filter_within(t, r->worker_read[1]) || authz_filter_within(t, r->sys_all);
    case AUTHZ_ADMIN:
        if(access != AUTHZ_WRITE && authz_filter_within(t, r->sys_all))
            return 1;
        return authz_filter_within(t, r->admin_all);
    default:
        return 0;
    }
}
