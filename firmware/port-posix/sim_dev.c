/* sim_dev.c - the POSIX HAL of one simulated detector: clock, the sensor
 * model, flash and EEPROM in memory, the modem as a libmosquitto client,
 * OTA from a synthetic image, watchdog and reboot (sim.h). Owns one
 * struct sim_dev and its mosquitto client. Thread: the simulator's loop. */
#include "devcred.h"
#include "sim.h"
#include "sim_tls.h"

#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#define BOOT_MS 2000      /* a reset takes this long before fw_init */
#define WATCHDOG_MS 30000 /* the independent watchdog's timeout */

int64_t sim_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double sim_dev_t(const struct sim_dev *d)
{
    return (double)(sim_now_ms() - d->sim->t0_ms) / 1000.0;
}

/* ---- HAL: clock and sensors ------------------------------------------- */

static uint32_t h_millis(void *c)
{
    struct sim_dev *d = c;
    return (uint32_t)(sim_now_ms() - d->sim->t0_ms);
}

static uint32_t h_rtc(void *c)
{
    (void)c;
    return (uint32_t)time(NULL);
}

static int h_gas(void *c, float *mv)
{
    struct sim_dev *d = c;
    return sim_model_gas(&d->model, sim_dev_t(d), mv) ? FW_E_IO : FW_OK;
}

static int h_th(void *c, float *t, float *h, int *has)
{
    struct sim_dev *d = c;
    sim_model_th(&d->model, sim_dev_t(d), t, h);
    *has = 1;
    return FW_OK;
}

static int h_bat(void *c, int *pct)
{
    struct sim_dev *d = c;
    *pct = sim_model_battery(&d->model, sim_dev_t(d));
    return FW_OK;
}

static int h_modem(void *c)
{
    (void)c;
    return FW_OK;
}

static int h_rssi(void *c, int *dbm)
{
    struct sim_dev *d = c;
    *dbm = sim_model_rssi(&d->model);
    return FW_OK;
}

/* ---- HAL: the modem's MQTT client ------------------------------------- */

static void tcp_sample(struct sim_dev *d)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    int fd = d->mosq ? mosquitto_socket(d->mosq) : -1;

    if(fd < 0)
        return;
    memset(&ti, 0, sizeof(ti));
    if(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return;
    d->tx_cur = ti.tcpi_bytes_acked;
    d->rx_cur = ti.tcpi_bytes_received;
    d->segs_cur = (uint64_t)ti.tcpi_segs_out + ti.tcpi_segs_in;
}

/* The connection is gone: its bytes go to the totals. */
static void conn_gone(struct sim_dev *d)
{
    d->tx_done += d->tx_cur;
    d->rx_done += d->rx_cur;
    d->segs_done += d->segs_cur;
    d->tx_cur = d->rx_cur = d->segs_cur = 0;
    mqe_closed(&d->mq);
    if(d->link) {
        d->link = 0;
        fw_on_disconnect(&d->fw);
        d->kicked = 1;
    }
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    struct sim_dev *d = obj;

    (void)m;
    if(rc == 0) {
        d->link = 2;
        if(!d->connect_bytes) {
            tcp_sample(d);
            d->connect_bytes = d->tx_cur + d->rx_cur;
        }
    }
    else if(d->sim->fail_lines++ < 5) {
        fprintf(stderr, "mcs-sim: %s refused by the broker: %s\n", d->id.sn,
                mosquitto_connack_string(rc));
    }
    fw_on_connack(&d->fw, rc);
    d->kicked = 1;
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    (void)rc;
    conn_gone(obj);
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    struct sim_dev *d = obj;
    (void)m;
    fw_on_puback(&d->fw, (uint16_t)mid);
    d->kicked = 1;
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    struct sim_dev *d = obj;
    (void)m;
    fw_on_message(&d->fw, msg->topic, msg->payload, (size_t)msg->payloadlen);
    d->kicked = 1;
}

