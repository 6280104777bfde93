/* fuzz_payload.c - libFuzzer target for what a device sends mcsd (R-MQ-2,
 * R-MQ-3): telemetry payloads, status/LWT payloads and topics. The low two
 * bits of the first byte choose the parser (0 and 3 telemetry, 1 status,
 * 2 topic); the rest is the input. Seed files start with '0', '1' or '2'.
 * Touches nothing but the parsers of src/mcsd/payload.c. */
#include "fuzz_util.h"

#include "devcred.h"
#include "payload.h"

#include <inttypes.h>
#include <math.h>

/* The limits ingest uses with the default configuration, at a fixed now. */
static const struct mcs_payload_limits LIM = {1800000000, 300, 3 * 86400};

static int same_double(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

/* Writes an accepted reading back as the canonical payload of R-MQ-2. */
static size_t canonical(const struct mcs_reading *r, char *buf, size_t n)
{
    size_t k = 0;
    int w;

#define PUT(...)                                                                                   \
    do {                                                                                           \
        w = snprintf(buf + k, n - k, __VA_ARGS__);                                                 \
        FUZZ_CHECK(w >= 0 && (size_t)w < n - k);                                                   \
        k += (size_t)w;                                                                            \
    } while(0)
    PUT("{\"ts\":%" PRId64 ",\"seq\":%" PRId32 ",\"v_raw\":%.17g", r->ts, r->seq, r->v_raw);
    if(!isnan(r->temp))
        PUT(",\"temp\":%.17g", r->temp);
    if(!isnan(r->humi))
        PUT(",\"humi\":%.17g", r->humi);
    if(r->bat != MCS_ABSENT_INT)
        PUT(",\"bat\":%" PRId32, r->bat);
    if(r->rssi != MCS_ABSENT_INT)
        PUT(",\"rssi\":%" PRId32, r->rssi);
    PUT(",\"err\":%" PRId32 ",\"ver\":\"%s\",\"net\":\"%s\"}", r->err, r->ver, r->net);
#undef PUT
    return k;
}

static int plain_string(const char *s, size_t size)
{
    size_t len = strnlen(s, size);
    if(len == size)
        return 0; /* not terminated inside its field */
    for(size_t i = 0; i < len; i++) {
        char c = s[i];
        if(!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
             c == '.' || c == '-' || c == '_' || c == '+'))
            return 0;
    }
    return 1;
}

static void telemetry(const uint8_t *data, size_t n)
{
    struct mcs_reading r, again;
    char buf[512];
    int rc;

    memset(&r, 0x5a, sizeof(r));
    memcpy(r.sn, "SENTINEL", sizeof("SENTINEL"));
    rc = mcs_payload_parse(fuzz_tail_copy(data, n), n, &LIM, &r);
    /* The sn comes from the topic, never from the payload. */
    FUZZ_CHECK(!strcmp(r.sn, "SENTINEL"));
    if(rc != MCS_REJ_NONE) {
        /* Only reasons a payload can have; the others belong to ingest. */
        FUZZ_CHECK(rc == MCS_REJ_bad_json || rc == MCS_REJ_missing_field ||
                   rc == MCS_REJ_bad_type || rc == MCS_REJ_out_of_range ||
                   rc == MCS_REJ_ts_future || rc == MCS_REJ_ts_past ||
                   rc == MCS_REJ_trailing_data || rc == MCS_REJ_dup_key);
        return;
    }
    FUZZ_CHECK(r.ts >= LIM.now_s - LIM.max_past_s && r.ts <= LIM.now_s + LIM.max_future_s);
    FUZZ_CHECK(r.seq >= 0 && r.seq <= 65535);
    FUZZ_CHECK(isfinite(r.v_raw) && fabs(r.v_raw) <= 1e6);
    FUZZ_CHECK(isnan(r.temp) || (r.temp >= -60 && r.temp <= 200));
    FUZZ_CHECK(isnan(r.humi) || (r.humi >= 0 && r.humi <= 100));
    FUZZ_CHECK(r.bat == MCS_ABSENT_INT || (r.bat >= 0 && r.bat <= 100));
    FUZZ_CHECK(r.rssi == MCS_ABSENT_INT || (r.rssi >= -150 && r.rssi <= 0));
    FUZZ_CHECK(r.err >= 0 && r.err <= 255);
    FUZZ_CHECK(plain_string(r.ver, sizeof(r.ver)));
    FUZZ_CHECK(plain_string(r.net, sizeof(r.net)));

    /* Whatever was accepted, written back canonically, reads back the same. */
    size_t k = canonical(&r, buf, sizeof(buf));
    memset(&again, 0, sizeof(again));
    memcpy(again.sn, r.sn, sizeof(r.sn));
    FUZZ_CHECK(mcs_payload_parse(fuzz_tail_copy((const uint8_t *)buf, k), k, &LIM, &again) ==
               MCS_REJ_NONE);
    FUZZ_CHECK(again.ts == r.ts && again.seq == r.seq && again.v_raw == r.v_raw);
    FUZZ_CHECK(same_double(again.temp, r.temp) && same_double(again.humi, r.humi));
    FUZZ_CHECK(again.bat == r.bat && again.rssi == r.rssi && again.err == r.err);
    FUZZ_CHECK(!strcmp(again.ver, r.ver) && !strcmp(again.net, r.net));
}

