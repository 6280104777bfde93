/* test_fw_core.c - the firmware core's state machine, publishing, offline
 * ring use and commands (R-FW-1, R-MQ-1/2/4/5) against the fake HAL with a
 * fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_hal.h"
#include "fw_core.h"

#define SN "A001"

struct t {
    struct fake f;
    struct fw_dev d;
    struct fw_ident id;
};

static void ident(struct fw_ident *id)
{
    memset(id, 0, sizeof(*id));
    snprintf(id->sn, sizeof(id->sn), "%s", SN);
    snprintf(id->pass, sizeof(id->pass), "0123456789abcdef");
    snprintf(id->prefix, sizeof(id->prefix), "mcs");
    snprintf(id->net, sizeof(id->net), "4G");
    snprintf(id->ver, sizeof(id->ver), "1.0.2");
    id->reconnect_min_ms = 1000;
    id->reconnect_max_ms = 8000;
}

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    fake_init(&t->f);
    ident(&t->id);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;
    fake_cleanup(&t->f);
    free(t);
    return 0;
}

/* Boots the device and runs it until RUNNING. */
static void boot_running(struct t *t)
{
    assert_int_equal(fw_init(&t->d, &t->f.hal, &t->id), FW_OK);
    fake_run(&t->f, &t->d, 100);
    assert_int_equal(t->d.state, FW_ST_RUNNING);
}

/* Re-initialises the device as after a reset (flash and config kept). */
static void reboot_dev(struct t *t, enum fw_reset_cause cause)
{
    t->f.cause = cause;
    t->f.connected = 0;
    t->f.connect_pending = 0;
    assert_int_equal(fw_init(&t->d, &t->f.hal, &t->id), FW_OK);
}

static void send_cmd(struct t *t, const char *json)
{
    fw_on_message(&t->d, "mcs/" SN "/cmd", json, strlen(json));
    fake_step(&t->f, &t->d);
}

static const struct fake_pub *last_status(const struct t *t)
{
    for(int i = t->f.npubs - 1; i >= 0; i--)
        if(strstr(t->f.pubs[i].topic, "/status"))
            return &t->f.pubs[i];
    return NULL;
}

/* ---- state machine ---------------------------------------------------- */

static void test_init_connecting_running(void **state)
{
    struct t *t = *state;

    t->f.auto_connack = 0;
    assert_int_equal(fw_init(&t->d, &t->f.hal, &t->id), FW_OK);
    assert_int_equal(t->d.state, FW_ST_CONNECTING);
    assert_int_equal(t->f.led_c, FW_LED_YELLOW);
    assert_int_equal(t->f.led_m, FW_LED_STEADY);
    fake_step(&t->f, &t->d);
    /* R-MQ-6 identity, R-MQ-8 keep-alive, R-MQ-1 Last Will. */
    assert_int_equal(t->f.connect_calls, 1);
    assert_string_equal(t->f.conn_client, "device_" SN);
    assert_string_equal(t->f.conn_user, "device_" SN);
    assert_string_equal(t->f.conn_pass, "0123456789abcdef");
    assert_int_equal(t->f.keepalive, 60);
    assert_int_equal(t->f.keep_session, 1); /* commands sent while offline arrive */
    assert_string_equal(t->f.will_topic, "mcs/" SN "/status");
    assert_string_equal(t->f.will_payload, "{\"status\":\"offline\",\"ts\":1734320000}");
    assert_int_equal(t->d.state, FW_ST_CONNECTING);
    t->f.auto_connack = 1;
    fake_step(&t->f, &t->d);
    assert_int_equal(t->d.state, FW_ST_RUNNING);
    assert_int_equal(t->f.led_c, FW_LED_GREEN);
    assert_int_equal(t->f.nsubs, 2);
    assert_string_equal(t->f.subs[0], "mcs/" SN "/cmd");
    assert_string_equal(t->f.subs[1], "mcs/broadcast/cmd");
    assert_int_equal(t->f.sub_qos[0], 1);
    assert_int_equal(t->f.sub_qos[1], 1);
    /* Online status, retained, QoS 1. */
    assert_string_equal(t->f.pubs[0].topic, "mcs/" SN "/status");
    /* It carries ver and net, once per connection (not in every reading). */
    assert_string_equal(t->f.pubs[0].payload,
                        "{\"status\":\"online\",\"ts\":1734320000,\"ver\":\"1.0.2\",\"net\":\"4G\"}");
    assert_int_equal(t->f.pubs[0].qos, 1);
    assert_int_equal(t->f.pubs[0].retain, 1);
}

