/* fuzz_alarm.c - libFuzzer target for the alarm settings and templates an
 * administrator writes (issue #7): alarm.general JSON (alarm_cfg_parse),
 * message templates (notify_render) and RFC 2047 subjects. The low two bits
 * of the first byte choose: 0 settings, 1 template (plain), 2 template (JSON
 * escaped), 3 subject. Touches nothing but those pure functions. */
#include "fuzz_util.h"

#include "alarm_db.h"
#include "notify_chan.h"

FUZZ_QUIET_INITIALIZE

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    int which = fuzz_byte(&in) & 3;
    char *s = fuzz_str(&in);

    if(which == 0) {
        struct alarm_cfg c;
        alarm_cfg_defaults(&c);
        alarm_cfg_parse(&c, s);
        FUZZ_CHECK(c.debounce_s >= 0 && c.debounce_s <= 1440 * 60);
        FUZZ_CHECK(c.sched.start_min >= 0 && c.sched.start_min <= 1440);
        FUZZ_CHECK(c.sched.end_min >= 0 && c.sched.end_min <= 1440);
        FUZZ_CHECK(c.sched.days <= 0x7f);
        FUZZ_CHECK(memchr(c.tz, 0, sizeof(c.tz)) != NULL);
        FUZZ_CHECK(c.max_attempts >= 1);
    }
    else if(which == 1 || which == 2) {
        struct notify_msg m;
        char out[300];
        memset(&m, 0, sizeof(m));
        snprintf(m.sn, sizeof(m.sn), "A001");
        snprintf(m.name, sizeof(m.name), "探头\"1\"\\");
        snprintf(m.type, sizeof(m.type), "HIGH");
        snprintf(m.category, sizeof(m.category), "gas");
        snprintf(m.event, sizeof(m.event), "raise");
        m.level = 2;
        notify_render(s, &m, which == 2, out, sizeof(out));
        FUZZ_CHECK(strlen(out) < sizeof(out));
    }
    else {
        char out[1400];
        if(notify_mime_subject(s, out, sizeof(out)) == 0) {
            FUZZ_CHECK(strlen(out) < sizeof(out));
            FUZZ_CHECK(*s == '\0' || strncmp(out, "=?UTF-8?B?", 10) == 0);
        }
    }
    free(s);
    return 0;
}
