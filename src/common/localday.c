/* localday.c - civil-date arithmetic (days_from_civil after H. Hinnant's
 * public-domain algorithm) and the local-zone conversions of localday.h.
 * Owns nothing. Thread: any. */
#include "localday.h"
#include "err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t mcs_days_from_civil(int y, int m, int d)
{
    int64_t yy = (int64_t)y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (int64_t)(m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void mcs_civil_from_days(int64_t day, int *y, int *m, int *d)
{
    int64_t z = day + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t dd = doy - (153 * mp + 2) / 5 + 1;
    int64_t mm = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (mm <= 2));
    *m = (int)mm;
    *d = (int)dd;
}

int64_t mcs_local_day(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    return mcs_days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

int64_t mcs_local_at(int64_t day, int hour, int minute)
{
    struct tm tm;
    int y, m, d;
    mcs_civil_from_days(day, &y, &m, &d);
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

int64_t mcs_local_midnight(int64_t day)
{
    int64_t t = mcs_local_at(day, 0, 0);
    /* Where a DST jump skips 00:00 mktime may normalise into the previous
     * day; the day then begins at the first instant that belongs to it. */
    while(mcs_local_day(t) < day)
        t += 60;
    return t;
}

int mcs_weekday(int64_t day)
{
    /* 1970-01-01 was a Thursday (4). */
    int64_t w = (day + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

void mcs_day_compact(int64_t day, char *out, size_t n)
{
    int y, m, d;
    mcs_civil_from_days(day, &y, &m, &d);
    snprintf(out, n, "%04d%02d%02d", y, m, d);
}

void mcs_day_iso(int64_t day, char *out, size_t n)
{
    int y, m, d;
    mcs_civil_from_days(day, &y, &m, &d);
    snprintf(out, n, "%04d-%02d-%02d", y, m, d);
}

int mcs_day_parse(const char *s, int64_t *day)
{
    int y, m, d, used = 0;
    size_t len = strlen(s);
    if(len == 10 && sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &used) == 3 && used == 10) {
    }
    else if(len == 8 && sscanf(s, "%4d%2d%2d%n", &y, &m, &d, &used) == 3 && used == 8) {
    }
    else
        return MCS_EPARSE;
    if(y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31)
        return MCS_EPARSE;
    *day = mcs_days_from_civil(y, m, d);
    int yy, mm, dd;
    mcs_civil_from_days(*day, &yy, &mm, &dd);
    return (yy == y && mm == m && dd == d) ? 0 : MCS_EPARSE;
}