static void test_payload_exact(void **state)
{
    struct t *t = *state;

    boot_running(t);
    /* The reading taken while connecting went through the ring (QoS 1);
     * the next one is live, QoS 0, R-MQ-2 less net and ver (R-MQ-8). */
    fake_run(&t->f, &t->d, 10000);
    const struct fake_pub *p = &t->f.pubs[t->f.npubs - 1];
    assert_string_equal(p->topic, "mcs/" SN "/up");
    assert_int_equal(p->qos, 0);
    assert_int_equal(p->retain, 0);
    assert_string_equal(p->payload, "{\"ts\":1734320010,\"seq\":1,\"v_raw\":2350.5,\"temp\":25.4,"
                                    "\"humi\":65.2,\"bat\":85,\"rssi\":-75}");
}

static void test_payload_negative_and_no_humi(void **state)
{
    struct t *t = *state;

    t->f.temp = -5.25f;
    t->f.has_humi = 0;
    boot_running(t);
    fake_run(&t->f, &t->d, 10000);
    assert_string_equal(t->f.pubs[t->f.npubs - 1].payload,
                        "{\"ts\":1734320010,\"seq\":1,\"v_raw\":2350.5,\"temp\":-5.3,\"bat\":85,"
                        "\"rssi\":-75}");
}

static void test_interval_10s_and_seq_wrap(void **state)
{
    struct t *t = *state;
    int from;

    boot_running(t);
    from = t->f.npubs;
    fake_run(&t->f, &t->d, 60000);
    assert_int_equal(fake_count(&t->f, "/up", from), 6);
    assert_int_equal(fw_interval_ms(&t->d), 10000);
    t->d.seq = 65535;
    from = t->f.npubs;
    fake_run(&t->f, &t->d, 20000);
    assert_int_equal(fake_seq(&t->f, from), 65535);
    assert_int_equal(fake_seq(&t->f, from + 1), 0);
}

static void test_selftest_failed_then_passes(void **state)
{
    struct t *t = *state;

    t->f.gas_fail = 1;
    assert_int_equal(fw_init(&t->d, &t->f.hal, &t->id), FW_OK);
    assert_int_equal(t->d.state, FW_ST_SELFTEST_FAILED);
    assert_int_equal(t->f.led_c, FW_LED_RED);
    assert_int_equal(t->f.led_m, FW_LED_BLINK);
    fake_run(&t->f, &t->d, 5000);
    assert_int_equal(t->f.connect_calls, 0);
    t->f.gas_fail = 0;
    fake_run(&t->f, &t->d, 6000);
    assert_int_equal(t->d.state, FW_ST_RUNNING);
    fake_run(&t->f, &t->d, 10000);
    /* err 0 (all well again) is the server's default: not sent. */
    assert_null(strstr(t->f.pubs[t->f.npubs - 1].payload, "\"err\""));
    assert_non_null(strstr(t->f.pubs[t->f.npubs - 1].payload, "\"rssi\":-75}"));
}

static void test_selftest_gives_up_and_reports_err1(void **state)
{
    struct t *t = *state;

    t->f.gas_mv = 9000.0f; /* implausible: fails the self-test */
    assert_int_equal(fw_init(&t->d, &t->f.hal, &t->id), FW_OK);
    assert_int_equal(t->d.state, FW_ST_SELFTEST_FAILED);
    fake_run(&t->f, &t->d, 15000);
    assert_int_equal(t->d.state, FW_ST_SELFTEST_FAILED);
    fake_run(&t->f, &t->d, 6000);
    assert_int_equal(t->d.state, FW_ST_RUNNING);
    fake_run(&t->f, &t->d, 10000);
    assert_non_null(strstr(t->f.pubs[t->f.npubs - 1].payload, "\"err\":1}"));
}

