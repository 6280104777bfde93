/* localday.h - the plant's calendar: day numbers, local midnights and the
 * civil date of a day, in the process time zone (TZ, which config.c exports
 * from the TZ setting at start-up, default Asia/Shanghai). A "day number" is
 * a count of calendar days since 1970-01-01 (a date, not an instant); where
 * it begins and ends depends on the zone. Owns nothing. Thread: any (libc's
 * localtime_r/mktime read the zone tzset() loaded before threads started). */
#ifndef MCS_LOCALDAY_H
#define MCS_LOCALDAY_H

#include <stdint.h>
#include <stddef.h>

/* Day number of a civil date (proleptic Gregorian); and back. Pure. */
int64_t mcs_days_from_civil(int y, int m, int d);
void mcs_civil_from_days(int64_t day, int *y, int *m, int *d);

/* Day number of the local calendar day that holds instant t (Unix s). */
int64_t mcs_local_day(int64_t t);

/* The instant (Unix s) at which local day `day` begins: its local 00:00, or
 * the first instant after it when a DST jump skips midnight. The day ends
 * where day + 1 begins (23 or 25 hours on DST change days). */
int64_t mcs_local_midnight(int64_t day);

/* The instant of local wall time hh:mm on day `day` (mktime's choice in a
 * gap or overlap). */
int64_t mcs_local_at(int64_t day, int hour, int minute);

/* Day of week of a day number: 0 = Sunday ... 6 = Saturday. Pure. */
int mcs_weekday(int64_t day);

/* "YYYYMMDD" and "YYYY-MM-DD" of a day number into out (size n >= 11). */
void mcs_day_compact(int64_t day, char *out, size_t n);
void mcs_day_iso(int64_t day, char *out, size_t n);

/* Parses "YYYY-MM-DD" or "YYYYMMDD" into a day number. Returns 0 or
 * MCS_EPARSE. */
int mcs_day_parse(const char *s, int64_t *day);

#endif
