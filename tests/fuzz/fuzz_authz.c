/* fuzz_authz.c - libFuzzer target for the broker plugin's checks of what a
 * client sends in CONNECT, SUBSCRIBE and PUBLISH (src/plugin/authz.c, R-MQ-6).
 * The first byte modulo 5 chooses:
 *   0 authz_identify   flags byte, then username, password, client id
 *   1 authz_utf8_ok    the rest, against a decoder written from Unicode's
 *                      table of well-formed byte sequences
 *   2 authz_acl        role, access, choice bytes, then prefix, sn, topic
 *   3 authz_filter_within  choice byte, then filters a, b, c
 *   4 authz_unshare    the rest
 * Strings are NUL-separated. Every answer is checked against the contract of
 * authz.h and, where cheap, a plain reference implementation in this file;
 * device ACLs also against mcsd's own topic parser. Touches nothing else. */
#include "fuzz_util.h"

#include "authz.h"
#include "devcred.h"
#include "err.h"
#include "payload.h"

#define DEV AUTHZ_DEVICE_USER_PREFIX
#define DEV_LEN (sizeof(DEV) - 1)

static int has_wild(const char *s)
{
    return strpbrk(s, "+#") != NULL;
}

static int starts(const char *s, const char *p)
{
    return !strncmp(s, p, strlen(p));
}

/* ---- reference implementations ---------------------------------------- */

/* Unicode 15, table 3-7, minus the control characters authz_utf8_ok refuses. */
static int ref_utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while(i < n) {
        unsigned b = s[i], lo = 0x80, hi = 0xbf, need;
        if(b < 0x80) {
            if(b < 0x20 || b == 0x7f)
                return 0;
            i++;
            continue;
        }
        if(b >= 0xc2 && b <= 0xdf)
            need = 1;
        else if(b == 0xe0)
            need = 2, lo = 0xa0;
        else if((b >= 0xe1 && b <= 0xec) || b == 0xee || b == 0xef)
            need = 2;
        else if(b == 0xed)
            need = 2, hi = 0x9f;
        else if(b == 0xf0)
            need = 3, lo = 0x90;
        else if(b >= 0xf1 && b <= 0xf3)
            need = 3;
        else if(b == 0xf4)
            need = 3, hi = 0x8f;
        else
            return 0;
        if(n - i <= need)
            return 0;
        if(s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for(unsigned k = 2; k <= need; k++)
            if(s[i + k] < 0x80 || s[i + k] > 0xbf)
                return 0;
        if(b == 0xc2 && s[i + 1] <= 0x9f)
            return 0; /* U+0080..U+009F, the C1 controls */
        i += need + 1;
    }
    return 1;
}

/* A filter of MQTT 3.1.1 section 4.7: '+' and '#' only as whole levels,
 * '#' only as the last one. */
static int ref_filter_ok(const char *f)
{
    for(;;) {
        size_t l = strcspn(f, "/");
        if(l != 1 && memchr(f, '+', l))
            return 0;
        if(l != 1 && memchr(f, '#', l))
            return 0;
        if(l == 1 && f[0] == '#' && f[1] != '\0')
            return 0;
        if(!f[l])
            return 1;
        f += l + 1;
    }
}

/* Whether concrete topic t matches filter f (well-formed). */
static int ref_match(const char *t, const char *f)
{
    for(;;) {
        size_t tl = strcspn(t, "/"), fl = strcspn(f, "/");
        if(fl == 1 && f[0] == '#')
            return 1;
        if(!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(t, f, fl) != 0))
            return 0;
        if(!t[tl] && !f[fl])
            return 1;
        if(!t[tl])
            return !strcmp(f + fl, "/#"); /* "a/#" matches "a" too */
        if(!f[fl])
            return 0;
        t += tl + 1;
        f += fl + 1;
    }
}

/* A topic the filter f matches: each '+' becomes "x" or an empty level, a
 * final '#' becomes "x/y", "x" or nothing (then "a/#" gives "a"); the bits
 * of `choice` decide, level by level. Returns a heap string. */