static void test_offline_ring_resend_in_order(void **state)
{
    struct t *t = *state;
    int from, i, expect;

    boot_running(t);
    fake_run(&t->f, &t->d, 20000);
    fake_link_down(&t->f, &t->d);
    fake_step(&t->f, &t->d);
    assert_int_equal(t->d.state, FW_ST_OFFLINE);
    assert_int_equal(t->f.led_c, FW_LED_YELLOW);
    assert_int_equal(t->f.led_m, FW_LED_BLINK);
    assert_int_equal(t->d.st.link_losses, 1);
    expect = t->d.seq;
    fake_run(&t->f, &t->d, 300000); /* 5 minutes offline: 30 readings */
    int first_live = t->d.seq;
    assert_int_equal(fw_ring_count(&t->d.ring), 30);
    assert_true(t->f.connect_calls > 2); /* it kept trying, with backoff */
    from = t->f.npubs;
    fake_link_up(&t->f);
    fake_run(&t->f, &t->d, 30000);
    assert_int_equal(t->d.state, FW_ST_RUNNING);
    assert_int_equal(fw_ring_count(&t->d.ring), 0);
    /* Every cached reading once, in order, QoS 1, then live ones QoS 0. */
    for(i = from; i < t->f.npubs; i++) {
        if(fake_seq(&t->f, i) < 0)
            continue;
        assert_int_equal(fake_seq(&t->f, i), expect);
        /* the 30 cached ones first, QoS 1; after them live data, QoS 0 */
        assert_int_equal(t->f.pubs[i].qos, expect < first_live ? 1 : 0);
        expect++;
    }
    assert_int_equal(expect, t->d.seq);
    assert_int_equal(t->d.st.acked_backlog, 30 + 1); /* + the one taken while connecting */
}

static void test_resend_after_loss_mid_backlog(void **state)
{
    struct t *t = *state;
    int i, seen[200] = {0};

    boot_running(t);
    fake_link_down(&t->f, &t->d);
    fake_run(&t->f, &t->d, 100000); /* 10 cached */
    t->f.auto_puback = 0;
    fake_link_up(&t->f);
    fake_run(&t->f, &t->d, 9000);
    assert_int_equal(t->d.state, FW_ST_RUNNING);
    assert_int_equal(t->d.ninfl, FW_WINDOW);
    /* Link lost before any PUBACK: all of it is sent again. */
    fake_link_down(&t->f, &t->d);
    t->f.auto_puback = 1;
    fake_run(&t->f, &t->d, 1000);
    fake_link_up(&t->f);
    fake_run(&t->f, &t->d, 9000);
    assert_int_equal(fw_ring_count(&t->d.ring), 0);
    for(i = 0; i < t->f.npubs; i++)
        if(fake_seq(&t->f, i) >= 0)
            seen[fake_seq(&t->f, i)]++;
    for(i = 0; i < (int)t->d.seq; i++)
        assert_true(seen[i] >= 1);
}

static void test_ring_overflow_drops_oldest_err30(void **state)
{
    struct t *t = *state;
    int i, first = -1, got30 = 0;

    t->id.reconnect_min_ms = 3600000; /* do not reconnect by itself */
    t->id.reconnect_max_ms = 3600000;
    boot_running(t);
    fake_link_down(&t->f, &t->d);
    fake_run(&t->f, &t->d, 1010u * 10000u);
    assert_int_equal(fw_ring_count(&t->d.ring), FW_RING_SLOTS);
    assert_true(t->d.st.dropped_full >= 10);
    t->id.reconnect_min_ms = 1000;
    t->d.id.reconnect_min_ms = 1000;
    t->d.id.reconnect_max_ms = 1000;
    t->d.reconnect_at_ms = t->f.ms;
    fake_link_up(&t->f);
    int from = t->f.npubs;
    fake_run(&t->f, &t->d, 10000);
    for(i = from; i < t->f.npubs; i++) {
        if(fake_seq(&t->f, i) < 0)
            continue;
        if(first < 0)
            first = fake_seq(&t->f, i);
        if(strstr(t->f.pubs[i].payload, "\"err\":30}"))
            got30 = 1;
    }
    /* The oldest were dropped: the first one resent is not seq 0/1. */
    assert_true(first >= 10);
    assert_true(got30);
    assert_int_equal(fw_ring_count(&t->d.ring), 0);
}

