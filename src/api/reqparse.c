/* reqparse.c - input checks of the REST API (see reqparse.h).
 * Owns nothing beyond its arguments. Thread: any. */
#include "reqparse.h"
#include "audit.h"
#include "err.h"
#include "jsoncheck.h"
#include "numparse.h"
#include "utf8.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *rq_arg(const struct api_req *rq, const char *name)
{
    for(int i = 0; i < rq->nargs; i++)
        if(!strcmp(rq->args[i].name, name))
            return rq->args[i].value;
    return NULL;
}

void rq_add_arg(struct api_req *rq, const char *frag)
{
    const char *eq = strchr(frag, '=');
    size_t nl = eq ? (size_t)(eq - frag) : strlen(frag);
    const char *v = eq ? eq + 1 : "";
    size_t vl = strlen(v);

    if(!nl && !vl)
        return;
    if(rq->nargs >= API_MAX_ARGS || nl >= sizeof(rq->args[0].name) ||
       vl >= sizeof(rq->args[0].value)) {
        rq->args_bad = 1;
        return;
    }
    memcpy(rq->args[rq->nargs].name, frag, nl);
    rq->args[rq->nargs].name[nl] = '\0';
    memcpy(rq->args[rq->nargs].value, v, vl + 1);
    rq->nargs++;
}

int rq_int(const struct api_req *rq, const char *name, long lo, long hi, long def,
           long *out, char *err, size_t errn)
{
    const char *v = rq_arg(rq, name);
    if(!v) {
        *out = def;
        return 0;
    }
    if(mcs_parse_long(v, lo, hi, out)) {
        snprintf(err, errn, "%s must be an integer in %ld..%ld", name, lo, hi);
        return MCS_EINVAL;
    }
    return 0;
}

int rq_page(const struct api_req *rq, long max_size, long def_size, struct api_page *out,
            char *err, size_t errn)
{
    int rc = rq_int(rq, "page", 1, API_PAGE_MAX, 1, &out->page, err, errn);
    if(!rc)
        rc = rq_int(rq, "size", 1, max_size, def_size, &out->size, err, errn);
    if(rc)
        return rc;
    snprintf(out->lim, sizeof(out->lim), "%ld", out->size);
    snprintf(out->off, sizeof(out->off), "%ld", (out->page - 1) * out->size);
    return 0;
}

