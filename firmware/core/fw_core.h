/* fw_core.h - the device firmware core (R-FW-1, manual §2.2): the main
 * state machine, sampling and publishing (R-MQ-2), the offline ring,
 * commands (R-MQ-4), error codes (R-MQ-5), Last Will and keep-alive.
 *
 *   power-up -> fw_init: config, sensor self-test, modem
 *        -> SELFTEST_FAILED (red blink; retried every 10 s, after 3 tries
 *           it goes on connecting and reports err 1)
 *        -> CONNECTING (yellow) -> RUNNING (green; blinking in debug mode):
 *           a reading every 10 s, every 1 s in debug mode until its end
 *           time (kept in config, so also across a reboot)
 *        RUNNING -> OFFLINE (yellow blink) on link loss: readings go to the
 *           flash ring, reconnect with backoff; -> RUNNING, the ring is sent
 *           oldest first (QoS 1, erased on PUBACK) before live data.
 *
 * A port allocates one struct fw_dev per device (statically on the MCU; no
 * heap is used anywhere in the core), calls fw_init once per boot and then
 * fw_loop() again whenever the returned number of milliseconds has passed
 * or one of the fw_on_* events arrived. The fw_on_* calls only record the
 * event (they are safe inside a HAL call that fw_loop made, e.g. a publish
 * that finds the link dead); fw_loop acts on them. The watchdog is fed only
 * at the top of fw_loop. Thread: one (the main loop), per device. */
#ifndef FW_CORE_H
#define FW_CORE_H

#include "fw_cfg.h"
#include "fw_err.h"
#include "fw_hal.h"
#include "fw_ring.h"

#include <stddef.h>
#include <stdint.h>

#define FW_SN_MAX 32
#define FW_TOPIC_MAX 80
#define FW_PAYLOAD_MAX 200 /* an R-MQ-2 payload is ~150 bytes */
#define FW_CMD_MAX 256     /* longer commands are refused (too_large) */
#define FW_CMDQ 2          /* commands buffered between two fw_loop calls */
#define FW_WINDOW 8        /* ring records in flight (QoS 1) */
#define FW_DEBUG_MS 1000u  /* debug-mode interval */
#define FW_RATE_MAX_S 600u /* longest debug / set_rate duration (manual §2.4) */
#define FW_KEEPALIVE_S 60u /* R-MQ-8 */
#define FW_CONNECT_TIMEOUT_MS 30000u
#define FW_SELFTEST_RETRY_MS 10000u
#define FW_SELFTEST_TRIES 3
#define FW_OTA_MAX (2u * 1024u * 1024u)
#define FW_OTA_CHUNK 256
#define FW_OTA_STALL_MS 120000u
#define FW_URL_MAX 160
#define FW_CMD_ID_MAX 24 /* a command's "id", echoed in its result */
#define FW_LOOP_MAX_MS 1000u /* fw_loop asks to be called at least this often */

/* Device error codes (R-MQ-5). */
enum fw_devcode {
    FW_ERR_NONE = 0,
    FW_ERR_SENSOR_READ = 1,
    FW_ERR_SENSOR_DATA = 2,
    FW_ERR_TEMP_SENSOR = 3,
    FW_ERR_BAT_LOW = 10,
    FW_ERR_BAT_CRITICAL = 11,
    FW_ERR_WEAK_SIGNAL = 20,
    FW_ERR_SIM = 21,
    FW_ERR_STORAGE_FULL = 30,
    FW_ERR_WATCHDOG = 40,
    FW_ERR_CALIB_LOST = 50
};

enum fw_state {
    FW_ST_INIT = 0,
    FW_ST_SELFTEST_FAILED,
    FW_ST_CONNECTING,
    FW_ST_RUNNING,
    FW_ST_OFFLINE
};

/* Factory data of a device (burnt in at production, manual §7.2). */
struct fw_ident {
    char sn[FW_SN_MAX + 1];
    char pass[33];             /* R-MQ-6 password, computed at the factory */
    char prefix[17];           /* topic prefix, "mcs" */
    char net[8];               /* "4G", "WIFI", "LORA" */
    char ver[12];              /* firmware version, "1.0.2" */
    uint32_t reconnect_min_ms; /* 0: 2000 */
    uint32_t reconnect_max_ms; /* 0: 60000 */
};