static void test_ring_survives_reboot_torn_skipped(void **state)
{
    struct t *t = *state;
    int i, n = 0, prev = -1;

    boot_running(t);
    fake_link_down(&t->f, &t->d);
    fake_run(&t->f, &t->d, 50000); /* 5 cached */
    assert_int_equal(fw_ring_count(&t->d.ring), 5);
    /* Power cut in the middle of writing a sixth: half old, half new. */
    uint16_t s = (uint16_t)(t->d.ring.head % FW_RING_SLOTS);
    memset(t->f.slots[s], 0x00, FW_REC_SIZE);
    memcpy(t->f.slots[s], "MCSR", 4);
    t->f.slots[s][8] = 0x42;
    /* And one older record corrupted in flash. */
    uint16_t s2 = (uint16_t)((t->d.ring.tail + 2) % FW_RING_SLOTS);
    t->f.slots[s2][10] ^= 0x55;
    fake_link_up(&t->f);
    reboot_dev(t, FW_RESET_POWER);
    assert_int_equal(t->d.st.torn, 2);
    assert_int_equal(fw_ring_count(&t->d.ring), 4);
    int from = t->f.npubs;
    fake_run(&t->f, &t->d, 100);
    assert_int_equal(t->d.state, FW_ST_RUNNING);
    for(i = from; i < t->f.npubs; i++) {
        int q = fake_seq(&t->f, i);
        if(q < 0)
            continue;
        assert_true(q > prev);
        prev = q;
        n++;
    }
    assert_int_equal(n, 4 + 1); /* 4 good cached + the one taken at boot */
}

static void test_connack_refused_backs_off(void **state)
{
    struct t *t = *state;

    t->f.connack_rc = 5;
    assert_int_equal(fw_init(&t->d, &t->f.hal, &t->id), FW_OK);
    fake_run(&t->f, &t->d, 3000);
    assert_int_equal(t->d.state, FW_ST_CONNECTING);
    int calls = t->f.connect_calls;
    fake_run(&t->f, &t->d, 3000);
    assert_int_equal(t->f.connect_calls, calls); /* waits >= max/2 = 4 s */
    t->f.connack_rc = 0;
    fake_run(&t->f, &t->d, 10000);
    assert_int_equal(t->d.state, FW_ST_RUNNING);
}

static void test_connect_timeout(void **state)
{
    struct t *t = *state;

    t->f.auto_connack = 0;
    assert_int_equal(fw_init(&t->d, &t->f.hal, &t->id), FW_OK);
    fake_run(&t->f, &t->d, 29000);
    assert_int_equal(t->f.connect_calls, 1);
    fake_run(&t->f, &t->d, 2000);
    assert_int_equal(t->f.disconnect_calls, 1);
    t->f.auto_connack = 1;
    fake_run(&t->f, &t->d, 10000);
    assert_int_equal(t->f.connect_calls, 2);
    assert_int_equal(t->d.state, FW_ST_RUNNING);
}

/* ---- error codes (R-MQ-5) --------------------------------------------- */

static const char *last_up(const struct t *t)
{
    for(int i = t->f.npubs - 1; i >= 0; i--)
        if(strstr(t->f.pubs[i].topic, "/up"))
            return t->f.pubs[i].payload;
    return "";
}

static void test_error_codes(void **state)
{
    struct t *t = *state;

    boot_running(t);
    t->f.bat = 15;
    fake_run(&t->f, &t->d, 10000);
    assert_non_null(strstr(last_up(t), "\"err\":10}"));
    t->f.bat = 5;
    fake_run(&t->f, &t->d, 10000);
    assert_non_null(strstr(last_up(t), "\"bat\":5,"));
    assert_non_null(strstr(last_up(t), "\"err\":11}"));
    t->f.bat = 80;
    t->f.rssi = -105;
    fake_run(&t->f, &t->d, 10000);
    assert_non_null(strstr(last_up(t), "\"err\":20}"));
    t->f.rssi = -70;
    t->f.th_fail = 1;
    fake_run(&t->f, &t->d, 10000);
    assert_non_null(strstr(last_up(t), "\"err\":3}"));
    assert_null(strstr(last_up(t), "temp"));
    t->f.th_fail = 0;
    t->f.gas_fail = 1;
    fake_run(&t->f, &t->d, 10000);
    assert_non_null(strstr(last_up(t), "\"v_raw\":0.0,"));
    assert_non_null(strstr(last_up(t), "\"err\":1}"));
    t->f.gas_fail = 0;
    t->f.gas_mv = -20.0f;
    fake_run(&t->f, &t->d, 10000);
    assert_non_null(strstr(last_up(t), "\"err\":2}"));
}

