/* timeutil.h - clocks and time formatting. Owns nothing. Thread: any. */
#ifndef MCS_TIMEUTIL_H
#define MCS_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Wall clock (CLOCK_REALTIME) in microseconds / milliseconds since the epoch. */
int64_t mcs_now_us(void);
int64_t mcs_now_ms(void);
/* Monotonic clock in milliseconds, for timeouts and intervals. */
int64_t mcs_mono_ms(void);
/* Formats a wall-clock time as "2026-11-21T23:19:13.123Z" into buf. */
void mcs_time_iso8601(int64_t us, char *buf, size_t n);
/* The absolute time ms milliseconds from now on clock clk, for
 * pthread_cond_timedwait (whose condition uses that clock). */
void mcs_deadline_ts(struct timespec *ts, clockid_t clk, int ms);
/* Sleeps for ms milliseconds (restarting on EINTR). */
void mcs_sleep_ms(int64_t ms);

#endif