/* What the device did since fw_init (plus what it found in flash). */
struct fw_stats {
    uint32_t samples;       /* readings taken */
    uint32_t sent_live;     /* published at once (QoS 0) */
    uint32_t cached;        /* written to the ring */
    uint32_t sent_backlog;  /* ring records published (QoS 1, resends too) */
    uint32_t acked_backlog; /* ring records acknowledged and erased */
    uint32_t dropped_full;  /* oldest records overwritten (err 30) */
    uint32_t lost;          /* readings neither sent nor stored (flash error) */
    uint32_t torn;          /* ring records found torn at boot (skipped) */
    uint32_t cmds_ok;
    uint32_t cmds_rejected; /* malformed, unknown, out of range, busy */
    uint32_t connects;      /* CONNACKs accepted */
    uint32_t link_losses;
    uint32_t ota_ok;
    uint32_t ota_failed;
};

struct fw_dev {
    const struct fw_hal *hal;
    struct fw_ident id;
    struct fw_cfg cfg;
    struct fw_ring ring;
    struct fw_stats st;
    enum fw_state state;
    uint16_t seq;
    uint32_t next_sample_ms;
    uint32_t reconnect_at_ms;
    uint32_t backoff_ms;
    uint32_t connect_started_ms;
    uint32_t selftest_at_ms;
    uint32_t reboot_at_ms;
    uint32_t rng;
    uint8_t connecting;
    uint8_t selftest_fails;
    uint8_t sensor_fault; /* self-test gave up: readings carry err 1 */
    uint8_t reboot_pending;
    uint8_t pend_watchdog; /* err 40 not yet reported */
    uint8_t pend_full;     /* err 30 not yet reported */
    uint8_t calib_lost;    /* err 50 until a calib command */
    uint8_t sim_fault;     /* err 21 */
    /* Events recorded by fw_on_*. */
    uint8_t ev_connack; /* 1 + CONNACK code, 0 = none */
    uint8_t ev_lost;
    struct {
        uint32_t ctr;
        uint16_t mid;
        uint8_t acked;
    } infl[FW_WINDOW];
    uint8_t ninfl;
    struct {
        uint16_t len;
        uint8_t too_large;
        char buf[FW_CMD_MAX];
    } cmdq[FW_CMDQ];
    uint8_t cmdq_n;
    uint32_t cmdq_overflow;
    struct {
        uint8_t active;
        uint8_t want[16];
        uint32_t off;
        uint32_t last_ms;
        uint8_t chunk[FW_OTA_CHUNK];
        char id[FW_CMD_ID_MAX + 1]; /* the ota command's id, for "done"/"failed" */
    } ota;
    enum fw_led_color led_c;
    enum fw_led_mode led_m;
    uint8_t led_set;
    char t_up[FW_TOPIC_MAX], t_status[FW_TOPIC_MAX];
    char t_cmd[FW_TOPIC_MAX], t_bcast[FW_TOPIC_MAX];
    char client_id[FW_SN_MAX + 8];
    char will[48];
    char buf[FW_PAYLOAD_MAX];
};

/* Power-up: loads the configuration, rebuilds the ring from flash, runs the
 * sensor self-test and powers the modem. *id is copied. Returns FW_OK, or
 * FW_E_RANGE for an invalid serial number or topic prefix (nothing else is
 * fatal: a failed self-test is a state). */
int fw_init(struct fw_dev *d, const struct fw_hal *hal, const struct fw_ident *id);

/* One turn of the main loop. Returns the milliseconds after which it wants
 * to run again (0: at once; never more than FW_LOOP_MAX_MS). */
uint32_t fw_loop(struct fw_dev *d);

/* Transport events (see the file comment). rc is the CONNACK reason code. */
void fw_on_connack(struct fw_dev *d, int rc);
void fw_on_disconnect(struct fw_dev *d);
void fw_on_puback(struct fw_dev *d, uint16_t mid);
/* A message on mcs/{sn}/cmd or mcs/broadcast/cmd (payload need not be
 * NUL-terminated; it is copied). Messages on other topics are ignored. */
void fw_on_message(struct fw_dev *d, const char *topic, const void *payload, size_t len);

/* The reporting interval in force now (ms). */
uint32_t fw_interval_ms(const struct fw_dev *d);
/* "init", "selftest_failed", "connecting", "running", "offline". */
const char *fw_state_name(enum fw_state s);

/* Formats the R-MQ-2 payload of r into buf[cap], without net and ver
 * (those go in the online status, once per connection) and without err
 * when it is 0 (the server's default). Returns the length or FW_E_FULL. */
int fw_payload(const struct fw_dev *d, const struct fw_rec *r, char *buf, size_t cap);

#endif
