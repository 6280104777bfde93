"""R-MQ-3, R-MQ-7: bad input is rejected with a counted reason (metrics field
rej_<reason>), never crashes or stalls ingest, and loses nothing else. One
mcsd serves the whole module; each case interleaves its bad messages with
good readings of a registered device and checks counters by difference.
Also R-OP-4: `mcsd --check-config`."""
import itertools
import json
import subprocess
import time

import pytest

from mcshelpers import (McsdLauncher, Publisher, build_dir, new_sn, telemetry, up_topic,
                        wait_until)

REASONS = ("too_large bad_json bad_topic missing_field bad_type out_of_range ts_future "
           "ts_past unknown_sn disabled spool_full trailing_data dup_key").split()
PAYLOAD_MAX = 1024


class Rig:
    """The module's mcsd, a publisher, a registered good device and a
    PostgreSQL connection."""

    def __init__(self, m, pub, pg, sn):
        self.m, self.pub, self.pg, self.sn = m, pub, pg, sn
        self._seq = itertools.count(1)
        self.t0 = int(time.time()) - 3600

    def good(self):
        """Publishes one good reading (QoS 1); returns its seq."""
        seq = next(self._seq)
        self.pub.reading(self.sn, ts=self.t0 + seq, seq=seq % 65536)
        return seq % 65536

    def stored_seqs(self, seqs):
        with self.pg.cursor() as cur:
            cur.execute("SELECT seq FROM sensor_data WHERE sn = %s AND seq = ANY(%s)",
                        (self.sn, list(seqs)))
            return {r[0] for r in cur.fetchall()}

    def count(self, sn):
        with self.pg.cursor() as cur:
            cur.execute("SELECT count(*) FROM sensor_data WHERE sn = %s", (sn,))
            return cur.fetchone()[0]


