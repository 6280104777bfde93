/* timeutil.c - clock helpers. Owns nothing. Thread: any. */
#define _POSIX_C_SOURCE 200809L
#include "timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

int64_t mcs_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mcs_now_ms(void)
{
    return mcs_now_us() / 1000;
}

int64_t mcs_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mcs_time_iso8601(int64_t us, char *buf, size_t n)
{
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)((us / 1000) % 1000));
}

void mcs_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while(nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

void mcs_deadline_ts(struct timespec *ts, clockid_t clk, int ms)
{
    clock_gettime(clk, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if(ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}