static void drop_client(struct sim_dev *d)
{
    if(!d->mosq)
        return;
    tcp_sample(d);
    mqe_forget(d->sim->epfd, &d->mq);
    mosquitto_destroy(d->mosq); /* closes the socket; no DISCONNECT */
    d->mosq = NULL;
    mqe_init(&d->mq, NULL);
    conn_gone(d);
}

static int h_connect(void *c, const struct fw_mqtt_conn *mc)
{
    struct sim_dev *d = c;
    const struct sim_opts *o = &d->sim->o;
    int rc;

    d->link = 0; /* an old client is dropped without a loss event */
    drop_client(d);
    if(sim_now_ms() < d->link_back_ms)
        return FW_E_IO; /* no network */
    /* A fresh client per connection: nothing of the client's own state
     * (queued messages, mids) survives, as with the modem's own MQTT stack;
     * the broker's side of the session does when the core asks for it. */
    d->mosq = mosquitto_new(mc->client_id, !mc->keep_session, d);
    if(!d->mosq)
        return FW_E_IO;
    mqe_init(&d->mq, d->mosq);
    mosquitto_int_option(d->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_connect_callback_set(d->mosq, on_connect);
    mosquitto_disconnect_callback_set(d->mosq, on_disconnect);
    mosquitto_publish_callback_set(d->mosq, on_publish);
    mosquitto_message_callback_set(d->mosq, on_message);
    mosquitto_username_pw_set(d->mosq, mc->user, mc->pass);
    mosquitto_will_set(d->mosq, mc->will_topic, (int)mc->will_len, mc->will_payload, 1, true);
    if(d->sim->tls && sim_tls_use(d->mosq, d->sim->tls) != MOSQ_ERR_SUCCESS)
        goto fail;
    /* Non-blocking: a broker slow to accept (a connect storm) must not stall
     * the other devices; TCP, TLS and CONNECT complete on the loop (see
     * sim_dev_io for the TLS part). */
    rc = mosquitto_connect_async(d->mosq, o->host, o->port, mc->keepalive_s);
    if(rc != MOSQ_ERR_SUCCESS) {
        if(d->sim->fail_lines++ < 5)
            fprintf(stderr, "mcs-sim: %s: connect to %s:%d: %s\n", d->id.sn, o->host, o->port,
                    rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        goto fail;
    }
    d->link = 1;
    mqe_sync(d->sim->epfd, &d->mq, d);
    return FW_OK;
fail:
    mosquitto_destroy(d->mosq);
    d->mosq = NULL;
    mqe_init(&d->mq, NULL);
    return FW_E_IO;
}

static void h_disconnect(void *c)
{
    struct sim_dev *d = c;

    if(d->mosq && d->link == 2) {
        tcp_sample(d);
        mosquitto_disconnect(d->mosq); /* DISCONNECT is written at once */
    }
    drop_client(d);
}

static int h_publish(void *c, const char *t, const void *p, size_t len, int qos, int retain,
                     uint16_t *mid)
{
    struct sim_dev *d = c;
    int m = 0;

    if(!d->mosq || d->link != 2)
        return FW_E_IO;
    if(mosquitto_publish(d->mosq, &m, t, (int)len, p, qos, retain != 0) != MOSQ_ERR_SUCCESS)
        return FW_E_IO;
    if(mid)
        *mid = (uint16_t)m;
    return FW_OK;
}

static int h_subscribe(void *c, const char *t, int qos)
{
    struct sim_dev *d = c;

    if(!d->mosq || d->link != 2)
        return FW_E_IO;
    return mosquitto_subscribe(d->mosq, NULL, t, qos) == MOSQ_ERR_SUCCESS ? FW_OK : FW_E_IO;
}

/* ---- HAL: storage ----------------------------------------------------- */

static int h_rec_read(void *c, uint16_t slot, uint8_t buf[FW_REC_SIZE])
{
    struct sim_dev *d = c;

    if(!d->flash)
        memset(buf, 0xFF, FW_REC_SIZE);
    else
        memcpy(buf, d->flash[slot], FW_REC_SIZE);
    return FW_OK;
}

static int h_rec_write(void *c, uint16_t slot, const uint8_t buf[FW_REC_SIZE])
{
    struct sim_dev *d = c;

    if(!d->flash) {
        /* Most devices never go offline: flash only for those that do. */
        d->flash = malloc((size_t)FW_RING_SLOTS * FW_REC_SIZE);
        if(!d->flash)
            return FW_E_IO;
        memset(d->flash, 0xFF, (size_t)FW_RING_SLOTS * FW_REC_SIZE);
    }
    memcpy(d->flash[slot], buf, FW_REC_SIZE);
    return FW_OK;
}

static int h_rec_erase(void *c, uint16_t slot)
{
    struct sim_dev *d = c;

    if(d->flash)
        memset(d->flash[slot], 0xFF, FW_REC_SIZE);
    return FW_OK;
}

static int h_cfg_read(void *c, void *buf, size_t len)
{
    struct sim_dev *d = c;

    if(len > sizeof(d->cfg))
        return FW_E_IO;
    memcpy(buf, d->cfg, len);
    return FW_OK;
}

static int h_cfg_write(void *c, const void *buf, size_t len)
{
    struct sim_dev *d = c;

    if(len > sizeof(d->cfg))
        return FW_E_IO;
    memcpy(d->cfg, buf, len);
    return FW_OK;
}

/* ---- HAL: OTA from a synthetic image ---------------------------------- */

static uint32_t url_seed(const char *url)
{
    uint32_t h = 2166136261u;
    for(const char *p = url; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h ? h : 1;
}

static uint8_t img_byte(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return (uint8_t)(x >> 24);
}

void sim_ota_md5(const char *url, long size, char out[33])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    uint32_t s = url_seed(url);
    unsigned char h[16], b;
    unsigned n = 16;

    EVP_DigestInit_ex(c, EVP_md5(), NULL);
    for(long i = 0; i < size; i++) {
        b = img_byte(&s);
        EVP_DigestUpdate(c, &b, 1);
    }
    EVP_DigestFinal_ex(c, h, &n);
    EVP_MD_CTX_free(c);
    for(int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static int h_ota_open(void *c, const char *url)
{
    struct sim_dev *d = c;
    const char *v = strrchr(url, '/');
    size_t n;

    d->ota_rng = url_seed(url);
    d->ota_pos = 0;
    d->ota_len = (uint32_t)d->sim->o.ota_size;
    d->ota_ver[0] = '\0';
    /* ".../v1.0.3.bin" becomes version 1.0.3 once booted. */
    if(v && v[1] == 'v' && (n = strlen(v + 2)) > 4 && n < sizeof(d->ota_ver) + 4 &&
       !strcmp(v + 2 + n - 4, ".bin")) {
        memcpy(d->ota_ver, v + 2, n - 4);
        d->ota_ver[n - 4] = '\0';
    }
    return FW_OK;
}

static int h_ota_read(void *c, uint8_t *buf, size_t len)
{
    struct sim_dev *d = c;
    size_t i;

    for(i = 0; i < len && d->ota_pos < d->ota_len; i++, d->ota_pos++)
        buf[i] = img_byte(&d->ota_rng);
    return (int)i;
}

static int h_ota_write(void *c, uint32_t off, const uint8_t *buf, size_t len)
{
    (void)c;
    (void)off;
    (void)buf;
    (void)len;
    return FW_OK;
}

static int h_ota_finish(void *c, int commit)
{
    struct sim_dev *d = c;

    if(!commit)
        d->ota_ver[0] = '\0';
    return FW_OK;
}

static void h_md5_begin(void *c)
{
    struct sim_dev *d = c;
    if(!d->md5)
        d->md5 = EVP_MD_CTX_new();
    EVP_DigestInit_ex(d->md5, EVP_md5(), NULL);
}

static void h_md5_update(void *c, const uint8_t *p, size_t len)
{
    EVP_DigestUpdate(((struct sim_dev *)c)->md5, p, len);
}

static void h_md5_end(void *c, uint8_t out[16])
{
    struct sim_dev *d = c;
    unsigned n = 16;
    EVP_DigestFinal_ex(d->md5, out, &n);
    EVP_MD_CTX_free(d->md5);
    d->md5 = NULL;
}

/* ---- HAL: system ------------------------------------------------------ */

static void h_wdt(void *c)
{
    struct sim_dev *d = c;
    d->last_feed_ms = h_millis(c);
}

static void h_led(void *c, enum fw_led_color col, enum fw_led_mode m)
{
    struct sim_dev *d = c;
    d->led_c = col;
    d->led_m = m;
}

static void h_reboot(void *c)
{
    ((struct sim_dev *)c)->reboot_req = 1;
}

static enum fw_reset_cause h_cause(void *c)
{
    return ((struct sim_dev *)c)->cause;
}

/* ---- the device ------------------------------------------------------- */

int sim_dev_setup(struct sim *s, struct sim_dev *d, long idx)
{
    struct fw_cfg cfg;

    memset(d, 0, sizeof(*d));
    d->sim = s;
    d->idx = idx;
    d->hal = (struct fw_hal){
        .ctx = d,
        .millis = h_millis,
        .rtc_now = h_rtc,
        .gas_read_mv = h_gas,
        .th_read = h_th,
        .battery_pct = h_bat,
        .modem_init = h_modem,
        .rssi_dbm = h_rssi,
        .mqtt_connect = h_connect,
        .mqtt_disconnect = h_disconnect,
        .mqtt_publish = h_publish,
        .mqtt_subscribe = h_subscribe,
        .rec_read = h_rec_read,
        .rec_write = h_rec_write,
        .rec_erase = h_rec_erase,
        .cfg_read = h_cfg_read,
        .cfg_write = h_cfg_write,
        .ota_open = h_ota_open,
        .ota_read = h_ota_read,
        .ota_write = h_ota_write,
        .ota_finish = h_ota_finish,
        .md5_begin = h_md5_begin,
        .md5_update = h_md5_update,
        .md5_end = h_md5_end,
        .wdt_feed = h_wdt,
        .led = h_led,
        .reboot = h_reboot,
        .reset_cause = h_cause,
    };
    mqe_init(&d->mq, NULL);
    snprintf(d->id.sn, sizeof(d->id.sn), "%s%06ld", s->o.sn_prefix, s->o.sn_start + idx);
    if(s->o.vendor_secret && mcs_device_password(d->id.sn, s->o.vendor_secret, d->id.pass) != 0)
        return -1;
    snprintf(d->id.prefix, sizeof(d->id.prefix), "%s", s->o.topic_prefix);
    uint32_t r = (uint32_t)idx * 2246822519u + s->o.seed;
    static const char *nets[] = {"4G", "4G", "4G", "4G", "4G", "4G", "WIFI", "LORA"};
    snprintf(d->id.net, sizeof(d->id.net), "%s", nets[(r >> 7) % 8]);
    snprintf(d->id.ver, sizeof(d->id.ver), "%s", (r >> 11) % 5 == 0 ? "1.0.1" : "1.0.2");
    d->id.reconnect_min_ms = (uint32_t)s->o.reconnect_min_ms;
    d->id.reconnect_max_ms = (uint32_t)s->o.reconnect_max_ms;
    sim_model_init(&d->model, s->o.seed * 7919u + (uint32_t)idx, &s->mo);
    /* Factory configuration in the EEPROM: the fleet's interval. */
    fw_cfg_defaults(&cfg);
    cfg.interval_ms = (uint32_t)(s->o.interval_s * 1000.0);
    fw_cfg_save(&d->hal, &cfg);
    d->cause = FW_RESET_POWER;
    return 0;
}

void sim_dev_boot(struct sim_dev *d)
{
    d->boots++;
    d->boot_at_ms = 0;
    d->reboot_req = 0;
    if(d->ota_ver[0]) {
        /* The new image runs: it says so in "ver". */
        snprintf(d->id.ver, sizeof(d->id.ver), "%s", d->ota_ver);
        d->ota_ver[0] = '\0';
    }
    fw_init(&d->fw, &d->hal, &d->id);
    d->last_feed_ms = h_millis(d);
    d->due_ms = sim_now_ms();
}

/* A reset (requested, or the watchdog): the connection dies with the MCU;
 * fw_init runs BOOT_MS later. */
static void reset(struct sim_dev *d, enum fw_reset_cause cause, int64_t now)
{
    drop_client(d);
    d->cause = cause;
    d->boot_at_ms = now + BOOT_MS;
    d->due_ms = d->boot_at_ms;
    d->hung_until_ms = 0;
}

int64_t sim_dev_turn(struct sim_dev *d, int64_t now)
{
    uint32_t w;

    /* Whatever path returns, due_ms is what the caller schedules: the
     * scheduler skips heap entries that do not match it. */
    d->kicked = 0;
    if(d->boot_at_ms) {
        if(now < d->boot_at_ms) {
            d->due_ms = d->boot_at_ms;
            return d->due_ms;
        }
        sim_dev_boot(d);
    }
    if(now < d->hung_until_ms) {
        d->due_ms = d->hung_until_ms; /* stuck: no loop, no watchdog feed */
        return d->due_ms;
    }
    w = fw_loop(&d->fw);
    if(d->reboot_req) {
        reset(d, FW_RESET_SOFT, now);
        return d->due_ms;
    }
    mqe_sync(d->sim->epfd, &d->mq, d);
    d->due_ms = now + w;
    return d->due_ms;
}

static int alive(void *obj)
{
    const struct sim_dev *d = obj;
    return d->mosq && d->link != 0;
}

void sim_dev_io(struct sim_dev *d, uint32_t ev)
{
    if(!d->mosq)
        return;
    /* libmosquitto 2.0.11 resumes a TLS handshake (begun while TCP was still
     * connecting) only in mosquitto_loop_read: while connecting, writable
     * counts as readable too. */
    if(d->link == 1 && (ev & EPOLLOUT))
        ev |= EPOLLIN;
    mqe_io(&d->mq, ev, alive, d);
    /* libmosquitto closes a socket after a failed TLS handshake without
     * calling on_disconnect. */
    if(d->mosq && d->link && mosquitto_socket(d->mosq) < 0)
        conn_gone(d);
    if(d->mosq)
        mqe_sync(d->sim->epfd, &d->mq, d);
}

void sim_dev_misc(struct sim_dev *d, int64_t now)
{
    if(d->boot_at_ms)
        return;
    if(d->mosq && d->link) {
        mosquitto_loop_misc(d->mosq); /* keep-alive PINGREQ when idle */
        tcp_sample(d);
        mqe_sync(d->sim->epfd, &d->mq, d);
    }
    /* The independent watchdog: no feed for 30 s resets the MCU (err 40
     * in the first reading after it). */
    if((int32_t)((uint32_t)(now - d->sim->t0_ms) - d->last_feed_ms) > WATCHDOG_MS) {
        d->wdt_resets++;
        reset(d, FW_RESET_WATCHDOG, now);
    }
}

void sim_dev_cut(struct sim_dev *d, double secs)
{
    int fd;

    d->cuts++;
    d->link_back_ms = sim_now_ms() + (int64_t)(secs * 1000.0);
    if(d->mosq && (fd = mosquitto_socket(d->mosq)) >= 0) {
        tcp_sample(d);
        /* The radio link is gone: no DISCONNECT, the broker sends the Will
         * once it sees the connection end. */
        shutdown(fd, SHUT_RDWR);
    }
}

void sim_dev_hang(struct sim_dev *d, double secs)
{
    d->hung_until_ms = sim_now_ms() + (int64_t)(secs * 1000.0);
    d->due_ms = d->hung_until_ms;
}

void sim_dev_free(struct sim_dev *d)
{
    if(d->mosq)
        mosquitto_destroy(d->mosq);
    d->mosq = NULL;
    if(d->md5)
        EVP_MD_CTX_free(d->md5);
    free(d->flash);
    d->flash = NULL;
}
