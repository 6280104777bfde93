/* test_fw_parts.c - the firmware core's pieces alone: CRC-32, the JSON
 * writer and flat reader, the record codec and the offline ring over the
 * fake flash (overflow, torn records, order, rebuild at boot). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_hal.h"
#include "fw_crc.h"
#include "fw_json.h"
#include "fw_ring.h"

static void test_crc32(void **state)
{
    (void)state;
    assert_int_equal(fw_crc32("123456789", 9), 0xCBF43926u);
    assert_int_equal(fw_crc32("", 0), 0);
}

static void test_json_writer(void **state)
{
    char buf[64], small[10];
    struct fw_jw w;

    (void)state;
    fw_jw_begin(&w, buf, sizeof(buf));
    fw_jw_u32(&w, "a", 4294967295u);
    fw_jw_i32(&w, "b", -2147483647 - 1);
    fw_jw_fixed1(&w, "c", -5);
    fw_jw_fixed1(&w, "d", 0);
    fw_jw_str(&w, "e", "x\"y");
    int n = fw_jw_end(&w);
    assert_int_equal(n, (int)strlen(buf));
    assert_string_equal(
        buf, "{\"a\":4294967295,\"b\":-2147483648,\"c\":-0.5,\"d\":0.0,\"e\":\"x\\\"y\"}");
    fw_jw_begin(&w, small, sizeof(small));
    fw_jw_u32(&w, "abc", 12345);
    assert_int_equal(fw_jw_end(&w), FW_E_FULL);
}

static void test_json_reader(void **state)
{
    struct fw_jobj o;
    const struct fw_jmember *m;
    const char *s = " { \"cmd\" : \"ota\", \"url\":\"https:\\/\\/a\", \"n\":-1.25e1, \"i\":600,"
                    " \"t\":true, \"z\":null } ";

    (void)state;
    assert_int_equal(fw_json_parse(s, strlen(s), &o), FW_OK);
    assert_int_equal(o.n, 6);
    m = fw_json_get(&o, "cmd");
    assert_int_equal(m->type, FW_JT_STR);
    assert_int_equal(m->str_len, 3);
    assert_memory_equal(m->str, "ota", 3);
    m = fw_json_get(&o, "n");
    assert_true(m->num > -12.5001f && m->num < -12.4999f);
    assert_false(m->is_int);
    m = fw_json_get(&o, "i");
    assert_true(m->is_int);
    assert_true(m->num == 600.0f);
    assert_int_equal(fw_json_get(&o, "t")->type, FW_JT_BOOL);
    assert_int_equal(fw_json_get(&o, "z")->type, FW_JT_NULL);
    assert_null(fw_json_get(&o, "nope"));
    assert_int_equal(fw_json_parse("{}", 2, &o), FW_OK);
    assert_int_equal(o.n, 0);
    /* Length-bounded: bytes after len are never read. */
    assert_int_equal(fw_json_parse("{\"a\":1}XYZ", 7, &o), FW_OK);
    static const char *bad[] = {"",
                                "{",
                                "}",
                                "{\"a\"}",
                                "{\"a\":}",
                                "{\"a\":1,}",
                                "{a:1}",
                                "{\"a\":1 \"b\":2}",
                                "{\"a\":\"\\n\"}",
                                "{\"a\":01}",
                                "{\"a\":1e999}",
                                "{\"a\":99999999999}",
                                "{\"a\":[1]}",
                                "{\"a\":{}}",
                                "{\"\":1}",
                                "{\"aaaaaaaaaaaaaaaaaaaa\":1}",
                                "{\"a\":\"x\nb\"}",
                                "{\"a\":-}",
                                "{\"a\":1.}",
                                "{\"a\":nul}",
                                "{\"a\":1}}",
                                "{\"a\":\"unterminated}"};
    for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(fw_json_parse(bad[i], strlen(bad[i]), &o), FW_E_MALFORMED);
}

static struct fw_rec rec(uint16_t seq)
{
    struct fw_rec r;
    memset(&r, 0, sizeof(r));
    r.ts = 1734320000u + seq;
    r.seq = seq;
    r.flags = FW_REC_F_TEMP | FW_REC_F_HUMI;
    r.v_raw_d = -12345;
    r.temp_d = -55;
    r.humi_d = 652;
    r.bat = 85;
    r.rssi = -75;
    r.err = 30;
    return r;
}