static void test_watchdog_sim_calib_codes(void **state)
{
    struct t *t = *state;

    /* Blank EEPROM = calibration lost (50) until a calib. */
    memset(t->f.cfg, 0xFF, sizeof(t->f.cfg));
    boot_running(t);
    fake_run(&t->f, &t->d, 10000);
    assert_non_null(strstr(last_up(t), "\"err\":50}"));
    send_cmd(t, "{\"cmd\":\"calib\",\"k\":1.5,\"b\":-10,\"t_comp\":0.1}");
    fake_run(&t->f, &t->d, 10000);
    assert_null(strstr(last_up(t), "\"err\"")); /* 0: the server's default, not sent */
    /* Watchdog reset: the first reading says 40, the next ones do not. */
    reboot_dev(t, FW_RESET_WATCHDOG);
    fake_run(&t->f, &t->d, 100);
    fake_run(&t->f, &t->d, 10000);
    int n40 = 0;
    for(int i = 0; i < t->f.npubs; i++)
        n40 += strstr(t->f.pubs[i].payload, "\"err\":40}") != NULL;
    assert_int_equal(n40, 1);
    assert_null(strstr(last_up(t), "\"err\""));
    /* SIM fault reported as 21. */
    t->f.modem_rc = FW_E_SIM;
    reboot_dev(t, FW_RESET_SOFT);
    fake_run(&t->f, &t->d, 10100);
    assert_non_null(strstr(last_up(t), "\"err\":21}"));
}

static void test_watchdog_fed_only_from_loop(void **state)
{
    struct t *t = *state;
    int loops = 0;

    assert_int_equal(fw_init(&t->d, &t->f.hal, &t->id), FW_OK);
    assert_int_equal(t->f.wdt_feeds, 0);
    for(int i = 0; i < 50; i++) {
        uint32_t w = fake_step(&t->f, &t->d);
        loops++;
        assert_true(w <= FW_LOOP_MAX_MS); /* never asks to sleep past the watchdog */
        t->f.ms += w ? w : 1;
    }
    assert_int_equal(t->f.wdt_feeds, loops);
}

/* ---- commands (R-MQ-4) ------------------------------------------------ */

static void test_debug_and_auto_revert(void **state)
{
    struct t *t = *state;
    int from;

    boot_running(t);
    send_cmd(t, "{\"cmd\":\"debug\",\"duration\":600}");
    assert_int_equal(fw_interval_ms(&t->d), 1000);
    assert_int_equal(t->f.led_m, FW_LED_BLINK);
    assert_non_null(strstr(last_status(t)->payload, "\"cmd\":\"debug\",\"result\":\"ok\""));
    assert_int_equal(last_status(t)->retain, 0);
    from = t->f.npubs;
    fake_run(&t->f, &t->d, 60000);
    int n = fake_count(&t->f, "/up", from);
    assert_true(n >= 60 && n <= 61);
    fake_run(&t->f, &t->d, 540000 + 1000);
    assert_int_equal(fw_interval_ms(&t->d), 10000);
    assert_int_equal(t->f.led_m, FW_LED_STEADY);
    from = t->f.npubs;
    fake_run(&t->f, &t->d, 60000);
    n = fake_count(&t->f, "/up", from);
    assert_true(n >= 6 && n <= 7);
}

/* The command's id comes back in its result; a bad id is left out rather
 * than echoed, and a command without one is answered as before. */
static void test_cmd_id_echoed(void **state)
{
    struct t *t = *state;

    boot_running(t);
    send_cmd(t, "{\"cmd\":\"reboot\",\"delay\":60,\"id\":\"1234\"}");
    assert_non_null(
        strstr(last_status(t)->payload, "\"id\":\"1234\",\"cmd\":\"reboot\",\"result\":\"ok\""));
    send_cmd(t, "{\"cmd\":\"nope\",\"id\":\"77\"}");
    assert_non_null(strstr(last_status(t)->payload, "\"id\":\"77\""));
    assert_non_null(strstr(last_status(t)->payload, "\"result\":\"rejected\""));
    send_cmd(t, "{\"cmd\":\"debug\",\"duration\":0,\"id\":\"a\\\"b\"}");
    assert_null(strstr(last_status(t)->payload, "\"id\""));
    send_cmd(t, "{\"cmd\":\"debug\",\"duration\":0}");
    assert_null(strstr(last_status(t)->payload, "\"id\""));
    assert_non_null(strstr(last_status(t)->payload, "\"cmd\":\"debug\",\"result\":\"ok\""));
}

static void test_debug_duration_capped(void **state)
{
    struct t *t = *state;

    boot_running(t);
    send_cmd(t, "{\"cmd\":\"debug\",\"duration\":86400}");
    assert_int_equal(fw_interval_ms(&t->d), 1000);
    fake_run(&t->f, &t->d, 601000);
    assert_int_equal(fw_interval_ms(&t->d), 10000);
}