static char *instance(const char *f, unsigned choice)
{
    size_t n = strlen(f), k = 0;
    char *out = malloc(3 * n + 8);

    FUZZ_CHECK(out != NULL);
    for(;;) {
        size_t l = strcspn(f, "/");
        if(l == 1 && f[0] == '+') {
            if(choice & 1)
                out[k++] = 'x';
            choice >>= 1;
        }
        else if(l == 1 && f[0] == '#') {
            switch(choice & 3) {
            case 0:
                memcpy(out + k, "x/y", 3);
                k += 3;
                break;
            case 1:
                out[k++] = 'x';
                break;
            default:
                if(k > 0)
                    k--; /* drop the '/' before '#' */
                break;
            }
            choice >>= 2;
        }
        else {
            memcpy(out + k, f, l);
            k += l;
        }
        if(!f[l])
            break;
        out[k++] = '/';
        f += l + 1;
    }
    out[k] = '\0';
    return out;
}

/* ---- modes --------------------------------------------------------------- */

static void identify(struct fuzz_in *in)
{
    uint8_t flags = fuzz_byte(in);
    char *u = fuzz_str(in), *p = fuzz_str(in), *c = fuzz_str(in);
    const char *user = (flags & 1) ? NULL : u, *pass = (flags & 2) ? NULL : p;
    const char *cid = (flags & 4) ? NULL : c;
    struct authz_limits lim = {64, 128, 128, NULL};
    enum authz_role role = (enum authz_role)77;
    char sn[AUTHZ_SN_MAX + 1 + 8];
    enum authz_reason r;

    if(flags & 8)
        lim = (struct authz_limits){16, 16, 16, NULL};
    memset(sn, 0x5a, sizeof(sn));
    r = authz_identify(&lim, user, pass, cid, &role, sn);
    FUZZ_CHECK(r == AUTHZ_R_OK || r == AUTHZ_R_NO_CREDENTIALS || r == AUTHZ_R_BAD_INPUT ||
               r == AUTHZ_R_UNKNOWN_USER || r == AUTHZ_R_CLIENTID);
    FUZZ_CHECK(strcmp(authz_reason_name(r), "?") != 0);
    for(size_t i = AUTHZ_SN_MAX + 1; i < sizeof(sn); i++)
        FUZZ_CHECK(sn[i] == 0x5a);
    FUZZ_CHECK((r == AUTHZ_R_NO_CREDENTIALS) == (!user || !pass || !*user || !*pass));
    if(r != AUTHZ_R_OK) {
        FUZZ_CHECK(role == AUTHZ_NONE && sn[0] == '\0');
        goto out;
    }
    FUZZ_CHECK(strlen(user) <= lim.max_username && strlen(pass) <= lim.max_password);
    FUZZ_CHECK(cid && strlen(cid) <= lim.max_clientid && *cid);
    FUZZ_CHECK(authz_utf8_ok(user, strlen(user)) && authz_utf8_ok(pass, strlen(pass)) &&
               authz_utf8_ok(cid, strlen(cid)));
    const char *rsn;
    size_t rsnlen;
    FUZZ_CHECK(authz_role_of(user, &rsn, &rsnlen) == role);
    switch(role) {
    case AUTHZ_DEVICE:
        /* device_{sn}, the same client id, a valid sn copied out. */
        FUZZ_CHECK(starts(user, DEV) && !strcmp(sn, user + DEV_LEN));
        FUZZ_CHECK(mcs_sn_valid(sn, strlen(sn)));
        FUZZ_CHECK(!strcmp(cid, user));
        FUZZ_CHECK(rsnlen == strlen(sn) && !memcmp(rsn, sn, rsnlen));
        break;
    case AUTHZ_WORKER:
    case AUTHZ_ADMIN:
        FUZZ_CHECK(!strcmp(user, role == AUTHZ_WORKER ? AUTHZ_WORKER_USER : AUTHZ_ADMIN_USER));
        FUZZ_CHECK(!starts(cid, DEV)); /* device client ids are the devices' own */
        FUZZ_CHECK(!starts(cid, AUTHZ_MCSD_CLIENTID_PREFIX)); /* ... and mcsd's */
        FUZZ_CHECK(sn[0] == '\0');
        break;
    case AUTHZ_MCSD:
        FUZZ_CHECK(!strcmp(user, AUTHZ_MCSD_USER));
        FUZZ_CHECK(starts(cid, AUTHZ_MCSD_CLIENTID_PREFIX) &&
                   strlen(cid) > strlen(AUTHZ_MCSD_CLIENTID_PREFIX));
        FUZZ_CHECK(sn[0] == '\0');
        break;
    default:
        FUZZ_CHECK(0);
    }
out:
    free(u);
    free(p);
    free(c);
}

