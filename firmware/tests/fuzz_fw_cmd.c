/* fuzz_fw_cmd.c - libFuzzer target for what the broker sends a device
 * (R-MQ-4): the core's flat JSON reader, and the whole command path of a
 * running device (fake HAL, fake clock) fed the input as a message on its
 * cmd topic. Invariants: the reader's strings lie inside the input, every
 * command is counted once as accepted or refused, the interval stays in
 * its bounds, and the device keeps running (or reboots when told to). */
#include "fuzz_util.h"

#include "fake_hal.h"
#include "fw_core.h"
#include "fw_json.h"

static struct fake f;
static struct fw_dev d;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    const char *in = fuzz_tail_copy(data, n);
    struct fw_jobj o;
    struct fw_ident id;

    if(fw_json_parse(in, n, &o) == FW_OK) {
        FUZZ_CHECK(o.n >= 0 && o.n <= FW_JSON_MAX_KEYS);
        for(int i = 0; i < o.n; i++) {
            FUZZ_CHECK(strlen(o.m[i].key) > 0 && strlen(o.m[i].key) < FW_JSON_KEY_MAX);
            if(o.m[i].type == FW_JT_STR)
                FUZZ_CHECK(o.m[i].str >= in && o.m[i].str + o.m[i].str_len <= in + n);
        }
    }
    else {
        FUZZ_CHECK(o.n == 0);
    }

    fake_cleanup(&f);
    fake_init(&f);
    memset(&id, 0, sizeof(id));
    memcpy(id.sn, "FUZZ01", 7);
    memcpy(id.pass, "0123456789abcdef", 17);
    memcpy(id.prefix, "mcs", 4);
    memcpy(id.net, "4G", 3);
    memcpy(id.ver, "1.0.2", 6);
    FUZZ_CHECK(fw_init(&d, &f.hal, &id) == FW_OK);
    fake_run(&f, &d, 100);
    FUZZ_CHECK(d.state == FW_ST_RUNNING);
    fw_on_message(&d, (n & 1) ? "mcs/FUZZ01/cmd" : "mcs/broadcast/cmd", in, n);
    fake_step(&f, &d);
    FUZZ_CHECK(d.st.cmds_ok + d.st.cmds_rejected == 1);
    FUZZ_CHECK(fw_interval_ms(&d) >= 1000 && fw_interval_ms(&d) <= 3600000);
    fake_run(&f, &d, 2000);
    FUZZ_CHECK(d.state == FW_ST_RUNNING || (d.state == FW_ST_INIT && f.reboots == 1));
    return 0;
}
