/* fake_hal.c - the fake HAL of the firmware unit tests (fake_hal.h).
 * MD5 from OpenSSL (the host has libraries; the MCU has its ROM/peripheral).
 * Owns the struct fake. Thread: the test's. */
#include "fake_hal.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t f_millis(void *c)
{
    return ((struct fake *)c)->ms;
}

static uint32_t f_rtc(void *c)
{
    struct fake *f = c;
    return f->rtc_base + f->ms / 1000u;
}

static int f_gas(void *c, float *mv)
{
    struct fake *f = c;
    if(f->gas_fail)
        return FW_E_IO;
    *mv = f->gas_mv;
    return FW_OK;
}

static int f_th(void *c, float *t, float *h, int *has_h)
{
    struct fake *f = c;
    if(f->th_fail)
        return FW_E_IO;
    *t = f->temp;
    *h = f->humi;
    *has_h = f->has_humi;
    return FW_OK;
}

static int f_bat(void *c, int *pct)
{
    *pct = ((struct fake *)c)->bat;
    return FW_OK;
}

static int f_modem(void *c)
{
    return ((struct fake *)c)->modem_rc;
}

static int f_rssi(void *c, int *dbm)
{
    *dbm = ((struct fake *)c)->rssi;
    return FW_OK;
}

static int f_connect(void *c, const struct fw_mqtt_conn *m)
{
    struct fake *f = c;

    f->connect_calls++;
    snprintf(f->conn_client, sizeof(f->conn_client), "%s", m->client_id);
    snprintf(f->conn_user, sizeof(f->conn_user), "%s", m->user);
    snprintf(f->conn_pass, sizeof(f->conn_pass), "%s", m->pass);
    snprintf(f->will_topic, sizeof(f->will_topic), "%s", m->will_topic);
    snprintf(f->will_payload, sizeof(f->will_payload), "%.*s", (int)m->will_len, m->will_payload);
    f->keepalive = m->keepalive_s;
    f->keep_session = m->keep_session;
    f->nsubs = 0;
    if(!f->link_ok)
        return FW_E_IO;
    f->connect_pending = 1;
    return FW_OK;
}

static void f_disconnect(void *c)
{
    struct fake *f = c;
    f->disconnect_calls++;
    f->connected = 0;
    f->connect_pending = 0;
}

static int f_publish(void *c, const char *t, const void *p, size_t len, int qos, int retain,
                     uint16_t *mid)
{
    struct fake *f = c;
    struct fake_pub *pb;

    if(!f->connected)
        return FW_E_IO;
    if(f->npubs >= FAKE_PUB_MAX)
        return FW_E_FULL;
    pb = &f->pubs[f->npubs++];
    snprintf(pb->topic, sizeof(pb->topic), "%s", t);
    snprintf(pb->payload, sizeof(pb->payload), "%.*s", (int)len, (const char *)p);
    pb->qos = qos;
    pb->retain = retain;
    pb->mid = ++f->next_mid;
    if(mid)
        *mid = pb->mid;
    if(qos == 1 && f->nunacked < 64)
        f->unacked[f->nunacked++] = pb->mid;
    return FW_OK;
}

static int f_subscribe(void *c, const char *t, int qos)
{
    struct fake *f = c;
    if(f->nsubs < 4) {
        snprintf(f->subs[f->nsubs], FAKE_TOPIC, "%s", t);
        f->sub_qos[f->nsubs++] = qos;
    }
    return FW_OK;
}

static int f_rec_read(void *c, uint16_t slot, uint8_t buf[FW_REC_SIZE])
{
    struct fake *f = c;
    memcpy(buf, f->slots[slot], FW_REC_SIZE);
    return FW_OK;
}

static int f_rec_write(void *c, uint16_t slot, const uint8_t buf[FW_REC_SIZE])
{
    struct fake *f = c;
    if(f->rec_fail)
        return FW_E_IO;
    f->rec_writes++;
    memcpy(f->slots[slot], buf, FW_REC_SIZE);
    return FW_OK;
}

static int f_rec_erase(void *c, uint16_t slot)
{
    memset(((struct fake *)c)->slots[slot], 0xFF, FW_REC_SIZE);
    return FW_OK;
}

static int f_cfg_read(void *c, void *buf, size_t len)
{
    struct fake *f = c;
    if(len > sizeof(f->cfg))
        return FW_E_IO;
    memcpy(buf, f->cfg, len);
    return FW_OK;
}

static int f_cfg_write(void *c, const void *buf, size_t len)
{
    struct fake *f = c;
    if(len > sizeof(f->cfg))
        return FW_E_IO;
    memcpy(f->cfg, buf, len);
    f->cfg_writes++;
    return FW_OK;
}

static int f_ota_open(void *c, const char *url)
{
    struct fake *f = c;
    (void)url;
    f->img_pos = 0;
    f->written_len = 0;
    f->ota_finished = 0;
    return f->ota_open_rc;
}

static int f_ota_read(void *c, uint8_t *buf, size_t len)
{
    struct fake *f = c;
    size_t n = f->img_len - f->img_pos;

    if(f->ota_read_err && f->img_pos >= f->img_len / 2)
        return FW_E_IO;
    if(n > len)
        n = len;
    if(n == 0)
        return 0;
    memcpy(buf, f->img + f->img_pos, n);
    f->img_pos += n;
    return (int)n;
}

