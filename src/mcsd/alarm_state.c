/* alarm_state.c - the alarm engine's memory of devices between batches (see
 * alarm_state.h). Owns the two maps; touches nothing else. Thread: the
 * store thread. */
#include "alarm_state.h"
#include "err.h"

#include <math.h>
#include <string.h>

int alarm_state_init(struct alarm_state *s)
{
    int rc;
    memset(s, 0, sizeof(*s));
    if((rc = hmap_init(&s->trig, sizeof(struct alarm_trig), 0, 0)))
        return rc;
    return hmap_init(&s->open, sizeof(uint8_t), 0, 0);
}

void alarm_state_cleanup(struct alarm_state *s)
{
    if(!s)
        return;
    hmap_cleanup(&s->trig);
    hmap_cleanup(&s->open);
}

int alarm_state_set_limits(struct alarm_state *s, const char *sn, const struct alarm_limits *lim)
{
    size_t len = strlen(sn);
    struct alarm_trig t;
    void *v;
    int rc;

    if(len == 0 || len > HMAP_KEY_MAX)
        return MCS_EINVAL;
    /* fmin/fmax return the other operand when one is NaN. */
    t.hi = fmin(lim->high1, lim->high2);
    t.lo = fmax(lim->low1, lim->low2);
    if(isnan(t.hi) && isnan(t.lo)) {
        hmap_delete(&s->trig, sn, len, NULL);
        return 0;
    }
    if((rc = hmap_insert(&s->trig, sn, len, &v, NULL))) {
        hmap_delete(&s->trig, sn, len, NULL);
        return rc;
    }
    memcpy(v, &t, sizeof(t));
    return 0;
}

void alarm_state_forget_limits(struct alarm_state *s, const char *sn)
{
    hmap_delete(&s->trig, sn, strlen(sn), NULL);
}

void alarm_state_clear_limits(struct alarm_state *s)
{
    hmap_cleanup(&s->trig);
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

int alarm_state_interesting(const struct alarm_state *s, const char *sn,
                            const struct alarm_sample *smp)
{
    struct alarm_limits lim = {NAN, NAN, NAN, NAN, NAN, NAN};
    size_t len = strlen(sn);

    if(hmap_count(&s->open) && hmap_find(&s->open, sn, len))
        return 1;
    if(hmap_count(&s->trig)) {
        const struct alarm_trig *t = hmap_find(&s->trig, sn, len);
        if(t) {
            /* A raise needs the value beyond the first limit it crosses:
             * the lower high limit, the higher low limit. */
            lim.high1 = t->hi;
            lim.low1 = t->lo;
        }
    }
    return alarm_any_condition(&lim, smp);
}

size_t alarm_state_ntrig(const struct alarm_state *s)
{
    return hmap_count(&s->trig);
}

size_t alarm_state_nopen(const struct alarm_state *s)
{
    return hmap_count(&s->open);
}

size_t alarm_state_bytes(const struct alarm_state *s)
{
    return s->trig.cap * s->trig.slot_size + s->open.cap * s->open.slot_size;
}
