/* fw_core.c - the firmware main state machine, sampling, offline ring use
 * and command handling (fw_core.h). Owns the caller's struct fw_dev. Uses
 * only the HAL; no OS, no heap, single precision. Thread: the main loop. */
#include "fw_core.h"
#include "fw_json.h"

#include <string.h>

/* Wrap-safe "a is at or after b" for millisecond clocks. */
static int due(uint32_t now, uint32_t at)
{
    return (int32_t)(now - at) >= 0;
}

static uint32_t left(uint32_t now, uint32_t at)
{
    return due(now, at) ? 0 : at - now;
}

static uint32_t now_ms(const struct fw_dev *d)
{
    return d->hal->millis(d->hal->ctx);
}

static uint32_t rtc(const struct fw_dev *d)
{
    return d->hal->rtc_now(d->hal->ctx);
}

const char *fw_state_name(enum fw_state s)
{
    switch(s) {
    case FW_ST_INIT:
        return "init";
    case FW_ST_SELFTEST_FAILED:
        return "selftest_failed";
    case FW_ST_CONNECTING:
        return "connecting";
    case FW_ST_RUNNING:
        return "running";
    case FW_ST_OFFLINE:
        return "offline";
    }
    return "?";
}

/* Bounded copy of a NUL-terminated string; 0 when it did not fit. */
static int scopy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if(n >= cap)
        return 0;
    memcpy(dst, src, n + 1);
    return 1;
}

/* Builds "{prefix}/{a}/{b}" into dst. */
static int topic(char *dst, const char *prefix, const char *a, const char *b)
{
    size_t pl = strlen(prefix), al = strlen(a), bl = strlen(b);

    if(pl + al + bl + 3 > FW_TOPIC_MAX)
        return 0;
    memcpy(dst, prefix, pl);
    dst[pl] = '/';
    memcpy(dst + pl + 1, a, al);
    dst[pl + 1 + al] = '/';
    memcpy(dst + pl + 2 + al, b, bl + 1);
    return 1;
}

