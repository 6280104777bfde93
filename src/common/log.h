/* log.h - JSON-line logging (R-OP-3): {"ts","level","module","msg",fields...}.
 * Owns the process-wide log level (the one mutable global we allow) and the
 * output stream. Thread: any; each line is written with one write(2). */
#ifndef MCS_LOG_H
#define MCS_LOG_H

#include <stddef.h>
#include <stdint.h>

enum mcs_log_level {
    MCS_LOG_ERROR = 0,
    MCS_LOG_WARN = 1,
    MCS_LOG_INFO = 2,
    MCS_LOG_DEBUG = 3,
};

extern int mcs_log_level;

/* Parses "ERROR|WARN|INFO|DEBUG" (any case; "WARNING" too). Returns the level
 * or -1 when unknown. */
int mcs_log_level_parse(const char *s);

/* Field constructors for the variadic tail: key, type tag, value. Never pass
 * a secret, password or full license key as a field (STYLE rule 11). */
#define LS(k, v) (const char *)(k), 's', (const char *)(v)
#define LI(k, v) (const char *)(k), 'i', (long long)(v)
#define LF(k, v) (const char *)(k), 'f', (double)(v)

/* Writes one line. The variadic tail is (key, tag, value) triples ended by a
 * NULL key; use the macros below, which add the NULL and check the level
 * before evaluating anything else. Strings are JSON-escaped and cut at 512
 * bytes so that hostile input cannot produce huge or broken lines. */
void mcs_log_write(int level, const char *module, const char *msg, ...);

#define MCS_LOG(l, mod, ...)                                            \
    do {                                                                \
        if((l) <= mcs_log_level)                                        \
            mcs_log_write((l), (mod), __VA_ARGS__, (const char *)0);    \
    } while(0)
#define LOG_E(mod, ...) MCS_LOG(MCS_LOG_ERROR, mod, __VA_ARGS__)
#define LOG_W(mod, ...) MCS_LOG(MCS_LOG_WARN, mod, __VA_ARGS__)
#define LOG_I(mod, ...) MCS_LOG(MCS_LOG_INFO, mod, __VA_ARGS__)
#define LOG_D(mod, ...) MCS_LOG(MCS_LOG_DEBUG, mod, __VA_ARGS__)

/* A token bucket for log lines about outside input: at most `burst` lines,
 * refilled at one line per `interval_ms`. Caller-owned; not thread-safe (one
 * per thread or under the caller's lock). */
struct mcs_ratelimit {
    int64_t interval_ms;
    int burst;
    int tokens;
    int64_t last_ms;
    uint64_t suppressed; /* lines dropped since the last allowed one */
};

void mcs_ratelimit_init(struct mcs_ratelimit *rl, int burst, int64_t interval_ms);

/* Returns 1 when a line may be written now (and the count of lines suppressed
 * before it in *suppressed, then reset), 0 when it must be skipped. */
int mcs_ratelimit_allow(struct mcs_ratelimit *rl, uint64_t *suppressed);

/* Appends src JSON-escaped (without quotes) to dst of size n, cutting at
 * max_in input bytes. Returns bytes written (dst is always NUL-terminated).
 * Well-formed UTF-8 (Chinese names, alarm messages) is copied unchanged; only
 * '"', '\\' and control characters < 0x20 are escaped, as JSON requires; each
 * ill-formed byte (utf8.h) becomes U+FFFD. Never cuts inside a character. */
size_t mcs_json_escape(char *dst, size_t n, const char *src, size_t max_in);

#endif
