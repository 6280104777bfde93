/* alarm.c - the pure alarm rules (see alarm.h). Owns nothing; no I/O.
 * Thread: any. */
#include "alarm.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define BAT_LOW 20        /* R-MQ-5: battery low below 20 % */
#define BAT_CLEAR_BAND 5  /* LOW_BAT clears at 25 % */

static const char *const type_names[AL_NTYPES] = {"HIGH", "LOW", "OVER_RANGE",
                                                  "LOW_BAT", "DEVICE", "OFFLINE"};

const char *alarm_type_name(int type)
{
    return type >= 0 && type < AL_NTYPES ? type_names[type] : "UNKNOWN";
}

int alarm_type_parse(const char *name)
{
    for(int i = 0; i < AL_NTYPES; i++)
        if(!strcmp(name, type_names[i]))
            return i;
    return -1;
}

enum alarm_category alarm_type_category(int type)
{
    switch(type) {
    case AL_HIGH:
    case AL_LOW:
    case AL_OVER_RANGE:
        return AL_CAT_GAS;
    case AL_LOW_BAT:
    case AL_DEVICE:
    case AL_OFFLINE:
        return AL_CAT_FAULT;
    default:
        return AL_CAT_SYSTEM;
    }
}

const char *alarm_category_name(enum alarm_category c)
{
    return c == AL_CAT_GAS ? "gas" : c == AL_CAT_FAULT ? "fault" : "system";
}

static double band(const struct alarm_limits *lim, double limit, double hyst_pct)
{
    if(!isnan(lim->hysteresis))
        return lim->hysteresis;
    return fabs(limit) * hyst_pct / 100.0;
}

/* Level a reading has for HIGH (dir 1) or LOW (dir -1), and the limit. */
static int gas_level(double v, double l1, double l2, int dir, double *thr)
{
    if(isnan(v))
        return 0;
    if(!isnan(l2) && (dir > 0 ? v > l2 : v < l2)) {
        *thr = l2;
        return 2;
    }
    if(!isnan(l1) && (dir > 0 ? v > l1 : v < l1)) {
        *thr = l1;
        return 1;
    }
    return 0;
}

static int bat_low(const struct alarm_sample *s)
{
    return s->err == 10 || s->err == 11 || (s->bat != INT32_MIN && s->bat < BAT_LOW);
}

void alarm_decide(int type, const struct alarm_limits *lim, double hyst_pct,
                  const struct alarm_open *st, const struct alarm_sample *s,
                  struct alarm_decision *out)
{
    int level = 0, clear = 0;
    double thr = NAN, value = s->ppm;

    memset(out, 0, sizeof(*out));
    out->action = AL_ACT_NONE;
    if(s->is_status) {
        if(type != AL_OFFLINE)
            return;
        if(!s->online)
            level = 1;
        else
            clear = 1;
        value = NAN;
    }
    else {
        switch(type) {
        case AL_HIGH:
        case AL_LOW: {
            int dir = type == AL_HIGH ? 1 : -1;
            double l1 = dir > 0 ? lim->high1 : lim->low1;
            double l2 = dir > 0 ? lim->high2 : lim->low2;
            level = gas_level(s->ppm, l1, l2, dir, &thr);
            if(!level && st->open) {
                /* Clear only beyond the band around the lowest set level. */
                double ref = !isnan(l1) ? l1 : l2;
                if(isnan(ref))
                    clear = 1; /* the limit was removed */
                else {
                    double b = band(lim, ref, hyst_pct);
                    clear = dir > 0 ? s->ppm <= ref - b : s->ppm >= ref + b;
                }
            }
            break;
        }
        case AL_OVER_RANGE:
            level = s->over_range ? 2 : 0;
            thr = lim->range_max;
            /* Like HIGH (issue #15): a sensor hovering at its range maximum
             * must not clear and raise again every cycle. It clears once the
             * reading is back below range_max by the hysteresis band. */
            if(!level && st->open)
                clear = isnan(lim->range_max) || isnan(s->ppm) ||
                        s->ppm <= lim->range_max - band(lim, lim->range_max, hyst_pct);
            break;
        case AL_LOW_BAT:
            level = bat_low(s) ? 1 : 0;
            thr = BAT_LOW;
            value = s->bat != INT32_MIN ? s->bat : NAN;
            clear = !level && s->err != 10 && s->err != 11 &&
                    (s->bat == INT32_MIN || s->bat >= BAT_LOW + BAT_CLEAR_BAND);
            break;
        case AL_DEVICE:
            level = s->err == 1 || s->err == 2 ? 1 : 0;
            thr = s->err;
            value = s->err;
            clear = !level;
            break;
        case AL_OFFLINE:
            clear = 1; /* any reading: the device is back */
            break;
        default:
            return;
        }
    }
    out->value = value;
    out->threshold = thr;
    if(level) {
        if(!st->open) {
            out->action = AL_ACT_RAISE;
            out->level = level;
        }
        else if(level > st->level) {
            out->action = AL_ACT_LEVEL2;
            out->level = level;
        }
        else {
            out->action = AL_ACT_UPDATE;
            out->level = st->level;
        }
    }
    else if(st->open && clear) {
        out->action = AL_ACT_CLEAR;
        out->level = st->level;
    }
}

