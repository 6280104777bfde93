/* fw_json.h - the firmware core's tiny JSON: a writer into a caller's fixed
 * buffer (telemetry and status payloads) and a reader of one flat object of
 * at most FW_JSON_MAX_KEYS members (the command set of R-MQ-4). No heap, no
 * libc number formatting (newlib's float printf would cost ~10 KB of flash),
 * single precision only (the Cortex-M4 FPU has no doubles). Owns nothing.
 * Thread: the core's main loop. On the host, use a real JSON library. */
#ifndef FW_JSON_H
#define FW_JSON_H

#include <stddef.h>
#include <stdint.h>

/* ---- writer ---------------------------------------------------------- */

/* Output into buf[cap]. Once anything did not fit, `over` is set, every
 * later call does nothing and fw_jw_end returns FW_E_FULL. */
struct fw_jw {
    char *buf;
    size_t cap, len;
    int over;
    int first; /* no member written yet in the current object */
};

void fw_jw_begin(struct fw_jw *w, char *buf, size_t cap); /* writes "{" */
void fw_jw_str(struct fw_jw *w, const char *key, const char *val);
void fw_jw_u32(struct fw_jw *w, const char *key, uint32_t val);
void fw_jw_i32(struct fw_jw *w, const char *key, int32_t val);
/* val given in tenths (23505 -> 2350.5). */
void fw_jw_fixed1(struct fw_jw *w, const char *key, int32_t tenths);
/* Writes "}" and a NUL (not counted). Returns the length, or FW_E_FULL. */
int fw_jw_end(struct fw_jw *w);

/* ---- reader ---------------------------------------------------------- */

#define FW_JSON_MAX_KEYS 8
#define FW_JSON_KEY_MAX 16

enum fw_jtype { FW_JT_STR = 1, FW_JT_NUM, FW_JT_BOOL, FW_JT_NULL };

struct fw_jmember {
    char key[FW_JSON_KEY_MAX];
    enum fw_jtype type;
    const char *str; /* FW_JT_STR: points into the input, not terminated */
    size_t str_len;
    float num;  /* FW_JT_NUM; FW_JT_BOOL: 0 or 1 */
    int is_int; /* FW_JT_NUM written without fraction or exponent */
};

struct fw_jobj {
    struct fw_jmember m[FW_JSON_MAX_KEYS];
    int n;
};

/* Parses len bytes of `in` (no NUL needed) as one flat JSON object: string,
 * number, true/false/null values; string escapes other than \" \\ \/ are
 * refused, as are nesting, duplicate keys, keys longer than
 * FW_JSON_KEY_MAX-1, more than FW_JSON_MAX_KEYS members, numbers beyond
 * +-1e9 and trailing bytes other than white space. Returns FW_OK or
 * FW_E_MALFORMED. Strings borrow from `in`. */
int fw_json_parse(const char *in, size_t len, struct fw_jobj *out);

/* Finds a member by key; NULL when absent. */
const struct fw_jmember *fw_json_get(const struct fw_jobj *o, const char *key);

#endif
