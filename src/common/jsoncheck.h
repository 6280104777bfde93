/* jsoncheck.h - the strictness cJSON lacks, for JSON from outside (MQTT
 * payloads in src/mcsd/payload.c, API bodies and WebSocket frames in
 * src/api/reqparse.c): nothing but white space after the value, no
 * "\u0000" escape (cJSON decodes it to a NUL byte and the string is cut
 * there: "pt_u\u0000x" became "pt_u"), no member name twice in one object
 * (cJSON keeps both, and each reader picks one). cJSON still parses; these
 * checks only look at its result and at the text. Owns nothing.
 * Thread: any. */
#ifndef MCS_JSONCHECK_H
#define MCS_JSONCHECK_H

#include <cJSON.h>
#include <stddef.h>

/* Why mcs_json_parse_strict refused a text. */
enum mcs_json_fault {
    MCS_JSON_OK = 0,
    MCS_JSON_SYNTAX,   /* cJSON could not parse it (or len is 0) */
    MCS_JSON_TRAILING, /* something other than white space follows the value */
    MCS_JSON_NUL,      /* a string or member name holds \u0000 */
    MCS_JSON_DUP       /* a member name appears twice in one object */
};

/* 1 when the JSON text s[0..n) holds a "\u0000" escape inside a string or
 * member name, else 0. Meant for text cJSON has parsed (it tracks string
 * boundaries and escapes, nothing else). */
int mcs_json_has_nul_escape(const char *s, size_t n);

/* The first member name found twice in one object anywhere in j (borrowed
 * from j), or NULL when every object's names are distinct. Objects of up
 * to 16 members are compared pairwise, larger ones sorted (n log n), so a
 * 64 KiB body of one-letter keys costs no quadratic time. Returns NULL
 * too when a sort buffer cannot be allocated and sets *oom (may be NULL). */
const char *mcs_json_dup_key(const cJSON *j, int *oom);

/* Parses s[0..n) (no NUL terminator needed) with cJSON and applies the
 * three checks above. Returns the value (caller frees with cJSON_Delete)
 * and *fault = MCS_JSON_OK, or NULL with *fault set; when the fault is
 * MCS_JSON_DUP and dup is not NULL, the repeated name (at most dupn - 1
 * bytes of it) is copied there. cJSON_ParseWithLengthOpts with
 * require_null_terminated is no substitute: on a length-bounded buffer it
 * demands a NUL byte inside the length, which an MQTT payload has not. */
cJSON *mcs_json_parse_strict(const char *s, size_t n, int *fault, char *dup, size_t dupn);

#endif
