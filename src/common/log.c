/* log.c - JSON-line logger. Owns the log level global and stderr writes.
 * Thread: any; a line is assembled on the stack and written in one call. */
#include "log.h"
#include "timeutil.h"
#include "utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int mcs_log_level = MCS_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int mcs_log_level_parse(const char *s)
{
    if(!s)
        return -1;
    if(!strcasecmp(s, "error"))
        return MCS_LOG_ERROR;
    if(!strcasecmp(s, "warn") || !strcasecmp(s, "warning"))
        return MCS_LOG_WARN;
    if(!strcasecmp(s, "info"))
        return MCS_LOG_INFO;
    if(!strcasecmp(s, "debug"))
        return MCS_LOG_DEBUG;
    return -1;
}

size_t mcs_json_escape(char *dst, size_t n, const char *src, size_t max_in)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t o = 0;
    if(n == 0)
        return 0;
    for(size_t i = 0; s && s[i] && i < max_in;) {
        char tmp[8];
        const char *out = tmp;
        size_t len, used;
        unsigned cp;
        /* JSON carries UTF-8 as it is: a well-formed sequence is copied
         * whole, only '"', '\\' and controls are escaped (RFC 8259 s. 7),
         * an ill-formed byte becomes U+FFFD so the line stays valid. */
        used = mcs_utf8_next(s + i, strnlen((const char *)s + i, 4), &cp);
        if(used > 1 && i + used > max_in)
            break; /* a character cut by max_in is dropped, not mangled */
        if(used == 0) {
            out = "\xEF\xBF\xBD";
            len = 3;
            used = 1;
        }
        else if(cp == '"' || cp == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)cp;
            len = 2;
        }
        else if(cp < 0x20) {
            len = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", cp);
        }
        else {
            out = (const char *)s + i;
            len = used;
        }
        if(o + len + 1 > n)
            break; /* never half a character or half an escape */
        memcpy(dst + o, out, len);
        o += len;
        i += used;
    }
    dst[o] = '\0';
    return o;
}

void mcs_log_write(int level, const char *module, const char *msg, ...)
{
    char line[4096];
    size_t o = 0;
    char ts[40];
    va_list ap;

    if(level < 0 || level > MCS_LOG_DEBUG)
        level = MCS_LOG_ERROR;
    mcs_time_iso8601(mcs_now_us(), ts, sizeof(ts));
    o += (size_t)snprintf(line + o, sizeof(line) - o,
                          "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"", ts,
                          level_names[level]);
    o += mcs_json_escape(line + o, sizeof(line) - o, module, 64);
    o += (size_t)snprintf(line + o, sizeof(line) - o, "\",\"msg\":\"");
    o += mcs_json_escape(line + o, sizeof(line) - o, msg, 512);
    o += (size_t)snprintf(line + o, sizeof(line) - o, "\"");

    va_start(ap, msg);
    for(;;) {
        const char *key = va_arg(ap, const char *);
        int tag;
        if(!key || o + 64 >= sizeof(line))
            break;
        tag = va_arg(ap, int);
        o += (size_t)snprintf(line + o, sizeof(line) - o, ",\"");
        o += mcs_json_escape(line + o, sizeof(line) - o, key, 64);
        o += (size_t)snprintf(line + o, sizeof(line) - o, "\":");
        if(o >= sizeof(line) - 8)
            break;
        if(tag == 's') {
            const char *v = va_arg(ap, const char *);
            if(!v) {
                o += (size_t)snprintf(line + o, sizeof(line) - o, "null");
            }
            else {
                line[o++] = '"';
                o += mcs_json_escape(line + o, sizeof(line) - o - 8, v, 512);
                line[o++] = '"';
                line[o] = '\0';
            }
        }
        else if(tag == 'i') {
            long long v = va_arg(ap, long long);
            o += (size_t)snprintf(line + o, sizeof(line) - o, "%lld", v);
        }
        else {
            double v = va_arg(ap, double);
            if(v != v || v > 1e300 || v < -1e300)
                o += (size_t)snprintf(line + o, sizeof(line) - o, "null");
            else
                o += (size_t)snprintf(line + o, sizeof(line) - o, "%.6g", v);
        }
        if(o >= sizeof(line) - 8)
            break;
    }
    va_end(ap);
    if(o > sizeof(line) - 3)
        o = sizeof(line) - 3;
    line[o++] = '}';
    line[o++] = '\n';
    /* One write per line keeps lines whole when threads log at once. */
    ssize_t w = write(STDERR_FILENO, line, o);
    (void)w;
}

void mcs_ratelimit_init(struct mcs_ratelimit *rl, int burst, int64_t interval_ms)
{
    memset(rl, 0, sizeof(*rl));
    rl->burst = burst > 0 ? burst : 1;
    rl->tokens = rl->burst;
    rl->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    rl->last_ms = mcs_now_ms();
}

int mcs_ratelimit_allow(struct mcs_ratelimit *rl, uint64_t *suppressed)
{
    int64_t now = mcs_now_ms();
    int64_t refill = (now - rl->last_ms) / rl->interval_ms;
    if(refill > 0) {
        rl->tokens += refill > rl->burst ? rl->burst : (int)refill;
        if(rl->tokens > rl->burst)
            rl->tokens = rl->burst;
        rl->last_ms += refill * rl->interval_ms;
    }
    if(rl->tokens <= 0) {
        rl->suppressed++;
        return 0;
    }
    rl->tokens--;
    if(suppressed)
        *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return 1;
}
