/* alarm_state.c - the alarm engine's memory of devices between batches (see
 * alarm_state.h). Owns the open-hint map; touches nothing else. Thread: the
 * store thread. */
#include "alarm_state.h"
#include "err.h"

#include <math.h>
#include <string.h>

int alarm_state_init(struct alarm_state *s)
{
    memset(s, 0, sizeof(*s));
    return hmap_init(&s->open, sizeof(uint8_t), 0, 0);
}

void alarm_state_cleanup(struct alarm_state *s)
{
    if(!s)
        return;
    hmap_cleanup(&s->open);
}

uint8_t alarm_state_open_mask(const struct alarm_state *s, const char *sn)
{
    const uint8_t *v;
    if(!hmap_count(&s->open))
        return 0;
    v = hmap_find(&s->open, sn, strlen(sn));
    return v ? *v : 0;
}

int alarm_state_set_open(struct alarm_state *s, const char *sn, uint8_t mask)
{
    size_t len = strlen(sn);
    void *v;
    int rc;

    if(len == 0 || len > HMAP_KEY_MAX)
        return MCS_EINVAL;
    if(!mask) {
        hmap_delete(&s->open, sn, len, NULL);
        return 0;
    }
    if((rc = hmap_insert(&s->open, sn, len, &v, NULL)))
        return rc;
    *(uint8_t *)v = mask;
    return 0;
}

int alarm_state_add_open(struct alarm_state *s, const char *sn, uint8_t bits)
{
    return alarm_state_set_open(s, sn, (uint8_t)(alarm_state_open_mask(s, sn) | bits));
}

void alarm_state_clear_open(struct alarm_state *s)
{
    hmap_cleanup(&s->open);
}

void alarm_state_triggers(const struct alarm_limits *lim, double *high, double *low)
{
    /* fmin/fmax return the other operand when one is NaN, as LEAST and
     * GREATEST skip NULLs. */
    *high = fmin(lim->high1, lim->high2);
    *low = fmax(lim->low1, lim->low2);
}

int alarm_state_interesting(const struct alarm_state *s, const char *sn, double high,
                            double low, const struct alarm_sample *smp)
{
    /* A raise needs the value beyond the first limit it crosses: with only
     * that limit as level 1, alarm_decide raises for the same samples. */
    struct alarm_limits lim = {high, NAN, low, NAN, NAN, NAN};

    if(hmap_count(&s->open) && hmap_find(&s->open, sn, strlen(sn)))
        return 1;
    return alarm_any_condition(&lim, smp);
}

size_t alarm_state_nopen(const struct alarm_state *s)
{
    return hmap_count(&s->open);
}

size_t alarm_state_bytes(const struct alarm_state *s)
{
    return s->open.cap * s->open.slot_size;
}