static void status(const uint8_t *data, size_t n)
{
    int online = -1;
    int64_t ts = -1;
    int rc = mcs_status_parse(fuzz_tail_copy(data, n), n, &online, &ts);

    if(rc != MCS_REJ_NONE) {
        FUZZ_CHECK(rc == MCS_REJ_bad_json || rc == MCS_REJ_missing_field ||
                   rc == MCS_REJ_bad_type || rc == MCS_REJ_out_of_range ||
                   rc == MCS_REJ_trailing_data || rc == MCS_REJ_dup_key);
        return;
    }
    FUZZ_CHECK(online == 0 || online == 1);
    FUZZ_CHECK(ts >= 0 && ts < 4102444800);
}

/* The prefix as mcsd's configuration allows it (config.c validate), or
 * "mcs" for anything it would refuse. */
static const char *usable_prefix(const char *p)
{
    size_t len = strlen(p);
    if(len == 0 || len >= 32)
        return "mcs";
    for(const char *c = p; *c; c++)
        if(*c == '/' || *c == '+' || *c == '#' || (unsigned char)*c < 0x21)
            return "mcs";
    return p;
}

/* What mcs_topic_parse must answer, worked out another way: the topic is
 * {prefix}/{rest}; rest is {sn}/up or {sn}/status with a valid sn. */
static int expected_kind(const char *topic, const char *prefix, const char **sn, size_t *snlen)
{
    size_t plen = strlen(prefix), tlen = strlen(topic);
    static const struct {
        const char *leaf;
        int kind;
    } leaves[] = {{"/up", 1}, {"/status", 2}};

    if(tlen <= plen + 1 || memcmp(topic, prefix, plen) != 0 || topic[plen] != '/')
        return 0;
    for(size_t i = 0; i < 2; i++) {
        size_t ll = strlen(leaves[i].leaf);
        const char *rest = topic + plen + 1;
        size_t rlen = tlen - plen - 1;
        if(rlen > ll && !strcmp(rest + rlen - ll, leaves[i].leaf) &&
           mcs_sn_valid(rest, rlen - ll)) {
            *sn = rest;
            *snlen = rlen - ll;
            return leaves[i].kind;
        }
    }
    return 0;
}

static void topic(const uint8_t *data, size_t n)
{
    struct fuzz_in in = {data, n};
    char *praw = fuzz_str(&in), *t = fuzz_str(&in);
    const char *prefix = usable_prefix(praw), *want_sn = NULL;
    char sn[MCS_SN_MAX + 1 + 8];
    size_t want_len = 0;
    int kind, want;

    memset(sn, 0x5a, sizeof(sn));
    kind = mcs_topic_parse(t, prefix, sn);
    want = expected_kind(t, prefix, &want_sn, &want_len);
    FUZZ_CHECK(kind == want);
    if(kind) {
        size_t len = strnlen(sn, MCS_SN_MAX + 1);
        FUZZ_CHECK(len <= MCS_SN_MAX && mcs_sn_valid(sn, len));
        FUZZ_CHECK(len == want_len && !memcmp(sn, want_sn, len));
    }
    /* Nothing is written past the sn buffer. */
    for(size_t i = MCS_SN_MAX + 1; i < sizeof(sn); i++)
        FUZZ_CHECK(sn[i] == 0x5a);
    free(praw);
    free(t);
}

FUZZ_QUIET_INITIALIZE

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if(size == 0)
        return 0;
    switch(data[0] & 3) {
    case 1:
        status(data + 1, size - 1);
        break;
    case 2:
        topic(data + 1, size - 1);
        break;
    default:
        telemetry(data + 1, size - 1);
        break;
    }
    return 0;
}
