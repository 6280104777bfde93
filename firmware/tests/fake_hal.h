/* fake_hal.h - a fake HAL for the host unit tests of the firmware core: a
 * fake clock moved by the test, sensors set by the test, an in-memory flash
 * record store and config EEPROM, and a transport that records every
 * connect, subscribe and publish (and delivers CONNACK/PUBACK when told).
 * Owns the struct fake it is given. Thread: the test's. */
#ifndef FAKE_HAL_H
#define FAKE_HAL_H

#include "fw_core.h"

#define FAKE_PUB_MAX 4096
#define FAKE_TOPIC 80
#define FAKE_PAYLOAD 300

struct fake_pub {
    char topic[FAKE_TOPIC];
    char payload[FAKE_PAYLOAD];
    int qos, retain;
    uint16_t mid;
};

struct fake {
    struct fw_hal hal;
    uint32_t ms;
    uint32_t rtc_base;
    /* sensors */
    float gas_mv;
    int gas_fail;
    float temp, humi;
    int has_humi, th_fail;
    int bat, rssi;
    int modem_rc;
    enum fw_reset_cause cause;
    /* transport */
    int link_ok;      /* network present: connects are answered */
    int auto_connack; /* deliver CONNACK 0 on the next fake_step */
    int connack_rc;
    int auto_puback; /* acknowledge QoS 1 publishes on the next fake_step */
    int connect_calls, connect_pending, connected;
    int disconnect_calls;
    char conn_client[48], conn_user[48], conn_pass[40], will_topic[FAKE_TOPIC];
    char will_payload[80];
    int keepalive;
    int keep_session;
    char subs[4][FAKE_TOPIC];
    int nsubs, sub_qos[4];
    struct fake_pub pubs[FAKE_PUB_MAX];
    int npubs;
    uint16_t next_mid;
    uint16_t unacked[64];
    int nunacked;
    /* storage */
    uint8_t slots[FW_RING_SLOTS][FW_REC_SIZE];
    uint8_t cfg[64];
    int cfg_writes, rec_writes, rec_fail;
    /* OTA */
    const uint8_t *img;
    size_t img_len, img_pos;
    int ota_open_rc, ota_read_err;
    uint8_t written[4096];
    size_t written_len;
    int ota_finished, ota_commit;
    void *md5ctx;
    /* system */
    int wdt_feeds;
    enum fw_led_color led_c;
    enum fw_led_mode led_m;
    int reboots;
};

/* Sets up *f with a healthy device: gas 2350.5 mV, 25.4 C, 65.2 %, 85 %,
 * -75 dBm, link present with automatic CONNACK and PUBACK, blank flash. */
void fake_init(struct fake *f);
void fake_cleanup(struct fake *f);

/* Delivers pending transport events, then one fw_loop; returns its wait. */
uint32_t fake_step(struct fake *f, struct fw_dev *d);

/* Runs the device for ms of fake time, advancing the clock by what fw_loop
 * asks for (capped at what is left). */
void fake_run(struct fake *f, struct fw_dev *d, uint32_t ms);

/* Cuts the link: the transport reports the loss and refuses connects. */
void fake_link_down(struct fake *f, struct fw_dev *d);
void fake_link_up(struct fake *f);

/* Publishes on topics ending in t_suffix ("/up"), from index `from`. */
int fake_count(const struct fake *f, const char *t_suffix, int from);
/* The seq of publish i (-1 if not telemetry). */
int fake_seq(const struct fake *f, int i);

#endif
