/* payload.c - telemetry/status payload validation with cJSON.
 * Owns nothing shared; every function is pure over its arguments.
 * Thread: the ingest (MQTT) thread, and tests. */
#include "payload.h"
#include "devcred.h"
#include "jsoncheck.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

static const char *const reject_names[] = {
#define MCS_REJ_NAME(n) #n,
    MCS_REJECTS(MCS_REJ_NAME)
#undef MCS_REJ_NAME
};

const char *mcs_reject_name(int reason)
{
    if(reason < 0 || reason >= MCS_REJ_COUNT)
        return "none";
    return reject_names[reason];
}

/* Checks nesting depth and string lengths, so that no later code meets a
 * pathological document. cJSON itself limits nesting to 1000. */
static int sane(const cJSON *item, int depth)
{
    if(depth > 4)
        return 0;
    for(const cJSON *c = item->child; c; c = c->next) {
        if(cJSON_IsString(c) && strlen(c->valuestring) > 64)
            return 0;
        if((cJSON_IsObject(c) || cJSON_IsArray(c)) && !sane(c, depth + 1))
            return 0;
    }
    return 1;
}

/* Parses the whole payload strictly (src/common/jsoncheck.h) as one
 * object. Returns MCS_REJ_NONE with *root, or the reason. */
static int parse_object(const char *buf, size_t len, cJSON **root)
{
    int fault;
    *root = mcs_json_parse_strict(buf, len, &fault, NULL, 0);
    switch(fault) {
    case MCS_JSON_OK: break;
    case MCS_JSON_TRAILING: return MCS_REJ_trailing_data;
    case MCS_JSON_DUP: return MCS_REJ_dup_key;
    default: return MCS_REJ_bad_json;
    }
    return cJSON_IsObject(*root) ? MCS_REJ_NONE : MCS_REJ_bad_json;
}

/* The members of a telemetry object we know, found in one pass over its
 * children (a lookup per key would compare every key with every name: a
 * twentieth of the ingest thread's time). Repeated keys were refused by
 * parse_object. */
struct fields {
    const cJSON *ts, *seq, *v_raw, *temp, *humi, *bat, *rssi, *err, *ver, *net;
};

static void collect(const cJSON *root, struct fields *f)
{
    memset(f, 0, sizeof(*f));
    for(const cJSON *c = root->child; c; c = c->next) {
        const char *k = c->string;
        const cJSON **slot = NULL;
        if(!k)
            continue;
        switch(k[0]) {
        case 't':
            slot = !strcmp(k, "ts") ? &f->ts : !strcmp(k, "temp") ? &f->temp : NULL;
            break;
        case 's': slot = !strcmp(k, "seq") ? &f->seq : NULL; break;
        case 'v':
            slot = !strcmp(k, "v_raw") ? &f->v_raw : !strcmp(k, "ver") ? &f->ver : NULL;
            break;
        case 'h': slot = !strcmp(k, "humi") ? &f->humi : NULL; break;
        case 'b': slot = !strcmp(k, "bat") ? &f->bat : NULL; break;
        case 'r': slot = !strcmp(k, "rssi") ? &f->rssi : NULL; break;
        case 'e': slot = !strcmp(k, "err") ? &f->err : NULL; break;
        case 'n': slot = !strcmp(k, "net") ? &f->net : NULL; break;
        default: break;
        }
        if(slot && !*slot)
            *slot = c;
    }
}

/* Reads an optional number. Returns MCS_REJ_NONE with *v (NaN when absent),
 * bad_type for a non-number, out_of_range outside [lo, hi] or not finite. */
static int num(const cJSON *it, double lo, double hi, int integer, double *v)
{
    *v = NAN;
    if(!it || cJSON_IsNull(it))
        return MCS_REJ_NONE;
    if(!cJSON_IsNumber(it))
        return MCS_REJ_bad_type;
    /* valuedouble, never valueint: cJSON's valueint is 32-bit and saturates. */
    double d = it->valuedouble;
    if(!isfinite(d))
        return MCS_REJ_out_of_range;
    if(integer && d != floor(d))
        return MCS_REJ_bad_type;
    if(d < lo || d > hi)
        return MCS_REJ_out_of_range;
    *v = d;
    return MCS_REJ_NONE;
}

static int str(const cJSON *it, char *out, size_t n)
{
    out[0] = '\0';
    if(!it || cJSON_IsNull(it))
        return MCS_REJ_NONE;
    if(!cJSON_IsString(it))
        return MCS_REJ_bad_type;
    size_t len = strlen(it->valuestring);
    if(len >= n)
        return MCS_REJ_out_of_range;
    /* Only a plain charset: these strings reach logs, SQL arrays and JSON. */
    for(size_t i = 0; i < len; i++) {
        char c = it->valuestring[i];
        if(!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
             c == '.' || c == '-' || c == '_' || c == '+'))
            return MCS_REJ_out_of_range;
    }
    memcpy(out, it->valuestring, len + 1);
    return MCS_REJ_NONE;
}

int mcs_payload_parse(const char *buf, size_t len, const struct mcs_payload_limits *lim,
                      struct mcs_reading *out)
{
    cJSON *root = NULL;
    int rc = MCS_REJ_NONE;
    struct fields f;
    double ts, seq, v_raw, bat, rssi, err;