static int ident_ok(const char *s, size_t maxlen)
{
    size_t n = strlen(s);

    if(n == 0 || n > maxlen)
        return 0;
    for(size_t i = 0; i < n; i++) {
        char c = s[i];
        if(!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static uint32_t rnd(struct fw_dev *d)
{
    uint32_t x = d->rng;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    d->rng = x ? x : 0x9e3779b9u;
    return d->rng;
}

static void led(struct fw_dev *d, enum fw_led_color c, enum fw_led_mode m)
{
    if(d->led_set && d->led_c == c && d->led_m == m)
        return;
    d->led_set = 1;
    d->led_c = c;
    d->led_m = m;
    d->hal->led(d->hal->ctx, c, m);
}

uint32_t fw_interval_ms(const struct fw_dev *d)
{
    if(d->cfg.rate_until && d->cfg.rate_ms)
        return d->cfg.rate_ms;
    return d->cfg.interval_ms;
}

static void show_state(struct fw_dev *d)
{
    if(d->ota.active)
        led(d, FW_LED_BLUE, FW_LED_BLINK);
    else if(d->state == FW_ST_SELFTEST_FAILED)
        led(d, FW_LED_RED, FW_LED_BLINK);
    else if(d->state == FW_ST_CONNECTING)
        led(d, FW_LED_YELLOW, FW_LED_STEADY);
    else if(d->state == FW_ST_OFFLINE)
        led(d, FW_LED_YELLOW, FW_LED_BLINK);
    else if(d->state == FW_ST_RUNNING)
        led(d, FW_LED_GREEN, fw_interval_ms(d) < d->cfg.interval_ms ? FW_LED_BLINK : FW_LED_STEADY);
}

/* ---- self-test and sampling ------------------------------------------- */

static int gas_plausible(float mv)
{
    return mv >= 0.0f && mv <= 5000.0f; /* ADS1115 range at 3.3 V supply */
}

static int selftest(struct fw_dev *d)
{
    float mv = 0.0f;

    if(d->hal->gas_read_mv(d->hal->ctx, &mv) != FW_OK || !gas_plausible(mv))
        return FW_E_IO;
    return FW_OK;
}

static int32_t tenths(float v)
{
    float t = v * 10.0f;

    if(t > 2.0e9f)
        return 2000000000;
    if(t < -2.0e9f)
        return -2000000000;
    return (int32_t)(t < 0.0f ? t - 0.5f : t + 0.5f);
}

/* The one err code of a reading (R-MQ-5): the most urgent condition wins;
 * one-shot conditions (40 watchdog reboot, 30 readings dropped) stay
 * pending until a reading carried them. */
static uint8_t pick_err(struct fw_dev *d, int gas_fail, int gas_bad, int th_fail, int bat, int rssi)
{
    if(gas_fail || d->sensor_fault)
        return FW_ERR_SENSOR_READ;
    if(gas_bad)
        return FW_ERR_SENSOR_DATA;
    if(bat < 10)
        return FW_ERR_BAT_CRITICAL;
    if(bat < 20)
        return FW_ERR_BAT_LOW;
    if(th_fail)
        return FW_ERR_TEMP_SENSOR;
    if(d->pend_full) {
        d->pend_full = 0;
        return FW_ERR_STORAGE_FULL;
    }
    if(d->sim_fault)
        return FW_ERR_SIM;
    if(d->pend_watchdog) {
        d->pend_watchdog = 0;
        return FW_ERR_WATCHDOG;
    }
    if(rssi < -100)
        return FW_ERR_WEAK_SIGNAL;
    if(d->calib_lost)
        return FW_ERR_CALIB_LOST;
    return FW_ERR_NONE;
}

static void sample(struct fw_dev *d, struct fw_rec *r)
{
    const struct fw_hal *h = d->hal;
    float mv = 0.0f, t = 0.0f, hu = 0.0f;
    int has_h = 0, bat = 100, rssi = -113;
    int gas_fail, gas_bad = 0, th_fail;

    memset(r, 0, sizeof(*r));
    r->ts = rtc(d);
    r->seq = d->seq++;
    gas_fail = h->gas_read_mv(h->ctx, &mv) != FW_OK;
    if(gas_fail)
        mv = 0.0f;
    else if(!gas_plausible(mv))
        gas_bad = 1;
    r->v_raw_d = tenths(mv);
    th_fail = h->th_read(h->ctx, &t, &hu, &has_h) != FW_OK || t < -40.0f || t > 125.0f;
    if(!th_fail) {
        r->flags |= FW_REC_F_TEMP;
        r->temp_d = (int16_t)tenths(t);
        if(has_h && hu >= 0.0f && hu <= 100.0f) {
            r->flags |= FW_REC_F_HUMI;
            r->humi_d = (uint16_t)tenths(hu);
        }
    }
    if(h->battery_pct(h->ctx, &bat) != FW_OK)
        bat = 0;
    if(bat < 0)
        bat = 0;
    if(bat > 100)
        bat = 100;
    r->bat = (uint8_t)bat;
    if(h->rssi_dbm(h->ctx, &rssi) != FW_OK || rssi < -128 || rssi > 0)
        rssi = -113;
    r->rssi = (int8_t)rssi;
    r->err = pick_err(d, gas_fail, gas_bad, th_fail, bat, rssi);
    d->st.samples++;
}

int fw_payload(const struct fw_dev *d, const struct fw_rec *r, char *buf, size_t cap)
{
    struct fw_jw w;

    /* Key order and names as R-MQ-2, less what the server knows anyway
     * (R-MQ-8, docs/FIRMWARE.md "What each byte costs"): net and ver do not
     * change while connected, so they go once per connection in the online
     * status (status_online), 25 bytes; err 0 is what the server assumes
     * when err is absent, 8 bytes. Any non-zero err is always sent. The
     * server accepts readings with or without these fields. */
    fw_jw_begin(&w, buf, cap);
    fw_jw_u32(&w, "ts", r->ts);
    fw_jw_u32(&w, "seq", r->seq);
    fw_jw_fixed1(&w, "v_raw", r->v_raw_d);
    if(r->flags & FW_REC_F_TEMP)
        fw_jw_fixed1(&w, "temp", r->temp_d);
    if(r->flags & FW_REC_F_HUMI)
        fw_jw_fixed1(&w, "humi", r->humi_d);
    fw_jw_u32(&w, "bat", r->bat);
    fw_jw_i32(&w, "rssi", r->rssi);
    if(r->err)
        fw_jw_u32(&w, "err", r->err);
    (void)d;
    return fw_jw_end(&w);
}

/* ---- link ------------------------------------------------------------- */

static void schedule_reconnect(struct fw_dev *d, uint32_t now)
{
    uint32_t lo = d->id.reconnect_min_ms ? d->id.reconnect_min_ms : 2000u;
    uint32_t hi = d->id.reconnect_max_ms ? d->id.reconnect_max_ms : 60000u;
    uint32_t wait;

    if(d->backoff_ms < lo)
        d->backoff_ms = lo;
    /* Half fixed, half random: a fleet that lost its cell together does not
     * come back in one storm. */
    wait = d->backoff_ms / 2u + rnd(d) % (d->backoff_ms / 2u + 1u);
    d->reconnect_at_ms = now + wait;
    d->backoff_ms = d->backoff_ms > hi / 2u ? hi : d->backoff_ms * 2u;
}

static void start_connect(struct fw_dev *d, uint32_t now)
{
    struct fw_jw w;
    struct fw_mqtt_conn c;
    int n;

    fw_jw_begin(&w, d->will, sizeof(d->will));
    fw_jw_str(&w, "status", "offline");
    fw_jw_u32(&w, "ts", rtc(d));
    n = fw_jw_end(&w);
    c.client_id = d->client_id;
    c.user = d->client_id; /* device_{sn}, R-MQ-6 */
    c.pass = d->id.pass;
    c.will_topic = d->t_status;
    c.will_payload = d->will;
    c.will_len = n > 0 ? (size_t)n : 0;
    c.keepalive_s = FW_KEEPALIVE_S;
    c.keep_session = 1; /* commands sent while offline arrive on return (#20) */
    if(d->hal->mqtt_connect(d->hal->ctx, &c) != FW_OK) {
        schedule_reconnect(d, now);
        return;
    }
    d->connecting = 1;
    d->connect_started_ms = now;
}

static int publish(struct fw_dev *d, const char *t, const char *p, int len, int qos, int retain,
                   uint16_t *mid)
{
    if(len < 0)
        return len;
    return d->hal->mqtt_publish(d->hal->ctx, t, p, (size_t)len, qos, retain, mid);
}

/* The retained online status, once per connection: it carries what does
 * not change while connected (firmware version, network type), so the
 * server and a worker started later know them without every reading
 * repeating them. A new version comes only with a reboot, a new network
 * only with a new connection: both send this again. */
static void status_online(struct fw_dev *d)
{
    struct fw_jw w;

    fw_jw_begin(&w, d->buf, sizeof(d->buf));
    fw_jw_str(&w, "status", "online");
    fw_jw_u32(&w, "ts", rtc(d));
    fw_jw_str(&w, "ver", d->id.ver);
    fw_jw_str(&w, "net", d->id.net);
    publish(d, d->t_status, d->buf, fw_jw_end(&w), 1, 1, NULL);
}

/* Reports a command outcome on the status topic (not retained): the
 * device may publish only up and status (R-MQ-6). id is the command's own
 * "id" (empty when it had none), so the server can tell which command of
 * several this answers. */
static void report(struct fw_dev *d, const char *id, const char *cmd, const char *result,
                   const char *reason)
{
    struct fw_jw w;

    if(d->state != FW_ST_RUNNING)
        return;
    fw_jw_begin(&w, d->buf, sizeof(d->buf));
    fw_jw_str(&w, "status", "online");
    fw_jw_u32(&w, "ts", rtc(d));
    if(id[0])
        fw_jw_str(&w, "id", id);
    fw_jw_str(&w, "cmd", cmd);
    fw_jw_str(&w, "result", result);
    if(reason)
        fw_jw_str(&w, "reason", reason);
    publish(d, d->t_status, d->buf, fw_jw_end(&w), 1, 0, NULL);
}

static void link_lost(struct fw_dev *d, uint32_t now)
{
    d->connecting = 0;
    d->ninfl = 0;
    fw_ring_rewind(&d->ring);
    if(d->state == FW_ST_RUNNING) {
        d->state = FW_ST_OFFLINE;
        d->st.link_losses++;
        d->backoff_ms = 0;
    }
    schedule_reconnect(d, now);
}

static void handle_events(struct fw_dev *d, uint32_t now)
{
    if(d->ev_connack) {
        int rc = d->ev_connack - 1;
        d->ev_connack = 0;
        if(d->connecting && rc == 0) {
            d->connecting = 0;
            d->state = FW_ST_RUNNING;
            d->backoff_ms = 0;
            d->st.connects++;
            d->ninfl = 0;
            fw_ring_rewind(&d->ring);
            d->hal->mqtt_subscribe(d->hal->ctx, d->t_cmd, 1);
            d->hal->mqtt_subscribe(d->hal->ctx, d->t_bcast, 1);
            status_online(d);
        }
        else if(d->connecting) {
            /* Refused (credentials, not authorised): back off to the
             * longest wait, a refusal does not go away by itself soon. */
            d->connecting = 0;
            d->hal->mqtt_disconnect(d->hal->ctx);
            d->backoff_ms = d->id.reconnect_max_ms ? d->id.reconnect_max_ms : 60000u;
            schedule_reconnect(d, now);
        }
    }
    if(d->ev_lost) {
        d->ev_lost = 0;
        if(d->connecting || d->state == FW_ST_RUNNING)
            link_lost(d, now);
    }
    for(int i = 0; i < d->ninfl;) {
        if(d->infl[i].acked) {
            fw_ring_ack(&d->ring, d->infl[i].ctr);
            d->st.acked_backlog++;
            d->infl[i] = d->infl[--d->ninfl];
        }
        else {
            i++;
        }
    }
}

/* ---- commands (R-MQ-4) ------------------------------------------------ */

static int num_arg(const struct fw_jobj *o, const char *key, float lo, float hi, float dflt,
                   int required, float *out)
{
    const struct fw_jmember *m = fw_json_get(o, key);

    if(!m) {
        *out = dflt;
        return required ? FW_E_MALFORMED : FW_OK;
    }
    if(m->type != FW_JT_NUM)
        return FW_E_MALFORMED;
    if(m->num < lo || m->num > hi)
        return FW_E_RANGE;
    *out = m->num;
    return FW_OK;
}

static int str_is(const struct fw_jmember *m, const char *s)
{
    size_t n = strlen(s);
    return m && m->type == FW_JT_STR && m->str_len == n && !memcmp(m->str, s, n);
}

/* A temporary interval of ms for duration_s seconds (debug, set_rate);
 * duration 0 or the default interval ends it. */
static int set_rate(struct fw_dev *d, uint32_t ms, float duration_s)
{
    uint32_t dur = (uint32_t)duration_s;

    if(dur > FW_RATE_MAX_S)
        dur = FW_RATE_MAX_S;
    if(dur == 0 || ms == d->cfg.interval_ms) {
        d->cfg.rate_ms = 0;
        d->cfg.rate_until = 0;
    }
    else {
        d->cfg.rate_ms = ms;
        d->cfg.rate_until = rtc(d) + dur;
    }
    fw_cfg_save(d->hal, &d->cfg);
    /* The new rate shows at once: the next reading is taken now. */
    d->next_sample_ms = now_ms(d);
    return FW_OK;
}

static int hexval(char c)
{
    if(c >= '0' && c <= '9')
        return c - '0';
    if(c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if(c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int cmd_ota(struct fw_dev *d, const struct fw_jobj *o, const char **why)
{
    const struct fw_jmember *u = fw_json_get(o, "url"), *m = fw_json_get(o, "md5");
    char url[FW_URL_MAX + 1];

    if(!u || u->type != FW_JT_STR || !m || m->type != FW_JT_STR || m->str_len != 32 ||
       u->str_len < 8 || u->str_len > FW_URL_MAX) {
        *why = "bad_args";
        return FW_E_MALFORMED;
    }
    memcpy(url, u->str, u->str_len);
    url[u->str_len] = '\0';
    if((strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) || strchr(url, '\\')) {
        *why = "bad_url";
        return FW_E_MALFORMED;
    }
    for(int i = 0; i < 16; i++) {
        int hi = hexval(m->str[2 * i]), lo = hexval(m->str[2 * i + 1]);
        if(hi < 0 || lo < 0) {
            *why = "bad_md5";
            return FW_E_MALFORMED;
        }
        d->ota.want[i] = (uint8_t)(hi << 4 | lo);
    }
    if(d->ota.active) {
        *why = "busy";
        return FW_E_STATE;
    }
    if(d->hal->ota_open(d->hal->ctx, url) != FW_OK) {
        *why = "download";
        return FW_E_IO;
    }
    d->ota.active = 1;
    d->ota.off = 0;
    d->ota.last_ms = now_ms(d);
    d->hal->md5_begin(d->hal->ctx);
    return FW_OK;
}

/* The command's "id" into id (FW_CMD_ID_MAX + 1 bytes): a short string of
 * letters, digits, '_' and '-', or a whole number; anything else is left
 * empty (the result then goes out without one, as from older servers). */
static void cmd_id(const struct fw_jobj *o, char *id)
{
    const struct fw_jmember *m = fw_json_get(o, "id");

    id[0] = '\0';
    if(m && m->type == FW_JT_STR && m->str_len > 0 && m->str_len <= FW_CMD_ID_MAX) {
        memcpy(id, m->str, m->str_len);
        id[m->str_len] = '\0';
        if(!ident_ok(id, FW_CMD_ID_MAX))
            id[0] = '\0';
    }
}

static void handle_cmd(struct fw_dev *d, const char *buf, size_t len, int too_large)
{
    struct fw_jobj o;
    const struct fw_jmember *c;
    char id[FW_CMD_ID_MAX + 1] = "";
    const char *name = "?", *why = NULL;
    float a, b, t;
    int rc;

    if(too_large) {
        why = "too_large";
        rc = FW_E_MALFORMED;
        goto out;
    }
    if(fw_json_parse(buf, len, &o) != FW_OK) {
        why = "malformed";
        rc = FW_E_MALFORMED;
        goto out;
    }
    cmd_id(&o, id);
    c = fw_json_get(&o, "cmd");
    if(!c || c->type != FW_JT_STR) {
        why = "no_cmd";
        rc = FW_E_MALFORMED;
        goto out;
    }
    why = "bad_args";
    if(str_is(c, "debug")) {
        name = "debug";
        rc = num_arg(&o, "duration", 0.0f, 1e9f, 600.0f, 0, &a);
        if(rc == FW_OK)
            rc = set_rate(d, FW_DEBUG_MS, a);
    }
    else if(str_is(c, "set_rate")) {
        /* The whitepaper's form: an alias of debug with its own interval. */
        name = "set_rate";
        rc = num_arg(&o, "interval", 1.0f, 3600.0f, 0.0f, 1, &b);
        if(rc == FW_OK)
            rc = num_arg(&o, "duration", 0.0f, 1e9f, 600.0f, 0, &a);
        if(rc == FW_OK)
            rc = set_rate(d, (uint32_t)b * 1000u, a);
    }
    else if(str_is(c, "calib")) {
        name = "calib";
        rc = num_arg(&o, "k", -1e4f, 1e4f, 0.0f, 1, &a);
        if(rc == FW_OK)
            rc = num_arg(&o, "b", -1e6f, 1e6f, 0.0f, 1, &b);
        if(rc == FW_OK)
            rc = num_arg(&o, "t_comp", -1e3f, 1e3f, d->cfg.t_comp, 0, &t);
        if(rc == FW_OK && a == 0.0f)
            rc = FW_E_RANGE;
        if(rc == FW_OK) {
            d->cfg.k = a;
            d->cfg.b = b;
            d->cfg.t_comp = t;
            rc = fw_cfg_save(d->hal, &d->cfg);
            if(rc == FW_OK)
                d->calib_lost = 0;
            else
                why = "storage";
        }
    }
    else if(str_is(c, "reboot")) {
        name = "reboot";
        rc = num_arg(&o, "delay", 0.0f, 86400.0f, 5.0f, 0, &a);
        if(rc == FW_OK) {
            d->reboot_pending = 1;
            d->reboot_at_ms = now_ms(d) + (uint32_t)a * 1000u;
        }
    }
    else if(str_is(c, "ota")) {
        name = "ota";
        rc = cmd_ota(d, &o, &why);
        if(rc == FW_OK)
            memcpy(d->ota.id, id, sizeof(d->ota.id));
    }
    else {
        why = "unknown_cmd";
        rc = FW_E_UNKNOWN;
    }
out:
    if(rc == FW_OK) {
        d->st.cmds_ok++;
        report(d, id, name, "ok", NULL);
    }
    else {
        /* Ignored (nothing changed) and reported. */
        d->st.cmds_rejected++;
        report(d, id, name, "rejected", why);
    }
}

/* ---- OTA -------------------------------------------------------------- */

static void ota_end(struct fw_dev *d, int ok, const char *why)
{
    d->ota.active = 0;
    d->hal->ota_finish(d->hal->ctx, ok);
    if(ok) {
        d->st.ota_ok++;
        report(d, d->ota.id, "ota", "done", NULL);
        /* Boot the new image soon; the report gets out first. */
        d->reboot_pending = 1;
        d->reboot_at_ms = now_ms(d) + 1000u;
    }
    else {
        d->st.ota_failed++;
        report(d, d->ota.id, "ota", "failed", why);
    }
}

/* One chunk of the download per turn. Returns 1 when more is to come at
 * once. */
static int ota_step(struct fw_dev *d, uint32_t now)
{
    uint8_t md5[16];
    int n = d->hal->ota_read(d->hal->ctx, d->ota.chunk, sizeof(d->ota.chunk));

    if(n == FW_E_AGAIN) {
        if(due(now, d->ota.last_ms + FW_OTA_STALL_MS))
            ota_end(d, 0, "timeout");
        return 0;
    }
    if(n < 0) {
        ota_end(d, 0, "download");
        return 0;
    }
    d->ota.last_ms = now;
    if(n == 0) {
        d->hal->md5_end(d->hal->ctx, md5);
        if(memcmp(md5, d->ota.want, 16) != 0)
            ota_end(d, 0, "md5"); /* the bad image is discarded, the old one stays */
        else
            ota_end(d, 1, NULL);
        return 0;
    }
    if(d->ota.off + (uint32_t)n > FW_OTA_MAX) {
        ota_end(d, 0, "too_large");
        return 0;
    }
    d->hal->md5_update(d->hal->ctx, d->ota.chunk, (size_t)n);
    if(d->hal->ota_write(d->hal->ctx, d->ota.off, d->ota.chunk, (size_t)n) != FW_OK) {
        ota_end(d, 0, "flash");
        return 0;
    }
    d->ota.off += (uint32_t)n;
    return 1;
}

/* ---- readings --------------------------------------------------------- */

static void cache(struct fw_dev *d, const struct fw_rec *r)
{
    int dropped = 0;

    if(fw_ring_push(&d->ring, r, &dropped) != FW_OK) {
        d->st.lost++;
        return;
    }
    d->st.cached++;
    if(dropped) {
        d->st.dropped_full++;
        d->pend_full = 1;
    }
}

static void take_reading(struct fw_dev *d)
{
    struct fw_rec r;
    int n;

    sample(d, &r);
    /* Live data goes straight out only when nothing older is waiting, so
     * that the server receives readings in the order they were taken. */
    if(d->state == FW_ST_RUNNING && fw_ring_count(&d->ring) == 0 && d->ninfl == 0) {
        n = fw_payload(d, &r, d->buf, sizeof(d->buf));
        if(publish(d, d->t_up, d->buf, n, 0, 0, NULL) == FW_OK) {
            d->st.sent_live++;
            return;
        }
    }
    cache(d, &r);
}

/* Sends ring records while the window has room. Returns 1 when there is
 * more to send at once. */
static int send_backlog(struct fw_dev *d)
{
    struct fw_rec r;
    uint32_t ctr;
    uint16_t mid;
    int n;

    while(d->state == FW_ST_RUNNING && d->ninfl < FW_WINDOW) {
        if(fw_ring_peek(&d->ring, &r, &ctr) != FW_OK)
            return 0;
        n = fw_payload(d, &r, d->buf, sizeof(d->buf));
        if(n < 0) {
            fw_ring_sent(&d->ring, ctr);
            fw_ring_ack(&d->ring, ctr); /* cannot be sent: do not retry forever */
            continue;
        }
        mid = 0;
        if(publish(d, d->t_up, d->buf, n, 1, 0, &mid) != FW_OK)
            return 0;
        fw_ring_sent(&d->ring, ctr);
        d->infl[d->ninfl].ctr = ctr;
        d->infl[d->ninfl].mid = mid;
        d->infl[d->ninfl].acked = 0;
        d->ninfl++;
        d->st.sent_backlog++;
        if(d->ev_lost)
            return 0;
    }
    return 0;
}

/* ---- init and loop ---------------------------------------------------- */

int fw_init(struct fw_dev *d, const struct fw_hal *hal, const struct fw_ident *id)
{
    uint32_t now, h = 2166136261u;
    int rc;

    memset(d, 0, sizeof(*d));
    d->hal = hal;
    d->id = *id;
    d->id.sn[FW_SN_MAX] = '\0';
    d->id.pass[sizeof(d->id.pass) - 1] = '\0';
    d->id.prefix[sizeof(d->id.prefix) - 1] = '\0';
    d->id.net[sizeof(d->id.net) - 1] = '\0';
    d->id.ver[sizeof(d->id.ver) - 1] = '\0';
    if(!ident_ok(d->id.sn, FW_SN_MAX) || !ident_ok(d->id.prefix, 16) ||
       !topic(d->t_up, d->id.prefix, d->id.sn, "up") ||
       !topic(d->t_status, d->id.prefix, d->id.sn, "status") ||
       !topic(d->t_cmd, d->id.prefix, d->id.sn, "cmd") ||
       !topic(d->t_bcast, d->id.prefix, "broadcast", "cmd") ||
       !scopy(d->client_id, sizeof(d->client_id), "device_"))
        return FW_E_RANGE;
    memcpy(d->client_id + 7, d->id.sn, strlen(d->id.sn) + 1);
    for(const char *p = d->id.sn; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    d->state = FW_ST_INIT;
    now = now_ms(d);
    d->rng = h ^ now;

    /* 1. Configuration: calibration lost is reported (err 50), not fatal. */
    rc = fw_cfg_load(hal, &d->cfg);
    d->calib_lost = rc != FW_OK;
    if(d->cfg.rate_until && rtc(d) >= d->cfg.rate_until) {
        d->cfg.rate_until = 0;
        d->cfg.rate_ms = 0;
        fw_cfg_save(hal, &d->cfg);
    }
    d->pend_watchdog = hal->reset_cause(hal->ctx) == FW_RESET_WATCHDOG;

    /* 2. The ring as the last boot left it; seq goes on after its newest. */
    fw_ring_open(&d->ring, hal);
    d->st.torn = d->ring.torn;
    d->seq = (uint16_t)d->cfg.seq_next;
    if(d->ring.npending) {
        uint8_t b[FW_REC_SIZE];
        struct fw_rec r;
        uint32_t c;
        if(hal->rec_read(hal->ctx, (uint16_t)((d->ring.head - 1) % FW_RING_SLOTS), b) == FW_OK &&
           fw_rec_decode(b, &r, &c) == FW_OK)
            d->seq = (uint16_t)(r.seq + 1u);
    }

    /* 3. Modem (a SIM fault is reported, err 21; connecting still tried). */
    d->sim_fault = hal->modem_init(hal->ctx) == FW_E_SIM;

    /* 4. Sensor self-test. */
    d->next_sample_ms = now;
    d->reconnect_at_ms = now;
    if(selftest(d) != FW_OK) {
        d->state = FW_ST_SELFTEST_FAILED;
        d->selftest_fails = 1;
        d->selftest_at_ms = now + FW_SELFTEST_RETRY_MS;
    }
    else {
        d->state = FW_ST_CONNECTING;
    }
    show_state(d);
    return FW_OK;
}

uint32_t fw_loop(struct fw_dev *d)
{
    const struct fw_hal *h = d->hal;
    uint32_t now, wait = FW_LOOP_MAX_MS, iv;
    int more = 0;

    /* The only place the watchdog is fed: a hung loop resets the MCU. */
    h->wdt_feed(h->ctx);
    now = now_ms(d);
    if(d->state == FW_ST_INIT)
        return FW_LOOP_MAX_MS; /* rebooting: nothing runs until fw_init */

    if(d->state == FW_ST_SELFTEST_FAILED) {
        if(due(now, d->selftest_at_ms)) {
            if(selftest(d) == FW_OK) {
                d->state = FW_ST_CONNECTING;
                d->next_sample_ms = now;
            }
            else if(++d->selftest_fails >= FW_SELFTEST_TRIES) {
                /* Give up waiting: go online and say so (err 1, a device
                 * alarm on the server) instead of staying silent. */
                d->sensor_fault = 1;
                d->state = FW_ST_CONNECTING;
                d->next_sample_ms = now;
            }
            else {
                d->selftest_at_ms = now + FW_SELFTEST_RETRY_MS;
            }
            d->reconnect_at_ms = now;
        }
        show_state(d);
        if(d->state == FW_ST_SELFTEST_FAILED)
            return left(now, d->selftest_at_ms) < wait ? left(now, d->selftest_at_ms) : wait;
    }

    handle_events(d, now);

    for(int i = 0; i < d->cmdq_n; i++)
        handle_cmd(d, d->cmdq[i].buf, d->cmdq[i].len, d->cmdq[i].too_large);
    d->cmdq_n = 0;

    /* Temporary rate over (debug auto-revert, R-MQ-4). */
    if(d->cfg.rate_until && rtc(d) >= d->cfg.rate_until) {
        d->cfg.rate_until = 0;
        d->cfg.rate_ms = 0;
        fw_cfg_save(h, &d->cfg);
        d->next_sample_ms = now + d->cfg.interval_ms;
    }

    /* Link. */
    if(d->state == FW_ST_CONNECTING || d->state == FW_ST_OFFLINE) {
        if(d->connecting && due(now, d->connect_started_ms + FW_CONNECT_TIMEOUT_MS)) {
            h->mqtt_disconnect(h->ctx);
            d->connecting = 0;
            schedule_reconnect(d, now);
        }
        if(!d->connecting && due(now, d->reconnect_at_ms))
            start_connect(d, now);
        if(!d->connecting && left(now, d->reconnect_at_ms) < wait)
            wait = left(now, d->reconnect_at_ms);
    }

    /* Readings. */
    iv = fw_interval_ms(d);
    if(due(now, d->next_sample_ms)) {
        take_reading(d);
        d->next_sample_ms += iv;
        if(due(now, d->next_sample_ms)) /* fell behind (a long stall): skip */
            d->next_sample_ms = now + iv;
    }
    if(left(now, d->next_sample_ms) < wait)
        wait = left(now, d->next_sample_ms);

    more |= send_backlog(d);
    if(d->ota.active)
        more |= ota_step(d, now);
    if(d->ota.active && wait > 20u)
        wait = 20u;

    if(d->reboot_pending) {
        if(due(now, d->reboot_at_ms)) {
            d->cfg.seq_next = d->seq;
            fw_cfg_save(h, &d->cfg);
            h->mqtt_disconnect(h->ctx);
            d->reboot_pending = 0;
            d->state = FW_ST_INIT;
            h->reboot(h->ctx);
            return FW_LOOP_MAX_MS; /* on the host the port re-runs fw_init */
        }
        if(left(now, d->reboot_at_ms) < wait)
            wait = left(now, d->reboot_at_ms);
    }
    show_state(d);
    if(more || d->ev_connack || d->ev_lost || d->cmdq_n)
        return 0;
    return wait;
}

void fw_on_connack(struct fw_dev *d, int rc)
{
    d->ev_connack = (uint8_t)((rc < 0 || rc > 254 ? 254 : rc) + 1);
}

void fw_on_disconnect(struct fw_dev *d)
{
    d->ev_lost = 1;
}

void fw_on_puback(struct fw_dev *d, uint16_t mid)
{
    for(int i = 0; i < d->ninfl; i++)
        if(d->infl[i].mid == mid)
            d->infl[i].acked = 1;
}

void fw_on_message(struct fw_dev *d, const char *t, const void *payload, size_t len)
{
    if(strcmp(t, d->t_cmd) != 0 && strcmp(t, d->t_bcast) != 0)
        return;
    if(d->cmdq_n >= FW_CMDQ) {
        d->cmdq_overflow++;
        d->st.cmds_rejected++;
        return;
    }
    d->cmdq[d->cmdq_n].too_large = len >= FW_CMD_MAX;
    d->cmdq[d->cmdq_n].len = (uint16_t)(len >= FW_CMD_MAX ? 0 : len);
    if(len < FW_CMD_MAX)
        memcpy(d->cmdq[d->cmdq_n].buf, payload, len);
    d->cmdq_n++;
}
