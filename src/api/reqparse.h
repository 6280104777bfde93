/* reqparse.h - checks of outside input of the REST API: query arguments,
 * times, SNs, JSON bodies, device and command bodies (R-API-3, issue #8
 * "Bad input"). Pure functions over their arguments: no I/O, no globals, so
 * that tests/fuzz/fuzz_apireq.c can drive them. Thread: any. */
#ifndef MCS_REQPARSE_H
#define MCS_REQPARSE_H

#include "api.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* The value of query argument `name`, or NULL when absent. */
const char *rq_arg(const struct api_req *rq, const char *name);

/* Splits one raw "name=value" fragment (as lws hands them over, already
 * URL-decoded) into rq->args. Too many or too long marks rq->args_bad. */
void rq_add_arg(struct api_req *rq, const char *frag);

/* Integer argument in [lo, hi], def when absent. 0, or MCS_EINVAL with a
 * message in err. */
int rq_int(const struct api_req *rq, const char *name, long lo, long hi, long def,
           long *out, char *err, size_t errn);

/* The page and size arguments of a list (§10.2): page in 1..API_PAGE_MAX
 * (default 1), then size in 1..max_size (default def_size); out->lim and
 * out->off hold size and (page - 1) * size as text. 0, or MCS_EINVAL with
 * the first bad argument named in err. */
int rq_page(const struct api_req *rq, long max_size, long def_size, struct api_page *out,
            char *err, size_t errn);

/* Boolean argument ("true"/"false"/"1"/"0"); *out = -1 when absent. */
int rq_bool(const struct api_req *rq, const char *name, int *out, char *err, size_t errn);

/* Parses an ISO 8601 UTC time "YYYY-MM-DDTHH:MM:SS[.fff](Z|+hh:mm|-hh:mm)"
 * or "YYYY-MM-DD" into Unix seconds. Years 1970..9999. 0 or MCS_EINVAL. */
int rq_parse_time(const char *s, int64_t *out);

/* Time argument; *present = 0 and *out untouched when absent. */
int rq_time(const struct api_req *rq, const char *name, int64_t *out, int *present,
            char *err, size_t errn);

/* 1 when sn matches ^[A-Za-z0-9_-]{1,32}$ (the devices.sn check). */
int rq_sn_valid(const char *sn);

/* 1 when the n bytes are valid UTF-8 without NUL bytes. */
int rq_utf8_valid(const unsigned char *s, size_t n);

/* Parses the body as one JSON object (valid UTF-8, nesting at most 16,
 * nothing but white space after it, no "\u0000" escape, no member name
 * twice in any object: src/common/jsoncheck.h). Returns it (caller frees)
 * or NULL with the reason in err. */
cJSON *rq_json_object(const unsigned char *body, size_t len, char *err, size_t errn);

/* 0 when every member of obj is named in allowed (NULL-terminated), else
 * MCS_EINVAL naming the first unknown one. Repeated names were already
 * refused by rq_json_object. */
int rq_known_fields(const cJSON *obj, const char *const *allowed, char *err, size_t errn);

/* A device body (POST /api/devices, PUT /api/devices/{sn}). Each settable
 * column is either absent, a value, or (nullable ones) null. */
enum dev_field {
    DF_NAME, DF_LOCATION, DF_POS_X, DF_POS_Y, DF_CALIB_K, DF_CALIB_B, DF_CALIB_T_REF,
    DF_CALIB_T_COMP, DF_UNIT, DF_RANGE_MAX, DF_HIGH, DF_LOW, DF_ENABLED, DF_HIGH2, DF_LOW2,
    DF_HYST, DF_COUNT
};
struct dev_in {
    char sn[33];
    int set[DF_COUNT];
    int is_null[DF_COUNT];
    double num[DF_COUNT];
    char str[DF_COUNT][129];
    int flag[DF_COUNT];
};
/* Column names of the fields, in enum order. */
extern const char *const dev_columns[DF_COUNT];
/* create: sn is required and allowed. Returns 0, or MCS_EINVAL with err;
 * *calib set to 1 when the error is about calibration (40004). */
int rq_device(const cJSON *obj, int create, struct dev_in *out, int *calib, char *err,
              size_t errn);

/* A device command (R-MQ-4). On success *payload is the JSON to publish
 * (caller frees) and *kind one of "debug", "calib", "reboot", "ota";
 * *calib = 1 when the error is a calibration error (40004). */
int rq_command(const cJSON *obj, cJSON **payload, const char **kind, int *calib, char *err,
               size_t errn);

/* Copies url into out (n bytes) with the values of the access-token query
 * arguments (access_token: DingTalk; key: WeCom; token) and the path after
 * "/hook/" (Feishu) replaced by API_SECRET_MASK: robot URLs carry their
 * credential in the URL. A URL that does not fit is masked whole. */
void rq_url_mask(const char *url, char *out, size_t n);

/* 1 when a and b have the same scheme and authority (host, port, user
 * info), ignoring case; where a request with a secret goes. */
int rq_same_origin(const char *a, const char *b);

/* History interval: "raw" -> 0, "1m" -> 60 ... "1d" -> 86400; -1 unknown. */
long rq_interval(const char *s);

/* Sniffs a PNG or JPEG and decodes its dimensions. Returns 0 with *type
 * "png"/"jpeg", or MCS_EINVAL (not an image we accept, or truncated). */
int rq_image_info(const unsigned char *buf, size_t n, const char **type, long *width,
                  long *height);

#endif