static void utf8(struct fuzz_in *in)
{
    const char *s = fuzz_tail_copy(in->p, in->n);
    FUZZ_CHECK(authz_utf8_ok(s, in->n) == ref_utf8_ok((const unsigned char *)s, in->n));
}

/* Whether a concrete topic is within {p}/... or $SYS/... (the only trees
 * anyone but a device may touch). */
static int in_tree(const char *t, const char *prefix)
{
    size_t n = strlen(prefix);
    return (!strncmp(t, prefix, n) && (t[n] == '\0' || t[n] == '/')) || !strcmp(t, "$SYS") ||
           starts(t, "$SYS/");
}

static void acl(struct fuzz_in *in)
{
    /* The four kinds, then values no broker sends. */
    static const int accesses[] = {AUTHZ_READ, AUTHZ_WRITE, AUTHZ_SUBSCRIBE, AUTHZ_UNSUBSCRIBE};
    static const int odd[] = {0, 3, 16};
    enum authz_role role = (enum authz_role)(fuzz_byte(in) % 6);
    uint8_t ab = fuzz_byte(in) % 7;
    int access = ab < 4 ? accesses[ab] : odd[ab - 4];
    unsigned choice = fuzz_byte(in);
    char *praw = fuzz_str(in), *snraw = fuzz_str(in), *topic = fuzz_str(in);
    const char *sn = snraw, *t;
    char mine[3][160], bcast[160], psn[MCS_SN_MAX + 1];
    struct authz_rules r;
    size_t snlen;
    int ok, want;

    if(authz_rules_init(&r, praw) != 0) {
        FUZZ_CHECK(authz_rules_init(&r, "mcs") == 0);
    }
    else {
        size_t n = strlen(praw);
        /* What authz.h promises of an accepted prefix. */
        FUZZ_CHECK(n >= 1 && n <= 63 && !has_wild(praw) && praw[0] != '/' && praw[n - 1] != '/');
        FUZZ_CHECK(!strcmp(r.prefix, praw) && r.plen == n);
    }
    /* A device's sn comes from authz_role_of, so it is always valid. */
    if(!mcs_sn_valid(sn, strlen(sn)))
        sn = "A001";
    snlen = strlen(sn);

    ok = authz_acl(&r, role, sn, snlen, topic, access);
    FUZZ_CHECK(ok == 0 || ok == 1);
    if(access == AUTHZ_UNSUBSCRIBE) {
        FUZZ_CHECK(ok == 1);
        goto out;
    }
    if(access != AUTHZ_READ && access != AUTHZ_WRITE && access != AUTHZ_SUBSCRIBE) {
        FUZZ_CHECK(ok == 0);
        goto out;
    }
    t = access == AUTHZ_SUBSCRIBE ? authz_unshare(topic) : topic;
    if(!t || role == AUTHZ_NONE || role > AUTHZ_MCSD ||
       (access != AUTHZ_SUBSCRIBE && has_wild(topic))) {
        FUZZ_CHECK(ok == 0);
        goto out;
    }
    if(access == AUTHZ_WRITE)
        FUZZ_CHECK(!ok || t[0] != '$'); /* nobody writes $SYS */
    snprintf(mine[0], sizeof(mine[0]), "%s/%s/up", r.prefix, sn);
    snprintf(mine[1], sizeof(mine[1]), "%s/%s/status", r.prefix, sn);
    snprintf(mine[2], sizeof(mine[2]), "%s/%s/cmd", r.prefix, sn);
    snprintf(bcast, sizeof(bcast), "%s/broadcast/cmd", r.prefix);

    if(role == AUTHZ_DEVICE) {
        /* Fully specified: exact topics only, no wildcards, no $SYS. */
        if(access == AUTHZ_WRITE)
            want = !strcmp(t, mine[0]) || !strcmp(t, mine[1]);
        else
            want = !strcmp(t, mine[2]) || !strcmp(t, bcast);
        FUZZ_CHECK(ok == want);
        if(access == AUTHZ_WRITE) {
            /* The broker and ingest agree on whose topic this is (R-MQ-3). */
            int kind = mcs_topic_parse(t, r.prefix, psn);
            FUZZ_CHECK(ok == (kind != 0 && !strcmp(psn, sn)));
        }
        goto out;
    }
    if(ok && !has_wild(t))
        FUZZ_CHECK(in_tree(t, r.prefix));
    if(access == AUTHZ_SUBSCRIBE && role == AUTHZ_WORKER && starts(topic, "$share/mcsd/"))
        FUZZ_CHECK(ok == 0); /* mcsd's share group is mcsd's (issue #6) */
    else if(access == AUTHZ_SUBSCRIBE && !has_wild(t))
        /* A literal subscription is granted exactly when its topic may be read. */
        FUZZ_CHECK(ok == authz_acl(&r, role, sn, snlen, t, AUTHZ_READ));
    if(access != AUTHZ_SUBSCRIBE) {
        /* A concrete topic: the answer is plain MQTT matching. */
        if((role == AUTHZ_WORKER || role == AUTHZ_MCSD) && access == AUTHZ_WRITE)
            want = ref_match(t, r.worker_write[0]) || ref_match(t, r.worker_write[1]);
        else if(role == AUTHZ_WORKER || role == AUTHZ_MCSD)
            want = ref_match(t, r.worker_read[0]) || ref_match(t, r.worker_read[1]) ||
                   ref_match(t, "$SYS/#");
        else if(access == AUTHZ_WRITE)
            want = ref_match(t, r.admin_all);
        else
            want = ref_match(t, r.admin_all) || ref_match(t, "$SYS/#");
        FUZZ_CHECK(ok == want);
    }
    else if(ok) {
        /* Whatever a granted subscription delivers may be read. */
        char *one = instance(t, choice);
        FUZZ_CHECK(authz_acl(&r, role, sn, snlen, one, AUTHZ_READ) == 1);
        free(one);
    }
out:
    free(praw);
    free(snraw);
    free(topic);
}