static void test_record_codec(void **state)
{
    uint8_t b[FW_REC_SIZE];
    struct fw_rec r = rec(7), o;
    uint32_t ctr;

    (void)state;
    fw_rec_encode(&r, 42, b);
    assert_int_equal(fw_rec_decode(b, &o, &ctr), FW_OK);
    assert_int_equal(ctr, 42);
    assert_int_equal(o.seq, 7);
    assert_int_equal(o.v_raw_d, -12345);
    assert_int_equal(o.temp_d, -55);
    assert_int_equal(o.rssi, -75);
    for(int i = 0; i < FW_REC_SIZE; i++) {
        uint8_t c[FW_REC_SIZE];
        memcpy(c, b, sizeof(c));
        c[i] ^= 0x01;
        assert_int_equal(fw_rec_decode(c, &o, &ctr), FW_E_CRC);
    }
}

static void test_ring_order_overflow_rebuild(void **state)
{
    struct fake *f = calloc(1, sizeof(*f));
    struct fw_ring *g = calloc(1, sizeof(*g));
    struct fw_rec r;
    uint32_t ctr;
    int dropped, ndrop = 0;

    (void)state;
    fake_init(f);
    assert_int_equal(fw_ring_open(g, &f->hal), FW_OK);
    assert_int_equal(fw_ring_count(g), 0);
    assert_int_equal(fw_ring_peek(g, &r, &ctr), FW_E_AGAIN);
    for(uint16_t i = 0; i < FW_RING_SLOTS + 25; i++) {
        struct fw_rec x = rec(i);
        assert_int_equal(fw_ring_push(g, &x, &dropped), FW_OK);
        ndrop += dropped;
    }
    assert_int_equal(ndrop, 25);
    assert_int_equal(g->dropped, 25);
    assert_int_equal(fw_ring_count(g), FW_RING_SLOTS);
    /* Rebuilt from flash alone (a reboot): same content, same order. */
    memset(g, 0, sizeof(*g));
    assert_int_equal(fw_ring_open(g, &f->hal), FW_OK);
    assert_int_equal(fw_ring_count(g), FW_RING_SLOTS);
    for(uint16_t i = 25; i < FW_RING_SLOTS + 25; i++) {
        assert_int_equal(fw_ring_peek(g, &r, &ctr), FW_OK);
        assert_int_equal(r.seq, i);
        fw_ring_sent(g, ctr);
        if(i < 100)
            fw_ring_ack(g, ctr);
    }
    assert_int_equal(fw_ring_peek(g, &r, &ctr), FW_E_AGAIN);
    /* Unacknowledged ones come again after a rewind, from the oldest. */
    fw_ring_rewind(g);
    assert_int_equal(fw_ring_peek(g, &r, &ctr), FW_OK);
    assert_int_equal(r.seq, 100);
    assert_int_equal(fw_ring_count(g), FW_RING_SLOTS - 75);
    /* Acks out of order and twice: harmless. */
    fw_ring_ack(g, ctr + 5);
    fw_ring_ack(g, ctr + 5);
    fw_ring_ack(g, 1);
    assert_int_equal(fw_ring_count(g), FW_RING_SLOTS - 76);
    /* A torn record in the middle is skipped, after a rebuild too. */
    f->slots[(ctr + 1) % FW_RING_SLOTS][20] ^= 0xAA;
    fw_ring_sent(g, ctr);
    assert_int_equal(fw_ring_peek(g, &r, &ctr), FW_OK);
    assert_int_equal(r.seq, 102);
    assert_int_equal(g->torn, 1);
    fake_cleanup(f);
    free(g);
    free(f);
}

static void test_ring_write_failure(void **state)
{
    struct fake *f = calloc(1, sizeof(*f));
    struct fw_ring *g = calloc(1, sizeof(*g));
    struct fw_rec r = rec(1), o;
    uint32_t ctr;

    (void)state;
    fake_init(f);
    fw_ring_open(g, &f->hal);
    f->rec_fail = 1;
    assert_int_equal(fw_ring_push(g, &r, NULL), FW_E_IO);
    assert_int_equal(fw_ring_count(g), 0);
    f->rec_fail = 0;
    r.seq = 2;
    assert_int_equal(fw_ring_push(g, &r, NULL), FW_OK);
    assert_int_equal(fw_ring_peek(g, &o, &ctr), FW_OK);
    assert_int_equal(o.seq, 2);
    fake_cleanup(f);
    free(g);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32),
        cmocka_unit_test(test_json_writer),
        cmocka_unit_test(test_json_reader),
        cmocka_unit_test(test_record_codec),
        cmocka_unit_test(test_ring_order_overflow_rebuild),
        cmocka_unit_test(test_ring_write_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
