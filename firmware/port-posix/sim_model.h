/* sim_model.h - the physical world of one simulated detector (R-FW-2): the
 * gas sensor's output with noise, slow zero drift and temperature
 * influence, gas releases that rise past level 1 / level 2 and decay,
 * temperature and humidity through the day, battery discharge, signal
 * strength (some devices behind a weak signal), rare read failures. What
 * the simulator's HAL returns to the firmware core. Owns the caller's
 * struct. Thread: the simulator's loop. */
#ifndef SIM_MODEL_H
#define SIM_MODEL_H

#include <stdint.h>

struct sim_model_opts {
    double level1_mv;      /* reading at the first alarm level (default 1100) */
    double level2_mv;      /* second level (default 2100) */
    double leaks_per_hour; /* random releases per device per hour */
    double bat_per_hour;   /* battery discharge, % per hour */
};

struct sim_model {
    uint32_t rng;
    double v_zero;                       /* mV at 25 C without gas */
    double drift;                        /* mV per hour of zero drift */
    double tc;                           /* mV per deg C */
    double phase;                        /* radians: devices do not share one sine */
    double t_off;                        /* deg C: this room is warmer or colder */
    double bat;                          /* % */
    double bat_rate;                     /* % per hour */
    int rssi_base;                       /* dBm */
    double rel_start, rel_end, rel_peak; /* current release, model seconds */
    double last_t;                       /* time of the previous gas reading */
    double g_end;                        /* gas mV when the release stopped (decay start) */
    const struct sim_model_opts *o;
};

/* A varied device: seed makes it reproducible. */
void sim_model_init(struct sim_model *m, uint32_t seed, const struct sim_model_opts *o);

/* A release from t (seconds of model time) for dur seconds, rising towards
 * peak_mv above the zero (0: 1.2 x level 2). */
void sim_model_leak(struct sim_model *m, double t, double dur, double peak_mv);

/* Sensor values at model time t. gas returns -1 for a (rare) read failure. */
int sim_model_gas(struct sim_model *m, double t, float *mv);
void sim_model_th(struct sim_model *m, double t, float *temp, float *humi);
int sim_model_battery(struct sim_model *m, double t);
int sim_model_rssi(struct sim_model *m);

/* Deterministic per-device randomness: uniform [0,1) and ~N(0,1). */
double sim_rndf(uint32_t *s);
double sim_rndn(uint32_t *s);

#endif
