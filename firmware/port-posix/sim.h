/* sim.h - mcs-sim, the device simulator (R-FW-2, issue #11): the firmware
 * core (firmware/core) with a POSIX HAL, many virtual detectors in one
 * process and one thread, each an unthreaded libmosquitto client (MQTT
 * 3.1.1, TLS with one shared OpenSSL context) on one epoll loop
 * (bench/mqepoll.c), logging in as device_{sn} with its R-MQ-6 password.
 * This header holds the simulator's shared types; sim_dev.c is the HAL of
 * one device, sim_main.c options, scenarios, the scheduler and the
 * counters. Thread: one. */
#ifndef SIM_H
#define SIM_H

#include "fw_core.h"
#include "mqepoll.h"
#include "sim_model.h"

#include <mosquitto.h>
#include <stdint.h>

struct sim_opts {
    const char *host;
    int port;
    const char *cafile;
    const char *vendor_secret;
    const char *sn_prefix;
    const char *topic_prefix;
    long sn_start;
    long devices;
    double interval_s;   /* default reporting interval */
    double duration_s;   /* 0: until SIGINT/SIGTERM or "quit" */
    double connect_rate; /* first connects per second */
    long reconnect_min_ms;
    long reconnect_max_ms;
    double link_loss_per_hour; /* random link losses per device per hour */
    double link_loss_max_s;    /* their longest duration */
    long ota_size;             /* bytes of the simulated firmware image */
    const char *stats_file;
    int control; /* read control lines from stdin */
    int quiet;
    unsigned seed;
};

struct sim_dev {
    struct sim *sim;
    long idx;
    struct fw_dev fw;
    struct fw_hal hal;
    struct fw_ident id;
    struct sim_model model;
    uint8_t (*flash)[FW_REC_SIZE]; /* allocated at the first ring write */
    uint8_t cfg[64];
    struct mosquitto *mosq;
    struct mqe mq;
    int link;              /* 0 down, 1 connecting, 2 up */
    int64_t link_back_ms;  /* network absent until then (link loss) */
    int64_t hung_until_ms; /* main loop stuck (watchdog test) */
    int64_t boot_at_ms;    /* > 0: rebooting, fw_init then */
    int64_t due_ms;        /* next fw_loop */
    uint32_t last_feed_ms;
    enum fw_reset_cause cause;
    int reboot_req;
    int kicked;
    enum fw_led_color led_c;
    enum fw_led_mode led_m;
    /* OTA download of a simulated image. */
    uint32_t ota_len, ota_pos, ota_rng;
    char ota_ver[12];
    void *md5;
    /* Counters beyond the core's own (fw.st). */
    uint32_t boots, wdt_resets, cuts;
    uint64_t tx_done, rx_done, segs_done; /* bytes of closed connections */
    uint64_t tx_cur, rx_cur, segs_cur;    /* of the open one, last sampled */
    uint64_t connect_bytes;               /* bytes up to the first CONNACK */
};

struct sim {
    struct sim_opts o;
    struct sim_model_opts mo;
    int epfd;
    void *tls;     /* SSL_CTX shared by every device */
    int64_t t0_ms; /* monotonic start */
    struct sim_dev *devs;
    int fail_lines;
};

/* Monotonic milliseconds. */
int64_t sim_now_ms(void);

/* Sets up device idx (identity, password, model, factory configuration).
 * Returns 0 or -1. */
int sim_dev_setup(struct sim *s, struct sim_dev *d, long idx);
/* Power-up: fw_init with the device's reset cause. */
void sim_dev_boot(struct sim_dev *d);
/* Runs the device's main loop once if it is due; returns when it is due
 * next (monotonic ms). */
int64_t sim_dev_turn(struct sim_dev *d, int64_t now);
/* Socket events of the device's connection. */
void sim_dev_io(struct sim_dev *d, uint32_t ev);
/* Once a second: keep-alive, byte counters, watchdog. */
void sim_dev_misc(struct sim_dev *d, int64_t now);
/* Link loss now for secs seconds: the connection dies without DISCONNECT
 * (the broker publishes the Last Will) and connects fail until it is back. */
void sim_dev_cut(struct sim_dev *d, double secs);
/* The main loop hangs for secs seconds (the watchdog resets the device
 * after 30 s). */
void sim_dev_hang(struct sim_dev *d, double secs);
void sim_dev_free(struct sim_dev *d);
/* Model seconds of the device's clock. */
double sim_dev_t(const struct sim_dev *d);

/* The MD5 (hex) of the image mcs-sim serves for an OTA url (so a test or
 * the admin can send the right one). */
void sim_ota_md5(const char *url, long size, char out[33]);

#endif
