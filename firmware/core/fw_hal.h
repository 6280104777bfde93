/* fw_hal.h - everything the device firmware core (R-FW-1) needs from the
 * hardware, as one table of functions with the port's context pointer, so
 * that one process can run many devices (the simulator) and one MCU runs
 * one. Ports: firmware/arm (size-check stub), firmware/port-posix (mcs-sim),
 * firmware/tests (fake HAL with a fake clock).
 *
 * Rules for every port: every function returns at once (no blocking waits:
 * the modem driver and downloads work in the background and report through
 * the fw_on_* calls of fw_core.h); functions returning int give 0 (FW_OK) or
 * a negative FW_E... code. The core calls the HAL only from fw_loop() and
 * fw_init(). Owns nothing. */
#ifndef FW_HAL_H
#define FW_HAL_H

#include <stddef.h>
#include <stdint.h>

/* Fixed size of one offline record in the flash record store. */
#define FW_REC_SIZE 32
/* Number of record slots the store must provide (the offline ring). */
#define FW_RING_SLOTS 1000

enum fw_led_color { FW_LED_OFF = 0, FW_LED_GREEN, FW_LED_YELLOW, FW_LED_RED, FW_LED_BLUE };
enum fw_led_mode { FW_LED_STEADY = 0, FW_LED_BLINK };
enum fw_reset_cause { FW_RESET_POWER = 0, FW_RESET_SOFT, FW_RESET_WATCHDOG };

/* What mqtt_connect needs. Strings are the core's and live until the next
 * connect. The Last Will is QoS 1, retained (R-MQ-1). */
struct fw_mqtt_conn {
    const char *client_id;
    const char *user;
    const char *pass;
    const char *will_topic;
    const char *will_payload;
    size_t will_len;
    uint16_t keepalive_s;
    /* 1: clean session off, so that the broker keeps the subscriptions and
     * holds the QoS 1 commands sent while the device was offline. */
    uint8_t keep_session;
};

struct fw_hal {
    void *ctx; /* passed to every function */

    /* Monotonic milliseconds since boot; wraps at 2^32 (the core compares
     * with wrap-safe differences). */
    uint32_t (*millis)(void *ctx);
    /* Battery-backed RTC (DS3231): Unix seconds. */
    uint32_t (*rtc_now)(void *ctx);

    /* Gas sensor through the ADC (ADS1115): millivolts. */
    int (*gas_read_mv)(void *ctx, float *mv);
    /* Temperature (deg C) and humidity (%) (SHT30). A sensor without
     * humidity sets *has_humi = 0. */
    int (*th_read)(void *ctx, float *temp_c, float *humi_pct, int *has_humi);
    /* Battery charge 0..100 %. */
    int (*battery_pct)(void *ctx, int *pct);

    /* Modem power-up and SIM check: FW_OK, FW_E_SIM (SIM fault) or FW_E_IO. */
    int (*modem_init)(void *ctx);
    /* Signal strength in dBm. */
    int (*rssi_dbm)(void *ctx, int *dbm);
    /* Starts an MQTT connection (clean session); the result arrives later
     * through fw_on_connack() or fw_on_disconnect(). */
    int (*mqtt_connect)(void *ctx, const struct fw_mqtt_conn *c);
    /* Closes the connection cleanly (no Last Will). */
    void (*mqtt_disconnect)(void *ctx);
    /* Queues a publish. *mid (may be NULL for QoS 0) identifies it in
     * fw_on_puback() for QoS 1. FW_E_IO when the link is down. */
    int (*mqtt_publish)(void *ctx, const char *topic, const void *payload, size_t len, int qos,
                        int retain, uint16_t *mid);
    int (*mqtt_subscribe)(void *ctx, const char *topic, int qos);

    /* Flash record store of FW_RING_SLOTS slots of FW_REC_SIZE bytes. A
     * power cut during rec_write may leave any mix of old and new bytes in
     * that slot (the core's CRC finds it); erase makes a slot read as
     * invalid. */
    int (*rec_read)(void *ctx, uint16_t slot, uint8_t buf[FW_REC_SIZE]);
    int (*rec_write)(void *ctx, uint16_t slot, const uint8_t buf[FW_REC_SIZE]);
    int (*rec_erase)(void *ctx, uint16_t slot);
    /* Configuration storage (EEPROM 24C32): up to len bytes at offset 0. */
    int (*cfg_read)(void *ctx, void *buf, size_t len);
    int (*cfg_write)(void *ctx, const void *buf, size_t len);

    /* Firmware download into the inactive image slot. ota_open starts
     * fetching url; ota_read gives the next bytes (> 0), 0 at the end,
     * FW_E_AGAIN when none are there yet, or an error; ota_write stores them
     * at offset off of the inactive slot; ota_finish(commit=1) marks that
     * image to boot next time, commit=0 discards it and keeps the running
     * one. */
    int (*ota_open)(void *ctx, const char *url);
    int (*ota_read)(void *ctx, uint8_t *buf, size_t len);
    int (*ota_write)(void *ctx, uint32_t off, const uint8_t *buf, size_t len);
    int (*ota_finish)(void *ctx, int commit);
    /* MD5 of the downloaded image: the MCU's hash peripheral or ROM routine
     * (ESP32-S3 ROM, STM32 HASH), a library on the host. One digest at a
     * time per device. */
    void (*md5_begin)(void *ctx);
    void (*md5_update)(void *ctx, const uint8_t *p, size_t len);
    void (*md5_end)(void *ctx, uint8_t out[16]);

    /* Independent watchdog (30 s): the core feeds it only from fw_loop(). */
    void (*wdt_feed)(void *ctx);
    /* Status LED (WS2812). */
    void (*led)(void *ctx, enum fw_led_color color, enum fw_led_mode mode);
    /* Resets the MCU (on the host: the port re-runs fw_init later). */
    void (*reboot)(void *ctx);
    /* Why the MCU last started. */
    enum fw_reset_cause (*reset_cause)(void *ctx);
};

#endif