static void test_debug_survives_reboot_then_reverts(void **state)
{
    struct t *t = *state;

    boot_running(t);
    send_cmd(t, "{\"cmd\":\"debug\",\"duration\":120}");
    fake_run(&t->f, &t->d, 60000);
    reboot_dev(t, FW_RESET_POWER);
    assert_int_equal(fw_interval_ms(&t->d), 1000);
    fake_run(&t->f, &t->d, 30000);
    assert_int_equal(fw_interval_ms(&t->d), 1000);
    fake_run(&t->f, &t->d, 31000);
    assert_int_equal(fw_interval_ms(&t->d), 10000);
    /* A reboot after the end time does not bring it back. */
    reboot_dev(t, FW_RESET_POWER);
    assert_int_equal(fw_interval_ms(&t->d), 10000);
}

static void test_debug_end_time_passed_while_off(void **state)
{
    struct t *t = *state;

    boot_running(t);
    send_cmd(t, "{\"cmd\":\"debug\",\"duration\":100}");
    t->f.rtc_base += 3600; /* powered off for an hour */
    reboot_dev(t, FW_RESET_POWER);
    assert_int_equal(fw_interval_ms(&t->d), 10000);
}

static void test_set_rate_alias(void **state)
{
    struct t *t = *state;

    boot_running(t);
    send_cmd(t, "{\"cmd\":\"set_rate\",\"interval\":1,\"duration\":30}");
    assert_int_equal(fw_interval_ms(&t->d), 1000);
    assert_non_null(strstr(last_status(t)->payload, "\"cmd\":\"set_rate\",\"result\":\"ok\""));
    fake_run(&t->f, &t->d, 31000);
    assert_int_equal(fw_interval_ms(&t->d), 10000);
    send_cmd(t, "{\"cmd\":\"set_rate\",\"interval\":5,\"duration\":60}");
    assert_int_equal(fw_interval_ms(&t->d), 5000);
    send_cmd(t, "{\"cmd\":\"set_rate\",\"interval\":10}");
    assert_int_equal(fw_interval_ms(&t->d), 10000);
    /* debug with duration 0 ends debug at once */
    send_cmd(t, "{\"cmd\":\"debug\"}");
    assert_int_equal(fw_interval_ms(&t->d), 1000);
    send_cmd(t, "{\"cmd\":\"debug\",\"duration\":0}");
    assert_int_equal(fw_interval_ms(&t->d), 10000);
}

static void test_calib_persisted(void **state)
{
    struct t *t = *state;

    memset(t->f.cfg, 0xFF, sizeof(t->f.cfg));
    boot_running(t);
    assert_true(t->d.calib_lost);
    send_cmd(t, "{\"cmd\":\"calib\",\"k\":1.5,\"b\":-10,\"t_comp\":0.1}");
    assert_int_equal(t->d.st.cmds_ok, 1);
    reboot_dev(t, FW_RESET_SOFT);
    assert_false(t->d.calib_lost);
    assert_true(t->d.cfg.k > 1.4999f && t->d.cfg.k < 1.5001f);
    assert_true(t->d.cfg.b > -10.0001f && t->d.cfg.b < -9.9999f);
    assert_true(t->d.cfg.t_comp > 0.0999f && t->d.cfg.t_comp < 0.1001f);
    /* Without t_comp: keeps the stored one. Out of range: refused, kept. */
    fake_run(&t->f, &t->d, 100);
    send_cmd(t, "{\"cmd\":\"calib\",\"k\":2,\"b\":0}");
    assert_true(t->d.cfg.t_comp > 0.0999f);
    send_cmd(t, "{\"cmd\":\"calib\",\"k\":0,\"b\":0}");
    send_cmd(t, "{\"cmd\":\"calib\",\"k\":\"2\",\"b\":0}");
    assert_true(t->d.cfg.k > 1.999f && t->d.cfg.k < 2.001f);
    assert_int_equal(t->d.st.cmds_rejected, 2);
    /* A corrupted EEPROM: defaults and err 50. */
    t->f.cfg[9] ^= 0xFF;
    reboot_dev(t, FW_RESET_SOFT);
    assert_true(t->d.calib_lost);
}