static int f_ota_write(void *c, uint32_t off, const uint8_t *buf, size_t len)
{
    struct fake *f = c;
    if(off + len > sizeof(f->written))
        return FW_E_IO;
    memcpy(f->written + off, buf, len);
    if(off + len > f->written_len)
        f->written_len = off + len;
    return FW_OK;
}

static int f_ota_finish(void *c, int commit)
{
    struct fake *f = c;
    f->ota_finished++;
    f->ota_commit = commit;
    return FW_OK;
}

static void f_md5_begin(void *c)
{
    struct fake *f = c;
    if(!f->md5ctx)
        f->md5ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(f->md5ctx, EVP_md5(), NULL);
}

static void f_md5_update(void *c, const uint8_t *p, size_t len)
{
    EVP_DigestUpdate(((struct fake *)c)->md5ctx, p, len);
}

static void f_md5_end(void *c, uint8_t out[16])
{
    unsigned n = 16;
    EVP_DigestFinal_ex(((struct fake *)c)->md5ctx, out, &n);
}

static void f_wdt(void *c)
{
    ((struct fake *)c)->wdt_feeds++;
}

static void f_led(void *c, enum fw_led_color col, enum fw_led_mode m)
{
    struct fake *f = c;
    f->led_c = col;
    f->led_m = m;
}

static void f_reboot(void *c)
{
    struct fake *f = c;
    f->reboots++;
    f->connected = 0;
    f->connect_pending = 0;
}

static enum fw_reset_cause f_cause(void *c)
{
    return ((struct fake *)c)->cause;
}

void fake_init(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    f->hal = (struct fw_hal){
        .ctx = f,
        .millis = f_millis,
        .rtc_now = f_rtc,
        .gas_read_mv = f_gas,
        .th_read = f_th,
        .battery_pct = f_bat,
        .modem_init = f_modem,
        .rssi_dbm = f_rssi,
        .mqtt_connect = f_connect,
        .mqtt_disconnect = f_disconnect,
        .mqtt_publish = f_publish,
        .mqtt_subscribe = f_subscribe,
        .rec_read = f_rec_read,
        .rec_write = f_rec_write,
        .rec_erase = f_rec_erase,
        .cfg_read = f_cfg_read,
        .cfg_write = f_cfg_write,
        .ota_open = f_ota_open,
        .ota_read = f_ota_read,
        .ota_write = f_ota_write,
        .ota_finish = f_ota_finish,
        .md5_begin = f_md5_begin,
        .md5_update = f_md5_update,
        .md5_end = f_md5_end,
        .wdt_feed = f_wdt,
        .led = f_led,
        .reboot = f_reboot,
        .reset_cause = f_cause,
    };
    f->ms = 5000;
    f->rtc_base = 1734320000u - 5u;
    f->gas_mv = 2350.5f;
    f->temp = 25.4f;
    f->humi = 65.2f;
    f->has_humi = 1;
    f->bat = 85;
    f->rssi = -75;
    f->link_ok = 1;
    f->auto_connack = 1;
    f->auto_puback = 1;
    memset(f->slots, 0xFF, sizeof(f->slots));
    /* Calibrated at the factory: a valid configuration in the EEPROM. */
    struct fw_cfg c;
    fw_cfg_defaults(&c);
    fw_cfg_save(&f->hal, &c);
    f->cfg_writes = 0;
}

void fake_cleanup(struct fake *f)
{
    if(f->md5ctx)
        EVP_MD_CTX_free(f->md5ctx);
    f->md5ctx = NULL;
}

uint32_t fake_step(struct fake *f, struct fw_dev *d)
{
    if(f->connect_pending && f->auto_connack) {
        f->connect_pending = 0;
        f->connected = f->connack_rc == 0;
        fw_on_connack(d, f->connack_rc);
    }
    if(f->auto_puback && f->connected) {
        for(int i = 0; i < f->nunacked; i++)
            fw_on_puback(d, f->unacked[i]);
        f->nunacked = 0;
    }
    uint32_t w = fw_loop(d);
    /* A fast network: what the device just sent is answered at once. */
    if((f->connect_pending && f->auto_connack) || (f->nunacked && f->auto_puback && f->connected))
        w = 0;
    return w;
}

void fake_run(struct fake *f, struct fw_dev *d, uint32_t ms)
{
    uint32_t end = f->ms + ms;
    int spins = 0;

    for(;;) {
        uint32_t w = fake_step(f, d);
        if((int32_t)(f->ms - end) >= 0)
            break;
        if(w == 0 && ++spins < 10000)
            continue;
        spins = 0;
        if(w == 0)
            w = 1;
        if(w > end - f->ms)
            w = end - f->ms;
        f->ms += w;
    }
}

void fake_link_down(struct fake *f, struct fw_dev *d)
{
    f->link_ok = 0;
    f->connected = 0;
    f->connect_pending = 0;
    f->nunacked = 0;
    fw_on_disconnect(d);
}

void fake_link_up(struct fake *f)
{
    f->link_ok = 1;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int fake_count(const struct fake *f, const char *suf, int from)
{
    int n = 0;
    for(int i = from; i < f->npubs; i++)
        n += ends_with(f->pubs[i].topic, suf);
    return n;
}

int fake_seq(const struct fake *f, int i)
{
    const char *p;
    if(!ends_with(f->pubs[i].topic, "/up"))
        return -1;
    p = strstr(f->pubs[i].payload, "\"seq\":");
    return p ? (int)strtol(p + 6, NULL, 10) : -1;
}