@pytest.fixture(scope="module")
def rig(services, base_env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("badinput")
    launcher = McsdLauncher(build_dir() / "mcsd", base_env, tmp, services.redis)
    pg = services.pg_connect()
    sn = new_sn("G")
    disabled_sn = new_sn("D")
    with pg.cursor() as cur:
        cur.execute("INSERT INTO devices (sn) VALUES (%s)", (sn,))
        cur.execute("INSERT INTO devices (sn, enabled) VALUES (%s, false)", (disabled_sn,))
    pub = None
    try:
        m = launcher.start(PAYLOAD_MAX_BYTES=PAYLOAD_MAX)
        pub = Publisher(services["MQTT_HOST"], services["MQTT_PORT"])
        r = Rig(m, pub, pg, sn)
        r.disabled_sn = disabled_sn
        yield r
    finally:
        if pub:
            pub.close()
        pg.close()
        problems = launcher.cleanup()
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


def with_raw_field(d, key, raw):
    """JSON text of d with field key given as raw JSON text (for values
    Python's json cannot produce, such as 1e400)."""
    d = dict(d)
    d[key] = "__RAW__"
    return json.dumps(d).replace('"__RAW__"', raw).encode()


def without(d, key):
    d = dict(d)
    del d[key]
    return d


def padded(d, size):
    """Valid JSON of exactly size bytes (whitespace padding)."""
    s = json.dumps(d).encode()
    assert len(s) <= size
    return s + b" " * (size - len(s))


def bad_cases(sn):
    """reason -> [(topic, payload), ...]; payloads are fresh readings."""
    now = int(time.time())
    def t(**kw):
        return telemetry(**{"ts": now - 30, "seq": 7, **kw})
    up = up_topic(sn)
    return {
        "too_large": [
            (up, padded(t(), PAYLOAD_MAX + 1)),
            (up, json.dumps(t(pad="x" * 2000))),
            (up, b"\xff" * 70000),
        ],
        "bad_json": [
            (up, b"{not json"),
            (up, b"\x00\xff\xfe\x80garbage\x01"),
            (up, b""),
            (up, b"[1, 2, 3]"),
            (up, b"42"),
            (up, b'"a string"'),
            (up, b"null"),
            (up, b'{"ts": 1734320000, "seq": 1,'),
            # cJSON would cut the string at the NUL: "1.0\u0000x" read as "1.0".
            (up, json.dumps(t(ver="1.0\u0000x")).encode()),
        ],
        # Issue #16: both were stored before (cJSON stops after the first
        # value; of repeated keys the first counted).
        "trailing_data": [
            (up, json.dumps(t()).encode() + b"garbage"),
            (up, json.dumps(t()).encode() + b'{"ts": 1}'),
            (up, json.dumps(t()).encode() + b"\x00\x00"),
        ],
        "dup_key": [
            (up, json.dumps(t()).encode()[:-1] + b', "v_raw": 99999}'),
            (up, json.dumps(t()).encode()[:-1] + b', "x": {"a": 1, "a": 2}}'),
        ],
        "missing_field": [
            (up, without(t(), "ts")),
            (up, without(t(), "seq")),
            (up, without(t(), "v_raw")),
            (up, b"{}"),
        ],
        "bad_type": [
            (up, t(v_raw="abc")),
            (up, t(seq=1.5)),
            (up, t(bat="x")),
            (up, t(ts="1734320000")),
            (up, t(v_raw=True)),
            (up, t(temp="hot")),
        ],
        "out_of_range": [
            (up, t(seq=70000)),
            (up, t(seq=-1)),
            (up, t(bat=101)),
            (up, t(bat=-1)),
            (up, t(rssi=5)),
            (up, t(humi=150)),
            (up, t(temp=500)),
            (up, with_raw_field(t(), "v_raw", "1e400")),
            (up, with_raw_field(t(), "v_raw", "-1e400")),
        ],
        "ts_future": [
            (up, telemetry(ts=now + 86400, seq=8)),
            (up, telemetry(ts=now + 3600, seq=9)),
        ],
        "ts_past": [
            (up, telemetry(ts=now - 30 * 86400, seq=10)),
            (up, telemetry(ts=1000, seq=11)),
        ],
        "bad_topic": [
            ("mcs/bad$sn/up", t()),
            ("mcs/" + "A" * 40 + "/up", t()),
            ("mcs//up", t()),
            ("mcs/bad sn/up", t()),
            ("mcs/设备01/up", t()),
        ],
    }


def check_counted(rig, reason, msgs):
    """Publishes msgs interleaved with good readings; all good ones must be
    stored and rej_<reason> (only it) must grow by len(msgs)."""
    m = rig.m
    m.wait_metrics_refresh(1)
    before = m.metrics()
    rows_before = rig.count(rig.sn)
    log0 = len(m.log_lines())
    good = [rig.good()]
    for topic, payload in msgs:
        rig.pub.publish(topic, payload, qos=1)
        good.append(rig.good())
    wait_until(lambda: rig.stored_seqs(good) == set(good), 10,
               desc=f"the {len(good)} good readings around {reason} messages stored",
               detail=lambda: f"missing {set(good) - rig.stored_seqs(good)}; alive "
                              f"{m.alive()}\nmetrics {m.metrics()}\n{m.log_tail(20)}")
    field = f"rej_{reason}"
    m.wait_metric(field, lambda v: v - before.get(field, 0) >= len(msgs), timeout=5,
                  desc=f"{field} to grow by {len(msgs)}")
    m.wait_metrics_refresh()
    after = m.metrics()
    deltas = {r: after.get(f"rej_{r}", 0) - before.get(f"rej_{r}", 0) for r in REASONS}
    assert deltas == {r: (len(msgs) if r == reason else 0) for r in REASONS}, \
        f"reject counters moved by {deltas}"
    assert after["rejected"] - before.get("rejected", 0) == len(msgs)
    # Ground truth: only the good readings reached sensor_data (the bad ones
    # of this device, e.g. out of range, are absent) ...
    assert rig.count(rig.sn) - rows_before == len(good), "a rejected payload was stored"
    # ... and the rejection was logged with its reason (rate-limited, but at
    # least one line per class).
    lines = [ln for ln in m.log_lines()[log0:]
             if ln.get("msg") == "message rejected" and ln.get("reason") == reason]
    assert lines, f"no log line for reason {reason}"
    assert m.alive()


@pytest.mark.parametrize("reason", ["too_large", "bad_json", "missing_field", "bad_type",
                                    "out_of_range", "ts_future", "ts_past", "bad_topic",
                                    "trailing_data", "dup_key"])
def test_bad_payload_rejected_and_counted(rig, reason):
    check_counted(rig, reason, bad_cases(rig.sn)[reason])


def test_payload_at_limit_accepted(rig):
    """Exactly PAYLOAD_MAX_BYTES is still accepted (the limit is inclusive)."""
    now = int(time.time())
    rig.pub.publish(up_topic(rig.sn), padded(telemetry(ts=now - 20, seq=40000), PAYLOAD_MAX))
    wait_until(lambda: rig.stored_seqs([40000]) == {40000}, 10,
               desc="the 1024-byte reading stored",
               detail=lambda: f"metrics {rig.m.metrics()}")


def test_unknown_sn_never_stored(rig, rds):
    """R-MQ-7: a well-formed sn not in the registry is dropped, counted as
    unknown_sn, and leaves nothing in sensor_data or Redis."""
    sn = new_sn("U")
    now = int(time.time())
    check_counted(rig, "unknown_sn",
                  [(up_topic(sn), telemetry(ts=now - 9 + i, seq=i)) for i in range(3)])
    assert rig.count(sn) == 0
    assert not rds.exists(f"online:{sn}") and not rds.exists(f"realtime:{sn}")


def test_disabled_device_never_stored_until_enabled(rig, rds):
    """A disabled device's readings are refused (disabled) and not stored;
    enabling it (an UPDATE, pushed by NOTIFY) lets the next ones in."""
    sn = rig.disabled_sn  # registered before mcsd started
    now = int(time.time())
    check_counted(rig, "disabled",
                  [(up_topic(sn), telemetry(ts=now - 9 + i, seq=i)) for i in range(3)])
    assert rig.count(sn) == 0
    assert not rds.exists(f"realtime:{sn}")

    with rig.pg.cursor() as cur:
        cur.execute("UPDATE devices SET enabled = true WHERE sn = %s", (sn,))
    seq = 100

    def stored_after_enable():
        nonlocal seq
        seq += 1
        rig.pub.reading(sn, ts=now + seq - 200, seq=seq)
        time.sleep(0.2)
        return rig.count(sn) > 0
    wait_until(stored_after_enable, 5, interval=0,
               desc="a reading stored after enabling the device")


def test_flood_of_bad_input_counted_and_logged_rate_limited(rig):
    """500 bad messages in a burst: all counted, good ones around them stored,
    and the log is rate-limited rather than one line per message."""
    lines0 = len(rig.m.log_lines())
    check_counted(rig, "bad_json", [(up_topic(rig.sn), b"{" * (i % 7 + 1)) for i in range(500)])
    new = rig.m.log_lines()[lines0:]
    assert len(new) < 100, f"{len(new)} log lines for 500 rejects; first: {new[:3]}"


def test_still_alive_after_bad_input(rig):
    """After everything above mcsd still runs and stores good readings."""
    assert rig.m.alive(), rig.m.log_tail()
    seq = rig.good()
    wait_until(lambda: rig.stored_seqs([seq]) == {seq}, 10, desc="a final good reading")
    got = rig.m.metrics()
    assert got["mqtt_connected"] == 1 and got["db_up"] == 1


# --------------------------------------------------------------------------
# --check-config (R-OP-4)


def check_config(bin_path, base_env, tmp_path, args=(), **env):
    e = dict(base_env)
    e.update(env)
    return subprocess.run([bin_path("mcsd"), "--check-config", *args], env=e,
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("var,value", [
    ("DB_PORT", "abc"), ("LOG_LEVEL", "LOUD"), ("REDIS_PORT", "70000"),
    ("PAYLOAD_MAX_BYTES", "10"), ("INSTANCE_ID", "bad id!"), ("MQTT_TOPIC_PREFIX", "a/b"),
])
def test_check_config_rejects_bad_value(bin_path, base_env, tmp_path, var, value):
    r = check_config(bin_path, base_env, tmp_path, **{var: value})
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert var in r.stderr, r.stderr


def test_check_config_reports_every_problem(bin_path, base_env, tmp_path):
    """INTERFACES.md: 'explains every problem on stderr'."""
    r = check_config(bin_path, base_env, tmp_path, DB_PORT="abc", LOG_LEVEL="LOUD",
                     MQTT_SHARE_GROUP="a/b")
    assert r.returncode == 2, (r.returncode, r.stderr)
    missing = [v for v in ("DB_PORT", "LOG_LEVEL", "MQTT_SHARE_GROUP") if v not in r.stderr]
    assert not missing, f"not reported: {missing}; stderr:\n{r.stderr}"


def test_check_config_valid_masks_secrets(bin_path, base_env, tmp_path, services):
    r = check_config(bin_path, base_env, tmp_path, ["--set", "BATCH_MAX_ROWS=1234"],
                     DB_PASS="s3cr3t", REDIS_PASS="r3dispw", MQTT_PASS="mqttpw99")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    for secret in ("s3cr3t", "r3dispw", "mqttpw99", "test-vendor-secret"):
        assert secret not in out
    assert f"DB_PORT={services['DB_PORT']}" in r.stdout
    assert "BATCH_MAX_ROWS=1234" in r.stdout