static void test_reboot_with_delay(void **state)
{
    struct t *t = *state;

    boot_running(t);
    send_cmd(t, "{\"cmd\":\"reboot\",\"delay\":5}");
    fake_run(&t->f, &t->d, 4900);
    assert_int_equal(t->f.reboots, 0);
    fake_run(&t->f, &t->d, 200);
    assert_int_equal(t->f.reboots, 1);
    assert_true(t->f.disconnect_calls >= 1);
    /* seq continues after the planned reboot */
    uint16_t seq = t->d.seq;
    reboot_dev(t, FW_RESET_SOFT);
    assert_int_equal(t->d.seq, seq);
}

static void md5hex(const uint8_t *p, size_t n, char out[33]);

static void test_ota_good_and_bad(void **state)
{
    struct t *t = *state;
    static uint8_t img[3000];
    char md5[33], cmd[256];

    for(size_t i = 0; i < sizeof(img); i++)
        img[i] = (uint8_t)(i * 7 + 3);
    t->f.img = img;
    t->f.img_len = sizeof(img);
    md5hex(img, sizeof(img), md5);
    boot_running(t);

    /* Wrong digest: the image is discarded, the device keeps running. */
    snprintf(cmd, sizeof(cmd),
             "{\"cmd\":\"ota\",\"url\":\"https://fw.example.com/v1.0.3.bin\",\"md5\":\"%s\"}",
             "00112233445566778899aabbccddeeff");
    send_cmd(t, cmd);
    assert_int_equal(t->f.led_c, FW_LED_BLUE);
    fake_run(&t->f, &t->d, 1000);
    assert_int_equal(t->f.ota_finished, 1);
    assert_int_equal(t->f.ota_commit, 0);
    assert_int_equal(t->d.st.ota_failed, 1);
    assert_non_null(strstr(last_status(t)->payload, "\"result\":\"failed\",\"reason\":\"md5\""));
    fake_run(&t->f, &t->d, 5000);
    assert_int_equal(t->f.reboots, 0);
    assert_int_equal(t->d.state, FW_ST_RUNNING);

    /* Right digest: written, committed, rebooted into it. */
    snprintf(cmd, sizeof(cmd),
             "{\"cmd\":\"ota\",\"url\":\"https://fw.example.com/v1.0.3.bin\",\"md5\":\"%s\"}", md5);
    send_cmd(t, cmd);
    fake_run(&t->f, &t->d, 500);
    assert_int_equal(t->f.ota_finished, 1); /* counted since ota_open */
    assert_int_equal(t->f.ota_commit, 1);
    assert_int_equal(t->f.written_len, sizeof(img));
    assert_memory_equal(t->f.written, img, sizeof(img));
    fake_run(&t->f, &t->d, 1500);
    assert_int_equal(t->f.reboots, 1);

    /* A download that breaks off is refused too. */
    reboot_dev(t, FW_RESET_SOFT);
    fake_run(&t->f, &t->d, 100);
    t->f.ota_read_err = 1;
    send_cmd(t, cmd);
    fake_run(&t->f, &t->d, 500);
    assert_int_equal(t->f.ota_commit, 0);
    assert_non_null(strstr(last_status(t)->payload, "\"reason\":\"download\""));
}