static void within(struct fuzz_in *in)
{
    unsigned choice = fuzz_byte(in);
    char *a = fuzz_str(in), *b = fuzz_str(in), *c = fuzz_str(in);
    int ab = authz_filter_within(a, b), bc = authz_filter_within(b, c);
    int ac = authz_filter_within(a, c);

    FUZZ_CHECK(ab == 0 || ab == 1);
    /* Malformed wildcards are never within anything (authz.h). */
    if(!ref_filter_ok(a) || !ref_filter_ok(b))
        FUZZ_CHECK(ab == 0);
    if(ref_filter_ok(a))
        FUZZ_CHECK(authz_filter_within(a, a) == 1);
    if(ab && bc)
        FUZZ_CHECK(ac == 1);
    if(ab) {
        /* Sound: every topic a matches, b matches too. */
        char *one = instance(a, choice);
        FUZZ_CHECK(ref_match(one, b));
        free(one);
    }
    if(!has_wild(a) && ref_filter_ok(b))
        FUZZ_CHECK(ab == ref_match(a, b)); /* and complete for topics */
    free(a);
    free(b);
    free(c);
}

static void unshare(struct fuzz_in *in)
{
    char *s = fuzz_str(in);
    const char *r = authz_unshare(s);

    if(strncmp(s, "$share/", 7) != 0) {
        FUZZ_CHECK(r == s);
    }
    else if(r) {
        /* $share/<group>/<filter>: a group without wildcards, a filter. */
        const char *g = s + 7;
        FUZZ_CHECK(r > g + 1 && r <= s + strlen(s) && r[-1] == '/' && *r != '\0');
        for(const char *p = g; p < r - 1; p++)
            FUZZ_CHECK(*p != '/' && *p != '+' && *p != '#');
    }
    else {
        const char *g = s + 7, *slash = strchr(g, '/');
        FUZZ_CHECK(!slash || slash == g || !slash[1] || strcspn(g, "+#") < (size_t)(slash - g));
    }
    free(s);
}

FUZZ_QUIET_INITIALIZE

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data + 1, size ? size - 1 : 0};

    if(size == 0)
        return 0;
    switch(data[0] % 5) {
    case 0:
        identify(&in);
        break;
    case 1:
        utf8(&in);
        break;
    case 2:
        acl(&in);
        break;
    case 3:
        within(&in);
        break;
    default:
        unshare(&in);
        break;
    }
    return 0;
}