void alarm_apply(int type, struct alarm_open *st, const struct alarm_decision *d)
{
    switch(d->action) {
    case AL_ACT_RAISE:
        st->open = 1;
        st->level = d->level;
        st->peak = d->value;
        break;
    case AL_ACT_UPDATE:
    case AL_ACT_LEVEL2:
        if(d->level > st->level)
            st->level = d->level;
        if(type == AL_HIGH)
            st->peak = isnan(st->peak) || d->value > st->peak ? d->value : st->peak;
        else if(type == AL_LOW)
            st->peak = isnan(st->peak) || d->value < st->peak ? d->value : st->peak;
        else
            st->peak = d->value;
        break;
    case AL_ACT_CLEAR:
        st->open = 0;
        st->level = 0;
        break;
    default:
        break;
    }
}

int alarm_any_condition(const struct alarm_limits *lim, const struct alarm_sample *s)
{
    struct alarm_open none = {0, 0, NAN};
    struct alarm_decision d;
    for(int t = 0; t < AL_NTYPES; t++) {
        alarm_decide(t, lim, 0, &none, s, &d);
        if(d.action == AL_ACT_RAISE)
            return 1;
    }
    return 0;
}

int alarm_hhmm_parse(const char *s)
{
    int h = 0, m = 0;
    char tail;
    if(!s || sscanf(s, "%2d:%2d%c", &h, &m, &tail) != 2)
        return -1;
    if(h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0))
        return -1;
    return h * 60 + m;
}

void alarm_local_time(int64_t utc_s, int offset_s, int *isodow, int *minute)
{
    int64_t local = utc_s + offset_s;
    int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
    int64_t sod = local - days * 86400;
    /* 1970-01-01 was a Thursday (ISO day 4). */
    int64_t dow = (days + 3) % 7;
    if(dow < 0)
        dow += 7;
    *isodow = (int)dow + 1;
    *minute = (int)(sod / 60);
}

static int day_on(const struct alarm_schedule *sc, int isodow)
{
    return isodow >= 1 && isodow <= 7 && (sc->days >> (isodow - 1)) & 1;
}

int alarm_schedule_allows(const struct alarm_schedule *sc, int isodow, int minute)
{
    if(!sc->enabled)
        return 1;
    if(sc->start_min == sc->end_min)
        return day_on(sc, isodow);
    if(sc->start_min < sc->end_min)
        return day_on(sc, isodow) && minute >= sc->start_min && minute < sc->end_min;
    /* Crosses midnight: the evening part belongs to today, the morning part
     * to the window that started yesterday. */
    if(minute >= sc->start_min)
        return day_on(sc, isodow);
    if(minute < sc->end_min)
        return day_on(sc, isodow == 1 ? 7 : isodow - 1);
    return 0;
}

int alarm_may_send(const struct alarm_schedule *sc, int level2_override, int level,
                   int64_t utc_s, int offset_s)
{
    int dow, minute;
    if(level >= 2 && level2_override)
        return 1;
    alarm_local_time(utc_s, offset_s, &dow, &minute);
    return alarm_schedule_allows(sc, dow, minute);
}

int alarm_raise_forced(int type, int level)
{
    return level >= 2 && type != AL_OVER_RANGE;
}

int alarm_debounce_ok(int64_t last_notified_ms, int64_t now_ms, int64_t window_ms, int level2)
{
    if(level2 || last_notified_ms <= 0)
        return 1;
    return now_ms - last_notified_ms >= window_ms;
}

int alarm_reminder_due(int open, int acked, int64_t last_notified_ms, int64_t now_ms,
                       int64_t window_ms)
{
    return open && !acked && last_notified_ms > 0 && now_ms - last_notified_ms >= window_ms;
}

int alarm_escalation_due(int open, int acked, int escalated, int64_t raised_ms, int64_t now_ms,
                         int64_t after_ms)
{
    return open && !acked && !escalated && now_ms - raised_ms >= after_ms;
}