    if((rc = parse_object(buf, len, &root)) != MCS_REJ_NONE)
        goto out;
    if(!sane(root, 0)) {
        rc = MCS_REJ_out_of_range;
        goto out;
    }
    collect(root, &f);
    if(!f.ts || !f.seq || !f.v_raw) {
        rc = MCS_REJ_missing_field;
        goto out;
    }
    if((rc = num(f.ts, 0, 4102444800.0, 1, &ts)) != MCS_REJ_NONE ||
       (rc = num(f.seq, 0, 65535, 1, &seq)) != MCS_REJ_NONE ||
       (rc = num(f.v_raw, -1e6, 1e6, 0, &v_raw)) != MCS_REJ_NONE ||
       (rc = num(f.temp, -60, 200, 0, &out->temp)) != MCS_REJ_NONE ||
       (rc = num(f.humi, 0, 100, 0, &out->humi)) != MCS_REJ_NONE ||
       (rc = num(f.bat, 0, 100, 1, &bat)) != MCS_REJ_NONE ||
       (rc = num(f.rssi, -150, 0, 1, &rssi)) != MCS_REJ_NONE ||
       (rc = num(f.err, 0, 255, 1, &err)) != MCS_REJ_NONE ||
       (rc = str(f.ver, out->ver, sizeof(out->ver))) != MCS_REJ_NONE ||
       (rc = str(f.net, out->net, sizeof(out->net))) != MCS_REJ_NONE)
        goto out;
    if(isnan(ts) || isnan(seq) || isnan(v_raw)) {
        /* Present but null counts as missing. */
        rc = MCS_REJ_missing_field;
        goto out;
    }
    if((int64_t)ts > lim->now_s + lim->max_future_s) {
        rc = MCS_REJ_ts_future;
        goto out;
    }
    if((int64_t)ts < lim->now_s - lim->max_past_s) {
        rc = MCS_REJ_ts_past;
        goto out;
    }
    out->ts = (int64_t)ts;
    out->seq = (int32_t)seq;
    out->v_raw = v_raw;
    out->bat = isnan(bat) ? MCS_ABSENT_INT : (int32_t)bat;
    out->rssi = isnan(rssi) ? MCS_ABSENT_INT : (int32_t)rssi;
    out->err = isnan(err) ? 0 : (int32_t)err;
out:
    cJSON_Delete(root);
    return rc;
}

int mcs_status_read(const char *buf, size_t len, struct mcs_status *out)
{
    cJSON *root = NULL;
    int rc = MCS_REJ_NONE;
    const cJSON *st, *t;

    memset(out, 0, sizeof(*out));
    if((rc = parse_object(buf, len, &root)) != MCS_REJ_NONE)
        goto out;
    if(!sane(root, 0)) {
        rc = MCS_REJ_out_of_range;
        goto out;
    }
    st = cJSON_GetObjectItemCaseSensitive(root, "status");
    if(!st) {
        rc = MCS_REJ_missing_field;
        goto out;
    }
    if(!cJSON_IsString(st)) {
        rc = MCS_REJ_bad_type;
        goto out;
    }
    if(!strcmp(st->valuestring, "online"))
        out->online = 1;
    else if(!strcmp(st->valuestring, "offline"))
        out->online = 0;
    else {
        rc = MCS_REJ_out_of_range;
        goto out;
    }
    t = cJSON_GetObjectItemCaseSensitive(root, "ts");
    if(t && cJSON_IsNumber(t) && isfinite(t->valuedouble) && t->valuedouble > 0 &&
       t->valuedouble < 4102444800.0)
        out->ts = (int64_t)t->valuedouble;
    {
        struct {
            const char *key;
            char *dst;
            size_t cap;
        } f[] = {{"ver", out->ver, sizeof(out->ver)},      {"net", out->net, sizeof(out->net)},
                 {"id", out->id, sizeof(out->id)},         {"cmd", out->cmd, sizeof(out->cmd)},
                 {"result", out->result, sizeof(out->result)},
                 {"reason", out->reason, sizeof(out->reason)}};
        for(size_t i = 0; i < sizeof(f) / sizeof(f[0]) && rc == MCS_REJ_NONE; i++)
            rc = str(cJSON_GetObjectItemCaseSensitive(root, f[i].key), f[i].dst, f[i].cap);
    }
out:
    cJSON_Delete(root);
    return rc;
}

int mcs_status_parse(const char *buf, size_t len, int *online, int64_t *ts)
{
    struct mcs_status st;
    int rc = mcs_status_read(buf, len, &st);

    *online = st.online;
    *ts = st.ts;
    return rc;
}

int mcs_topic_parse(const char *topic, const char *prefix, char sn[MCS_SN_MAX + 1])
{
    size_t plen = strlen(prefix);
    const char *p, *slash;

    if(strncmp(topic, prefix, plen) != 0 || topic[plen] != '/')
        return 0;
    p = topic + plen + 1;
    slash = strchr(p, '/');
    if(!slash || !mcs_sn_valid(p, (size_t)(slash - p)))
        return 0;
    memcpy(sn, p, (size_t)(slash - p));
    sn[slash - p] = '\0';
    if(!strcmp(slash + 1, "up"))
        return 1;
    if(!strcmp(slash + 1, "status"))
        return 2;
    return 0;
}