static void test_malformed_commands_ignored_and_reported(void **state)
{
    struct t *t = *state;
    static const char *bad[] = {
        "",
        "not json",
        "{",
        "{\"cmd\":\"debug\",\"duration\":600",
        "{\"cmd\":\"debug\",\"duration\":\"600\"}",
        "{\"cmd\":\"debug\",\"duration\":-5}",
        "{\"cmd\":\"debug\",\"duration\":{\"a\":1}}",
        "{\"cmd\":[1,2]}",
        "{\"cmd\":1}",
        "{\"duration\":600}",
        "{\"cmd\":\"selfdestruct\"}",
        "{\"cmd\":\"debug\",\"cmd\":\"reboot\"}",
        "{\"cmd\":\"reboot\",\"delay\":1e30}",
        "{\"cmd\":\"reboot\",\"delay\":-1}",
        "{\"cmd\":\"set_rate\",\"duration\":60}",
        "{\"cmd\":\"set_rate\",\"interval\":0}",
        "{\"cmd\":\"calib\",\"k\":1.5}",
        "{\"cmd\":\"ota\",\"url\":\"ftp://x/y.bin\",\"md5\":\"00112233445566778899aabbccddeeff\"}",
        "{\"cmd\":\"ota\",\"url\":\"https://x/y.bin\",\"md5\":\"short\"}",
        "{\"cmd\":\"ota\",\"url\":\"https://x/"
        "y.bin\",\"md5\":\"zz112233445566778899aabbccddeeff\"}",
        "{\"cmd\":\"debug\"} trailing",
        "[\"cmd\",\"debug\"]",
        "{\"cmd\":\"debug\",\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8}",
        "{\"cmd\":\"de\\u0062ug\"}",
        "{\"cmd\":\"debug\",\"duration\":0600}",
        "{\"cmd\":\"debug\",\"duration\":6.}",
        "{\"cmd\":\"debug\",\"duration\":tru}",
    };
    char big[FW_CMD_MAX + 10];
    size_t i;
    int reports = 0;

    boot_running(t);
    for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int before = t->f.npubs;
        send_cmd(t, bad[i]);
        assert_int_equal(t->d.state, FW_ST_RUNNING);
        assert_int_equal(fw_interval_ms(&t->d), 10000);
        if(t->f.npubs > before && strstr(last_status(t)->payload, "\"result\":\"rejected\""))
            reports++;
    }
    assert_int_equal(t->d.st.cmds_rejected, sizeof(bad) / sizeof(bad[0]));
    assert_int_equal(reports, (int)(sizeof(bad) / sizeof(bad[0])));
    assert_int_equal(t->d.st.cmds_ok, 0);
    assert_int_equal(t->f.reboots, 0);
    /* Too large: refused without being parsed. */
    memset(big, ' ', sizeof(big));
    memcpy(big, "{\"cmd\":\"debug\"", 14);
    big[sizeof(big) - 1] = '}';
    fw_on_message(&t->d, "mcs/" SN "/cmd", big, sizeof(big));
    fake_step(&t->f, &t->d);
    assert_non_null(strstr(last_status(t)->payload, "\"reason\":\"too_large\""));
    assert_int_equal(fw_interval_ms(&t->d), 10000);
    /* Another device's topic: ignored entirely. */
    int before = t->f.npubs;
    fw_on_message(&t->d, "mcs/B002/cmd", "{\"cmd\":\"debug\"}", 15);
    fake_step(&t->f, &t->d);
    assert_int_equal(fw_interval_ms(&t->d), 10000);
    assert_int_equal(t->f.npubs, before);
    /* The broadcast topic works. */
    fw_on_message(&t->d, "mcs/broadcast/cmd", "{\"cmd\":\"debug\",\"duration\":10}", 29);
    fake_step(&t->f, &t->d);
    assert_int_equal(fw_interval_ms(&t->d), 1000);
    /* More commands than the queue holds between two loops: counted. */
    for(i = 0; i < FW_CMDQ + 3; i++)
        fw_on_message(&t->d, "mcs/" SN "/cmd", "{\"cmd\":\"debug\",\"duration\":10}", 29);
    fake_step(&t->f, &t->d);
    assert_int_equal(t->d.cmdq_overflow, 3);
}

/* ---- helpers ---------------------------------------------------------- */

#include <openssl/evp.h>

static void md5hex(const uint8_t *p, size_t n, char out[33])
{
    unsigned char h[16];
    unsigned len = 16;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_md5(), NULL);
    EVP_DigestUpdate(c, p, n);
    EVP_DigestFinal_ex(c, h, &len);
    EVP_MD_CTX_free(c);
    for(int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_init_connecting_running),
        T(test_payload_exact),
        T(test_payload_negative_and_no_humi),
        T(test_interval_10s_and_seq_wrap),
        T(test_selftest_failed_then_passes),
        T(test_selftest_gives_up_and_reports_err1),
        T(test_offline_ring_resend_in_order),
        T(test_resend_after_loss_mid_backlog),
        T(test_ring_overflow_drops_oldest_err30),
        T(test_ring_survives_reboot_torn_skipped),
        T(test_connack_refused_backs_off),
        T(test_connect_timeout),
        T(test_error_codes),
        T(test_watchdog_sim_calib_codes),
        T(test_watchdog_fed_only_from_loop),
        T(test_debug_and_auto_revert),
        T(test_cmd_id_echoed),
        T(test_debug_duration_capped),
        T(test_debug_survives_reboot_then_reverts),
        T(test_debug_end_time_passed_while_off),
        T(test_set_rate_alias),
        T(test_calib_persisted),
        T(test_reboot_with_delay),
        T(test_ota_good_and_bad),
        T(test_malformed_commands_ignored_and_reported),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
