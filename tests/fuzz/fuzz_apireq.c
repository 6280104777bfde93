/* fuzz_apireq.c - libFuzzer target for what a client sends mcs-api (issue
 * #8, STYLE rule 15): JSON request bodies (device, command, field checks),
 * query strings (arguments, integers, booleans, ISO 8601 times, intervals,
 * SNs) and uploaded images (magic bytes and dimensions). The low two bits of
 * the first byte choose: 0 JSON body, 1 query string, 2 image, 3 a time.
 * Seed files start with '0', '1', '2' or '3'. Touches only src/api/reqparse.c. */
#include "fuzz_util.h"

#include "err.h"
#include "reqparse.h"

#include <math.h>

static void fuzz_body(const uint8_t *d, size_t n)
{
    char err[200];
    const char *body = fuzz_tail_copy(d, n);
    cJSON *j = rq_json_object((const unsigned char *)body, n, err, sizeof(err));
    struct dev_in dev;
    cJSON *payload = NULL;
    const char *kind = NULL;
    int calib;

    if(!j) {
        FUZZ_CHECK(err[0]);
        return;
    }
    FUZZ_CHECK(cJSON_IsObject(j));
    for(int create = 0; create < 2; create++) {
        if(rq_device(j, create, &dev, &calib, err, sizeof(err)) == 0) {
            for(int f = 0; f < DF_COUNT; f++) {
                FUZZ_CHECK(strlen(dev.str[f]) < sizeof(dev.str[f]));
                if(dev.set[f] && !dev.is_null[f])
                    FUZZ_CHECK(isfinite(dev.num[f]));
            }
            if(create)
                FUZZ_CHECK(rq_sn_valid(dev.sn));
            if(dev.set[DF_CALIB_K])
                FUZZ_CHECK(dev.num[DF_CALIB_K] != 0);
        }
    }
    if(rq_command(j, &payload, &kind, &calib, err, sizeof(err)) == 0) {
        const cJSON *dur = cJSON_GetObjectItemCaseSensitive(payload, "duration");
        char *s = cJSON_PrintUnformatted(payload);
        FUZZ_CHECK(kind && s);
        if(!strcmp(kind, "debug"))
            FUZZ_CHECK(cJSON_IsNumber(dur) && dur->valuedouble >= 1 && dur->valuedouble <= 600);
        FUZZ_CHECK(strlen(s) < 1024);
        free(s);
        cJSON_Delete(payload);
    } else {
        FUZZ_CHECK(payload == NULL);
    }
    cJSON_Delete(j);
}

static void fuzz_query(const uint8_t *d, size_t n)
{
    static struct api_req rq;
    char frag[300], err[200];
    size_t k = 0;
    long v;
    int b, present;
    int64_t t;
    struct api_page pg;

    memset(&rq, 0, sizeof(rq));
    for(size_t i = 0; i <= n; i++) {
        if(i == n || d[i] == '&') {
            frag[k] = '\0';
            rq_add_arg(&rq, frag);
            k = 0;
            continue;
        }
        if(k < sizeof(frag) - 1 && d[i])
            frag[k++] = (char)d[i];
    }
    FUZZ_CHECK(rq.nargs <= API_MAX_ARGS);
    if(rq_int(&rq, "page", 1, 100000, 1, &v, err, sizeof(err)) == 0)
        FUZZ_CHECK(v >= 1 && v <= 100000);
    if(rq_int(&rq, "size", 1, 200, 20, &v, err, sizeof(err)) == 0)
        FUZZ_CHECK(v >= 1 && v <= 200);
    if(rq_page(&rq, 10000, 2000, &pg, err, sizeof(err)) == 0)
        FUZZ_CHECK(pg.page >= 1 && pg.page <= API_PAGE_MAX && pg.size >= 1 &&
                   pg.size <= 10000 && strtol(pg.lim, NULL, 10) == pg.size &&
                   strtol(pg.off, NULL, 10) == (pg.page - 1) * pg.size);
    if(rq_bool(&rq, "acked", &b, err, sizeof(err)) == 0)
        FUZZ_CHECK(b >= -1 && b <= 1);
    if(rq_time(&rq, "start", &t, &present, err, sizeof(err)) == 0 && present)
        FUZZ_CHECK(t >= -86400 && t < 253402387200LL);
    for(int i = 0; i < rq.nargs; i++) {
        FUZZ_CHECK(strlen(rq.args[i].name) < sizeof(rq.args[i].name));
        rq_sn_valid(rq.args[i].value);
        rq_interval(rq.args[i].value);
        rq_utf8_valid((const unsigned char *)rq.args[i].value, strlen(rq.args[i].value));
    }
}

static void fuzz_image(const uint8_t *d, size_t n)
{
    const char *type = NULL;
    long w = 0, h = 0;
    const unsigned char *img = (const unsigned char *)fuzz_tail_copy(d, n);
    if(rq_image_info(img, n, &type, &w, &h) == 0)
        FUZZ_CHECK(type && w > 0 && h > 0);
}

static void fuzz_time(const uint8_t *d, size_t n)
{
    char s[64];
    int64_t t;
    size_t k = n < sizeof(s) - 1 ? n : sizeof(s) - 1;
    memcpy(s, d, k);
    s[k] = '\0';
    if(rq_parse_time(s, &t) == 0)
        FUZZ_CHECK(t >= -86400 && t < 253402387200LL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if(!size)
        return 0;
    switch(data[0] & 3) {
    case 0:
        fuzz_body(data + 1, size - 1);
        break;
    case 1:
        fuzz_query(data + 1, size - 1);
        break;
    case 2:
        fuzz_image(data + 1, size - 1);
        break;
    default:
        fuzz_time(data + 1, size - 1);
    }
    return 0;
}
