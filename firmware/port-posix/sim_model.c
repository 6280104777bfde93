/* sim_model.c - sensor, climate, battery and radio model of a simulated
 * detector (sim_model.h). Owns the caller's struct. Thread: the
 * simulator's loop. */
#include "sim_model.h"

#include <math.h>

static uint32_t rnd(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x ? x : 0x9e3779b9u;
    return *s;
}

double sim_rndf(uint32_t *s)
{
    return (double)(rnd(s) >> 8) / 16777216.0;
}

double sim_rndn(uint32_t *s)
{
    return (sim_rndf(s) + sim_rndf(s) + sim_rndf(s) + sim_rndf(s) - 2.0) * 1.732;
}

void sim_model_init(struct sim_model *m, uint32_t seed, const struct sim_model_opts *o)
{
    double r;

    m->o = o;
    m->rng = seed * 2654435761u + 0x6d2b79f5u;
    rnd(&m->rng);
    rnd(&m->rng);
    /* Clean air reads 150-450 mV: well under level 1. */
    m->v_zero = 150.0 + 300.0 * sim_rndf(&m->rng);
    m->drift = sim_rndn(&m->rng) * 0.5;
    m->tc = 1.0 + 2.0 * sim_rndf(&m->rng);
    m->phase = 6.2832 * sim_rndf(&m->rng);
    m->t_off = sim_rndn(&m->rng) * 2.0;
    r = sim_rndf(&m->rng);
    /* A few devices start close to the battery codes (R-MQ-5 10/11). */
    m->bat = r < 0.05 ? 12.0 + 10.0 * sim_rndf(&m->rng) : 40.0 + 60.0 * sim_rndf(&m->rng);
    m->bat_rate = o->bat_per_hour * (0.5 + sim_rndf(&m->rng));
    /* About one in sixteen sits behind a poor signal (< -100 dBm, err 20). */
    m->rssi_base = sim_rndf(&m->rng) < 0.06 ? -104 : -75 + (int)(sim_rndn(&m->rng) * 4.0);
    m->rel_start = m->rel_end = -1.0;
    m->last_t = 0.0;
    m->g_end = 0.0;
}

void sim_model_leak(struct sim_model *m, double t, double dur, double peak_mv)
{
    m->rel_start = t;
    m->rel_end = t + dur;
    m->rel_peak = peak_mv > 0 ? peak_mv : 1.2 * m->o->level2_mv;
    m->g_end = 0.0;
}

/* Gas above the zero at t: a first-order rise while the release lasts, an
 * exponential decay (ventilation) afterwards. */
static double gas(struct sim_model *m, double t)
{
    double rise = m->rel_end - m->rel_start;
    double tau_r = rise / 4.0 < 20.0 ? (rise / 4.0 > 2.0 ? rise / 4.0 : 2.0) : 20.0;

    if(m->rel_start < 0 || t < m->rel_start)
        return 0.0;
    if(t <= m->rel_end) {
        m->g_end = m->rel_peak * (1.0 - exp(-(t - m->rel_start) / tau_r));
        return m->g_end;
    }
    return m->g_end * exp(-(t - m->rel_end) / 45.0);
}

int sim_model_gas(struct sim_model *m, double t, float *mv)
{
    float temp, humi;
    double dt = t - m->last_t, v, p;

    m->last_t = t;
    /* Random releases: peaks spread from just past level 1 to past level 2. */
    if(m->o->leaks_per_hour > 0 && dt > 0 && (m->rel_start < 0 || t > m->rel_end + 300.0) &&
       sim_rndf(&m->rng) < m->o->leaks_per_hour * dt / 3600.0) {
        p = (1.15 * m->o->level1_mv - m->v_zero) +
            sim_rndf(&m->rng) * (1.3 * m->o->level2_mv - 1.15 * m->o->level1_mv);
        sim_model_leak(m, t, 30.0 + 150.0 * sim_rndf(&m->rng), p);
    }
    if(sim_rndf(&m->rng) < 0.0003)
        return -1; /* a bad ADC read now and then: err 1 */
    sim_model_th(m, t, &temp, &humi);
    v = m->v_zero + m->drift * t / 3600.0 + m->tc * ((double)temp - 25.0) + gas(m, t) +
        sim_rndn(&m->rng) * 3.0;
    *mv = (float)(v < 0 ? 0 : v);
    return 0;
}

void sim_model_th(struct sim_model *m, double t, float *temp, float *humi)
{
    /* A day is 86400 s; the plant is 22-28 C. */
    double day = sin(t / 86400.0 * 6.2832 + m->phase);
    *temp = (float)(25.0 + m->t_off + 3.0 * day + sim_rndn(&m->rng) * 0.1);
    *humi = (float)(55.0 - 8.0 * day + sim_rndn(&m->rng) * 0.5);
}

int sim_model_battery(struct sim_model *m, double t)
{
    double b = m->bat - m->bat_rate * t / 3600.0;

    if(b < 3.0) {
        /* Replaced by the maintenance crew. */
        m->bat = 100.0 + m->bat_rate * t / 3600.0;
        b = 100.0;
    }
    return (int)b;
}

int sim_model_rssi(struct sim_model *m)
{
    int r = m->rssi_base + (int)(sim_rndn(&m->rng) * 3.0);
    return r > -51 ? -51 : r;
}
