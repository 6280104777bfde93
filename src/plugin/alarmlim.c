/* alarmlim.c - UNKNOWN_DEVICE alarm rate limiting (see alarmlim.h).
 * Owns its table of tracked SNs (a small array, searched linearly: it holds
 * at most max_tracked entries and is touched about once a second).
 * Thread: the plugin's sync thread only. */
#include "alarmlim.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MS 5000
#define MINUTE_MS 60000

/* Extra per-entry state kept beside the public fields. */
struct entry_ext {
    int64_t retry_ms;    /* a failed write is not retried before this */
    int64_t held_minute; /* minute in which a held-back RAISE was counted */
};

/* The private array lives right after the public one in one allocation:
 * v[0..max) then ext[0..max). */
static struct entry_ext *ext_of(struct alarmlim *l)
{
    return (struct entry_ext *)(void *)(l->v + l->cfg.max_tracked);
}

int alarmlim_init(struct alarmlim *l, const struct alarmlim_cfg *cfg)
{
    memset(l, 0, sizeof(*l));
    l->cfg = *cfg;
    if(l->cfg.max_tracked == 0)
        l->cfg.max_tracked = 1;
    if(l->cfg.min_attempts == 0)
        l->cfg.min_attempts = 1;
    l->v = calloc(l->cfg.max_tracked, sizeof(struct alarmlim_sn) + sizeof(struct entry_ext));
    return l->v ? 0 : MCS_ENOMEM;
}

void alarmlim_cleanup(struct alarmlim *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static long find(const struct alarmlim *l, const char *sn)
{
    for(size_t i = 0; i < l->n; i++)
        if(!strcmp(l->v[i].sn, sn))
            return (long)i;
    return -1;
}

static void remove_at(struct alarmlim *l, size_t i)
{
    struct entry_ext *x = ext_of(l);
    l->n--;
    if(i != l->n) {
        l->v[i] = l->v[l->n];
        x[i] = x[l->n];
    }
}

void alarmlim_note(struct alarmlim *l, const char *sn, const char *addr, int64_t now_ms)
{
    struct entry_ext *x = ext_of(l);
    struct alarmlim_sn *e;
    long i = find(l, sn);

    if(i < 0) {
        if(strlen(sn) > ALARMLIM_SN_MAX)
            return;
        if(l->n == l->cfg.max_tracked) {
            /* Full: forget the SN that has been quiet longest. */
            size_t old = 0;
            for(size_t k = 1; k < l->n; k++)
                if(l->v[k].last_ms < l->v[old].last_ms)
                    old = k;
            remove_at(l, old);
        }
        i = (long)l->n++;
        e = &l->v[i];
        memset(e, 0, sizeof(*e));
        memset(&x[i], 0, sizeof(x[i]));
        snprintf(e->sn, sizeof(e->sn), "%s", sn);
        e->first_ms = now_ms;
    }
    e = &l->v[i];
    if(e->raised_ms && now_ms - e->raised_ms >= l->cfg.window_ms) {
        /* The alarm's window is over: the next attempts make a new one. */
        e->raised_ms = 0;
        e->alarm_id = 0;
        e->attempts = 0;
        e->pending = 0;
        e->first_ms = now_ms;
    }
    else if(!e->raised_ms && now_ms - e->first_ms >= l->cfg.window_ms) {
        /* Too few attempts in a whole window to count as "repeated". */
        e->attempts = 0;
        e->pending = 0;
        e->first_ms = now_ms;
    }
    e->attempts++;
    e->pending++;
    e->last_ms = now_ms;
    snprintf(e->addr, sizeof(e->addr), "%s", addr ? addr : "");
}

enum alarmlim_action alarmlim_next(struct alarmlim *l, int64_t now_ms, struct alarmlim_work *w)
{
    struct entry_ext *x = ext_of(l);

    memset(w, 0, sizeof(*w));
    if(now_ms - l->minute_start_ms >= MINUTE_MS) {
        l->minute_start_ms = now_ms;
        l->raised_in_minute = 0;
    }
    for(size_t i = 0; i < l->n;) {
        struct alarmlim_sn *e = &l->v[i];
        int quiet = now_ms - e->last_ms >= l->cfg.window_ms;
        if(quiet && (e->pending == 0 || e->raised_ms == 0)) {
            remove_at(l, i); /* nothing owed, or never reached the threshold */
            continue;
        }
        if(e->pending == 0 || x[i].retry_ms > now_ms) {
            i++;
            continue;
        }
        if(e->raised_ms && e->alarm_id > 0) {
            w->action = ALARMLIM_COUNT;
        }
        else if(!e->raised_ms && e->attempts >= l->cfg.min_attempts) {
            if(l->raised_in_minute >= l->cfg.max_per_min) {
                if(x[i].held_minute != l->minute_start_ms) {
                    x[i].held_minute = l->minute_start_ms;
                    l->suppressed++;
                }
                i++;
                continue;
            }
            w->action = ALARMLIM_RAISE;
        }
        else {
            i++;
            continue;
        }
        snprintf(w->sn, sizeof(w->sn), "%s", e->sn);
        snprintf(w->addr, sizeof(w->addr), "%s", e->addr);
        w->count = e->pending;
        w->alarm_id = e->alarm_id;
        return w->action;
    }
    return ALARMLIM_NONE;
}

void alarmlim_done(struct alarmlim *l, const struct alarmlim_work *w, int64_t alarm_id,
                   int64_t now_ms)
{
    struct entry_ext *x = ext_of(l);
    long i = find(l, w->sn);
    struct alarmlim_sn *e;

    if(i < 0)
        return;
    e = &l->v[i];
    if(alarm_id <= 0) {
        x[i].retry_ms = now_ms + RETRY_MS;
        return;
    }
    x[i].retry_ms = 0;
    e->pending = e->pending > w->count ? e->pending - w->count : 0;
    if(w->action == ALARMLIM_RAISE) {
        e->raised_ms = now_ms;
        e->alarm_id = alarm_id;
        l->raised_in_minute++;
    }
}