int rq_bool(const struct api_req *rq, const char *name, int *out, char *err, size_t errn)
{
    const char *v = rq_arg(rq, name);
    *out = -1;
    if(!v)
        return 0;
    if(!strcmp(v, "true") || !strcmp(v, "1"))
        *out = 1;
    else if(!strcmp(v, "false") || !strcmp(v, "0"))
        *out = 0;
    else {
        snprintf(err, errn, "%s must be true or false", name);
        return MCS_EINVAL;
    }
    return 0;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for(int i = 0; i < n; i++) {
        if(s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int rq_parse_time(const char *s, int64_t *out)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
    size_t n = strlen(s);
    const char *p;

    if(n < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
       digits(s + 8, 2, &d))
        return MCS_EINVAL;
    if(y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return MCS_EINVAL;
    if(mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return MCS_EINVAL;
    p = s + 10;
    if(*p) {
        if((*p != 'T' && *p != 't' && *p != ' ') || strlen(p) < 9 || digits(p + 1, 2, &h) ||
           p[3] != ':' || digits(p + 4, 2, &mi) || p[6] != ':' || digits(p + 7, 2, &sec))
            return MCS_EINVAL;
        if(h > 23 || mi > 59 || sec > 60)
            return MCS_EINVAL;
        p += 9;
        if(*p == '.') {
            int k = 0;
            for(p++; *p >= '0' && *p <= '9'; p++)
                k++;
            if(!k || k > 9)
                return MCS_EINVAL;
        }
        if(*p == 'Z' || *p == 'z') {
            p++;
        } else if(*p == '+' || *p == '-') {
            sign = *p == '+' ? 1 : -1;
            if(strlen(p) != 6 || digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) ||
               oh > 23 || om > 59)
                return MCS_EINVAL;
            p += 6;
        } else {
            return MCS_EINVAL; /* a time without a zone is ambiguous */
        }
        if(*p)
            return MCS_EINVAL;
    }
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
           (int64_t)sign * (oh * 3600 + om * 60);
    return 0;
}

int rq_time(const struct api_req *rq, const char *name, int64_t *out, int *present,
            char *err, size_t errn)
{
    const char *v = rq_arg(rq, name);
    *present = 0;
    if(!v)
        return 0;
    if(rq_parse_time(v, out)) {
        snprintf(err, errn, "%s must be an ISO 8601 time such as 2025-12-17T00:00:00Z", name);
        return MCS_EINVAL;
    }
    *present = 1;
    return 0;
}

int rq_sn_valid(const char *sn)
{
    size_t n = 0;
    for(const char *p = sn; *p; p++, n++) {
        char c = *p;
        if(!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-'))
            return 0;
    }
    return n >= 1 && n <= 32;
}

int rq_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0, k;
    unsigned cp;
    while(i < n) {
        if(!s[i] || !(k = mcs_utf8_next(s + i, n - i, &cp)))
            return 0;
        i += k;
    }
    return 1;
}

static int depth_ok(const cJSON *j, int depth)
{
    if(depth > 16)
        return 0;
    for(const cJSON *c = j->child; c; c = c->next)
        if((cJSON_IsObject(c) || cJSON_IsArray(c)) && !depth_ok(c, depth + 1))
            return 0;
    return 1;
}

cJSON *rq_json_object(const unsigned char *body, size_t len, char *err, size_t errn)
{
    cJSON *j = NULL;
    char dup[48];
    int fault;

    if(!body || !len) {
        snprintf(err, errn, "a JSON object body is required");
        return NULL;
    }
    if(!rq_utf8_valid(body, len)) {
        snprintf(err, errn, "body is not valid UTF-8");
        return NULL;
    }
    j = mcs_json_parse_strict((const char *)body, len, &fault, dup, sizeof(dup));
    switch(fault) {
    case MCS_JSON_OK: break;
    case MCS_JSON_TRAILING: snprintf(err, errn, "trailing data after the JSON value"); break;
    case MCS_JSON_NUL:
        snprintf(err, errn, "strings must not contain \\u0000 (a NUL character)");
        break;
    case MCS_JSON_DUP: snprintf(err, errn, "field '%.40s' given twice", dup); break;
    default: snprintf(err, errn, "body is not valid JSON"); break;
    }
    if(!j)
        return NULL;
    if(!cJSON_IsObject(j)) {
        snprintf(err, errn, "body must be a JSON object");
        cJSON_Delete(j);
        return NULL;
    }
    if(!depth_ok(j, 1)) {
        snprintf(err, errn, "JSON nested too deeply (at most 16)");
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

int rq_known_fields(const cJSON *obj, const char *const *allowed, char *err, size_t errn)
{
    for(const cJSON *c = obj->child; c; c = c->next) {
        int ok = 0;
        for(const char *const *a = allowed; *a; a++)
            if(c->string && !strcmp(c->string, *a)) {
                ok = 1;
                break;
            }
        if(!ok) {
            snprintf(err, errn, "unknown field '%.40s'", c->string ? c->string : "");
            return MCS_EINVAL;
        }
    }
    return 0;
}

const char *const dev_columns[DF_COUNT] = {
    "name", "location", "pos_x", "pos_y", "calib_k", "calib_b", "calib_t_ref",
    "calib_t_comp", "unit", "range_max", "high_limit", "low_limit", "enabled", "high_limit2",
    "low_limit2", "hysteresis"};

enum ftype { FT_STR, FT_NUM, FT_BOOL };
static const struct {
    enum ftype t;
    size_t max;   /* strings: characters */
    int nullable; /* numbers */
    double lo, hi;
    int calib;
} dev_spec[DF_COUNT] = {
    [DF_NAME] = {FT_STR, 64, 0, 0, 0, 0},
    [DF_LOCATION] = {FT_STR, 128, 0, 0, 0, 0},
    [DF_POS_X] = {FT_NUM, 0, 1, 0, 100, 0},
    [DF_POS_Y] = {FT_NUM, 0, 1, 0, 100, 0},
    [DF_CALIB_K] = {FT_NUM, 0, 0, -1e6, 1e6, 1},
    [DF_CALIB_B] = {FT_NUM, 0, 0, -1e9, 1e9, 1},
    [DF_CALIB_T_REF] = {FT_NUM, 0, 0, -100, 200, 1},
    [DF_CALIB_T_COMP] = {FT_NUM, 0, 0, -1e6, 1e6, 1},
    [DF_UNIT] = {FT_STR, 16, 0, 0, 0, 0},
    [DF_RANGE_MAX] = {FT_NUM, 0, 0, 1e-9, 1e9, 0},
    [DF_HIGH] = {FT_NUM, 0, 1, -1e9, 1e9, 0},
    [DF_LOW] = {FT_NUM, 0, 1, -1e9, 1e9, 0},
    [DF_ENABLED] = {FT_BOOL, 0, 0, 0, 0, 0},
    [DF_HIGH2] = {FT_NUM, 0, 1, -1e9, 1e9, 0},
    [DF_LOW2] = {FT_NUM, 0, 1, -1e9, 1e9, 0},
    [DF_HYST] = {FT_NUM, 0, 1, 0, 1e9, 0},
};

/* Counts UTF-8 characters (the schema's varchar(n) counts characters). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for(; *s; s++)
        if(((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

int rq_device(const cJSON *obj, int create, struct dev_in *out, int *calib, char *err,
              size_t errn)
{
    static const char *const allowed_create[] = {
        "sn", "name", "location", "pos_x", "pos_y", "calib_k", "calib_b", "calib_t_ref",
        "calib_t_comp", "unit", "range_max", "high_limit", "low_limit", "enabled",
        "high_limit2", "low_limit2", "hysteresis", NULL};
    const char *const *allowed = create ? allowed_create : allowed_create + 1;
    int rc;

    memset(out, 0, sizeof(*out));
    *calib = 0;
    rc = rq_known_fields(obj, allowed, err, errn);
    if(rc)
        return rc;
    if(create) {
        const cJSON *sn = cJSON_GetObjectItemCaseSensitive(obj, "sn");
        if(!cJSON_IsString(sn) || !rq_sn_valid(sn->valuestring)) {
            snprintf(err, errn, "sn must match ^[A-Za-z0-9_-]{1,32}$");
            return MCS_EINVAL;
        }
        if(!strcmp(sn->valuestring, "broadcast") || !strcmp(sn->valuestring, "positions")) {
            snprintf(err, errn, "sn '%s' is reserved", sn->valuestring);
            return MCS_EINVAL;
        }
        snprintf(out->sn, sizeof(out->sn), "%s", sn->valuestring);
    }
    for(int f = 0; f < DF_COUNT; f++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, dev_columns[f]);
        if(!v)
            continue;
        out->set[f] = 1;
        if(cJSON_IsNull(v)) {
            if(dev_spec[f].t != FT_NUM || !dev_spec[f].nullable) {
                snprintf(err, errn, "%s must not be null", dev_columns[f]);
                return MCS_EINVAL;
            }
            out->is_null[f] = 1;
            continue;
        }
        switch(dev_spec[f].t) {
        case FT_STR:
            if(!cJSON_IsString(v) || utf8_chars(v->valuestring) > dev_spec[f].max ||
               strlen(v->valuestring) >= sizeof(out->str[f])) {
                snprintf(err, errn, "%s must be a string of at most %zu characters",
                         dev_columns[f], dev_spec[f].max);
                return MCS_EINVAL;
            }
            if(f == DF_UNIT && !v->valuestring[0]) {
                snprintf(err, errn, "unit must not be empty");
                return MCS_EINVAL;
            }
            snprintf(out->str[f], sizeof(out->str[f]), "%s", v->valuestring);
            break;
        case FT_NUM:
            if(!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < dev_spec[f].lo ||
               v->valuedouble > dev_spec[f].hi) {
                *calib = dev_spec[f].calib;
                snprintf(err, errn, "%s must be a number in %g..%g", dev_columns[f],
                         dev_spec[f].lo, dev_spec[f].hi);
                return MCS_EINVAL;
            }
            out->num[f] = v->valuedouble;
            break;
        case FT_BOOL:
            if(!cJSON_IsBool(v)) {
                snprintf(err, errn, "%s must be true or false", dev_columns[f]);
                return MCS_EINVAL;
            }
            out->flag[f] = cJSON_IsTrue(v);
            break;
        }
    }
    if(out->set[DF_CALIB_K] && out->num[DF_CALIB_K] == 0) {
        *calib = 1;
        snprintf(err, errn, "calib_k must not be 0");
        return MCS_EINVAL;
    }
    if(out->set[DF_HIGH] && out->set[DF_LOW] && !out->is_null[DF_HIGH] &&
       !out->is_null[DF_LOW] && out->num[DF_LOW] >= out->num[DF_HIGH]) {
        snprintf(err, errn, "low_limit must be below high_limit");
        return MCS_EINVAL;
    }
    return 0;
}

static int num_field(const cJSON *obj, const char *name, int required, double lo, double hi,
                     double *out, char *err, size_t errn)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if(!v) {
        if(required) {
            snprintf(err, errn, "%s is required", name);
            return MCS_EINVAL;
        }
        return 1;
    }
    if(!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo ||
       v->valuedouble > hi) {
        snprintf(err, errn, "%s must be a number in %g..%g", name, lo, hi);
        return MCS_EINVAL;
    }
    *out = v->valuedouble;
    return 0;
}

int rq_command(const cJSON *obj, cJSON **payload, const char **kind, int *calib, char *err,
               size_t errn)
{
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(obj, "cmd");
    cJSON *p = NULL;
    double d;
    int rc;

    *payload = NULL;
    *calib = 0;
    if(!cJSON_IsString(cmd)) {
        snprintf(err, errn, "cmd must be one of debug, calib, reboot, ota");
        return MCS_EINVAL;
    }
    p = cJSON_CreateObject();
    if(!p) {
        snprintf(err, errn, "out of memory");
        return MCS_ENOMEM;
    }
    if(!strcmp(cmd->valuestring, "debug") || !strcmp(cmd->valuestring, "set_rate")) {
        static const char *const ok[] = {"cmd", "duration", "interval", NULL};
        *kind = "debug";
        rc = rq_known_fields(obj, ok, err, errn);
        if(rc)
            goto fail;
        d = 600;
        rc = num_field(obj, "duration", 0, 1, 1e9, &d, err, errn);
        if(rc < 0)
            goto fail;
        if(d > 600)
            d = 600; /* the server caps debug at 600 s (R-MQ-4) */
        cJSON_AddStringToObject(p, "cmd", "debug");
        cJSON_AddNumberToObject(p, "duration", (double)(long)d);
    } else if(!strcmp(cmd->valuestring, "calib")) {
        static const char *const ok[] = {"cmd", "k", "b", "t_comp", NULL};
        double k = 0, b = 0, t = 0;
        *kind = "calib";
        rc = rq_known_fields(obj, ok, err, errn);
        if(rc)
            goto fail;
        *calib = 1;
        if((rc = num_field(obj, "k", 1, -1e6, 1e6, &k, err, errn)) < 0 ||
           (rc = num_field(obj, "b", 1, -1e9, 1e9, &b, err, errn)) < 0)
            goto fail;
        rc = num_field(obj, "t_comp", 0, -1e6, 1e6, &t, err, errn);
        if(rc < 0)
            goto fail;
        if(k == 0) {
            snprintf(err, errn, "k must not be 0");
            rc = MCS_EINVAL;
            goto fail;
        }
        *calib = 0;
        cJSON_AddStringToObject(p, "cmd", "calib");
        cJSON_AddNumberToObject(p, "k", k);
        cJSON_AddNumberToObject(p, "b", b);
        cJSON_AddNumberToObject(p, "t_comp", t);
    } else if(!strcmp(cmd->valuestring, "reboot")) {
        static const char *const ok[] = {"cmd", "delay", NULL};
        *kind = "reboot";
        rc = rq_known_fields(obj, ok, err, errn);
        if(rc)
            goto fail;
        d = 5;
        rc = num_field(obj, "delay", 0, 0, 3600, &d, err, errn);
        if(rc < 0)
            goto fail;
        cJSON_AddStringToObject(p, "cmd", "reboot");
        cJSON_AddNumberToObject(p, "delay", (double)(long)d);
    } else if(!strcmp(cmd->valuestring, "ota")) {
        static const char *const ok[] = {"cmd", "url", "md5", NULL};
        const cJSON *url = cJSON_GetObjectItemCaseSensitive(obj, "url");
        const cJSON *md5 = cJSON_GetObjectItemCaseSensitive(obj, "md5");
        *kind = "ota";
        rc = rq_known_fields(obj, ok, err, errn);
        if(rc)
            goto fail;
        rc = MCS_EINVAL;
        if(!cJSON_IsString(url) || strncmp(url->valuestring, "https://", 8) != 0 ||
           strlen(url->valuestring) > 512 || strlen(url->valuestring) < 9) {
            snprintf(err, errn, "url must be an https:// URL of at most 512 bytes");
            goto fail;
        }
        for(const char *c = url->valuestring; *c; c++)
            if((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '"' ||
               *c == '\\') {
                snprintf(err, errn, "url contains a character that must be percent-encoded");
                goto fail;
            }
        if(!cJSON_IsString(md5) || strlen(md5->valuestring) != 32 ||
           strspn(md5->valuestring, "0123456789abcdefABCDEF") != 32) {
            snprintf(err, errn, "md5 must be 32 hex digits");
            goto fail;
        }
        cJSON_AddStringToObject(p, "cmd", "ota");
        cJSON_AddStringToObject(p, "url", url->valuestring);
        cJSON_AddStringToObject(p, "md5", md5->valuestring);
    } else {
        snprintf(err, errn, "cmd must be one of debug, calib, reboot, ota");
        rc = MCS_EINVAL;
        goto fail;
    }
    *payload = p;
    return 0;
fail:
    cJSON_Delete(p);
    return rc < 0 ? rc : MCS_EINVAL;
}

/* Appends len bytes of s to out at *o; 0, or -1 when they do not fit. */
static int cat(char *out, size_t n, size_t *o, const char *s, size_t len)
{
    if(*o + len >= n)
        return -1;
    memcpy(out + *o, s, len);
    *o += len;
    out[*o] = '\0';
    return 0;
}

void rq_url_mask(const char *url, char *out, size_t n)
{
    static const char *const names[] = {"access_token=", "key=", "token=", NULL};
    const char *q = strchr(url, '?'), *hook = strstr(url, "/hook/"), *p = url;
    size_t o = 0;
    int bad = 0;

    if(!n)
        return;
    out[0] = '\0';
    if(hook && (!q || hook < q)) {
        const char *end = q ? q : url + strlen(url);
        bad |= cat(out, n, &o, url, (size_t)(hook + 6 - url));
        bad |= cat(out, n, &o, API_SECRET_MASK, strlen(API_SECRET_MASK));
        p = end;
    }
    if(!q) {
        bad |= cat(out, n, &o, p, strlen(p));
    } else {
        bad |= cat(out, n, &o, p, (size_t)(q + 1 - p));
        for(p = q + 1; *p;) {
            size_t len = strcspn(p, "&#");
            int secret = 0;
            for(const char *const *nm = names; *nm; nm++)
                if(!strncmp(p, *nm, strlen(*nm)) && strlen(*nm) <= len) {
                    bad |= cat(out, n, &o, p, strlen(*nm));
                    bad |= cat(out, n, &o, API_SECRET_MASK, strlen(API_SECRET_MASK));
                    secret = 1;
                    break;
                }
            if(!secret)
                bad |= cat(out, n, &o, p, len);
            p += len;
            if(*p == '#') {
                bad |= cat(out, n, &o, p, strlen(p));
                break;
            }
            if(*p)
                bad |= cat(out, n, &o, p++, 1);
        }
    }
    if(bad)
        snprintf(out, n, "%s", API_SECRET_MASK);
}

int rq_same_origin(const char *a, const char *b)
{
    const char *sa = strstr(a, "://"), *sb = strstr(b, "://");
    size_t la, lb;
    if(!sa || !sb)
        return 0;
    la = (size_t)(sa + 3 - a) + strcspn(sa + 3, "/?#");
    lb = (size_t)(sb + 3 - b) + strcspn(sb + 3, "/?#");
    return la == lb && !strncasecmp(a, b, la);
}

long rq_interval(const char *s)
{
    static const struct {
        const char *name;
        long secs;
    } iv[] = {{"raw", 0},     {"1m", 60},     {"5m", 300},    {"15m", 900},
              {"30m", 1800},  {"1h", 3600},   {"6h", 21600},  {"1d", 86400}};
    for(size_t i = 0; i < sizeof(iv) / sizeof(iv[0]); i++)
        if(!strcmp(s, iv[i].name))
            return iv[i].secs;
    return -1;
}

static unsigned long be32(const unsigned char *p)
{
    return ((unsigned long)p[0] << 24) | ((unsigned long)p[1] << 16) |
           ((unsigned long)p[2] << 8) | p[3];
}

int rq_image_info(const unsigned char *buf, size_t n, const char **type, long *width,
                  long *height)
{
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    if(n >= 24 && !memcmp(buf, png_sig, 8)) {
        /* The first chunk must be IHDR of length 13. */
        if(be32(buf + 8) != 13 || memcmp(buf + 12, "IHDR", 4) != 0)
            return MCS_EINVAL;
        *width = (long)be32(buf + 16);
        *height = (long)be32(buf + 20);
        *type = "png";
        return (*width > 0 && *height > 0) ? 0 : MCS_EINVAL;
    }
    if(n >= 4 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) {
        /* Walk the marker segments to the first start-of-frame. */
        size_t i = 2;
        while(i + 4 <= n) {
            unsigned m;
            size_t len;
            if(buf[i] != 0xFF)
                return MCS_EINVAL;
            while(i < n && buf[i] == 0xFF)
                i++;
            if(i >= n)
                return MCS_EINVAL;
            m = buf[i++];
            if(m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7))
                continue;
            if(m == 0xD9 || m == 0xDA)
                return MCS_EINVAL; /* image data before any frame header */
            if(i + 2 > n)
                return MCS_EINVAL;
            len = ((size_t)buf[i] << 8) | buf[i + 1];
            if(len < 2 || i + len > n)
                return MCS_EINVAL;
            if((m >= 0xC0 && m <= 0xCF) && m != 0xC4 && m != 0xC8 && m != 0xCC) {
                if(len < 7)
                    return MCS_EINVAL;
                *height = ((long)buf[i + 3] << 8) | buf[i + 4];
                *width = ((long)buf[i + 5] << 8) | buf[i + 6];
                *type = "jpeg";
                return (*width > 0 && *height > 0) ? 0 : MCS_EINVAL;
            }
            i += len;
        }
        return MCS_EINVAL;
    }
    return MCS_EINVAL;
}
