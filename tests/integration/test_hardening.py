"""Issue #6: the ingest spine under the faults a plant meets — a database
that refuses a batch (transient or for its content), a reading older than
the partitions after a long outage, a spool directory recreated under mcsd,
devices with wrong clocks, silent devices, missed registry notifications, a
hung Redis, a device's forged latency stamp, and stopping in every state.
Devices publish telemetry at QoS 0 here, as in the field (R-MQ-1). Each test
checks ground truth: rows in PostgreSQL, keys in Redis, exit codes."""
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mcshelpers import telemetry, up_topic, wait_until


def stored_seqs(pg, sn):
    with pg.cursor() as cur:
        cur.execute("SELECT seq FROM sensor_data WHERE sn = %s ORDER BY seq", (sn,))
        return [r[0] for r in cur.fetchall()]


def publish_qos0(pub, sn, seqs, ts0, prefix="mcs", **fields):
    for s in seqs:
        pub.reading(sn, qos=0, prefix=prefix, ts=ts0 + s, seq=s, **fields)


def test_transient_database_error_is_retried_not_skipped(mcsd, services, add_device, pg,
                                                        mqtt_pub):
    """A batch that fails for a transient reason (here: the statement timeout
    while another session holds a lock on sensor_data, as a long migration or
    VACUUM FULL would) is retried with back-off; the checkpoint never moves
    past unstored rows, so every reading is stored once the lock goes."""
    sn = add_device()
    # The timeout for every new session of the role, so any mcsd meets it.
    with pg.cursor() as cur:
        cur.execute("ALTER ROLE CURRENT_USER SET statement_timeout = '300ms'")
    try:
        m = mcsd(DB_STATEMENT_TIMEOUT_MS=300)
    finally:
        with pg.cursor() as cur:
            cur.execute("ALTER ROLE CURRENT_USER RESET statement_timeout")
    ts0 = int(time.time()) - 600
    conn = services.pg_connect()
    try:
        cur = conn.cursor()
        cur.execute("BEGIN")
        cur.execute("LOCK TABLE sensor_data IN SHARE MODE")
        publish_qos0(mqtt_pub, sn, range(1, 41), ts0)
        time.sleep(3)  # several statement timeouts while the lock is held
        assert stored_seqs(pg, sn) == []
        cur.execute("ROLLBACK")
    finally:
        conn.close()
    wait_until(lambda: stored_seqs(pg, sn) == list(range(1, 41)), 15,
               desc="all 40 readings stored after the lock was released",
               detail=lambda: f"stored {stored_seqs(pg, sn)}\n{m.log_tail(10)}")
    assert m.metric("store_retries", 0) >= 2


def test_rows_the_database_refuses_are_quarantined(mcsd, add_device, pg, mqtt_pub):
    """Rows refused for their own content (SQLSTATE class 22/23 — here a CHECK
    constraint an operator added) go to sensor_quarantine with the reason;
    the rest of the batch is stored, nothing is silently dropped."""
    sn = add_device()
    bad_v = 4242.25
    name = "it_chk_" + secrets.token_hex(3)
    with pg.cursor() as cur:
        cur.execute(f"ALTER TABLE sensor_data ADD CONSTRAINT {name} CHECK (v_raw <> {bad_v})")
    try:
        m = mcsd()
        ts0 = int(time.time()) - 600
        for s in range(1, 21):
            mqtt_pub.reading(sn, qos=0, ts=ts0 + s, seq=s, v_raw=bad_v if s % 5 == 0 else 100.0)
        good = [s for s in range(1, 21) if s % 5]
        wait_until(lambda: stored_seqs(pg, sn) == good, 15, desc="the 16 good readings stored",
                   detail=lambda: f"stored {stored_seqs(pg, sn)}\n{m.log_tail(10)}")

        def quarantined():
            with pg.cursor() as cur:
                cur.execute("SELECT seq, sqlstate, reason, v_raw FROM sensor_quarantine "
                            "WHERE sn = %s ORDER BY seq", (sn,))
                return cur.fetchall()
        rows = wait_until(lambda: len(quarantined()) == 4 and quarantined(), 10,
                          desc="4 quarantined rows")
        assert [r[0] for r in rows] == [5, 10, 15, 20]
        assert all(r[1] == "23514" and name in r[2] and r[3] == bad_v for r in rows), rows
        m.wait_metric("quarantined", lambda v: v == 4, timeout=5)
    finally:
        with pg.cursor() as cur:
            cur.execute(f"ALTER TABLE sensor_data DROP CONSTRAINT IF EXISTS {name}")


def test_reading_older_than_partitions_after_long_outage(mcsd, services, add_device, pg,
                                                        mqtt_client, tmp_path):
    """A reading accepted days ago sits in the spool through an outage; when it
    is finally stored, its day's partition is created from the batch itself
    (here: accepted under DATA_RETENTION_DAYS=10, stored by an mcsd restarted
    with 3, whose own partition window does not reach that day)."""
    sn = add_device()
    same = dict(INSTANCE_ID="it-old-" + secrets.token_hex(3),
                SPOOL_DIR=str(tmp_path / "spool-old"))
    old_ts = int(time.time()) - 8 * 86400
    day = time.strftime("%Y%m%d", time.gmtime(old_ts))
    m1 = mcsd(DATA_RETENTION_DAYS=10, **same)
    # m1 made partitions for its 10-day window; that day's is gone again (as
    # the archive job drops old days) before the reading is stored.
    m1.wait_metric("db_up", lambda v: v == 1, timeout=5)
    with pg.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS sensor_data_{day}")
    pub = mqtt_client()
    stopped = False
    try:
        services.pg_stop()
        stopped = True
        pub.reading(sn, qos=0, ts=old_ts, seq=7)
        pub.reading(sn, qos=0, ts=int(time.time()) - 5, seq=8)
        m1.wait_metric("accepted", lambda v: v >= 2, timeout=10)
        t0 = time.monotonic()
        m1.stop()  # draining without a database: exits at once, spool kept
        assert time.monotonic() - t0 < 15
    finally:
        if stopped:
            services.pg_start()
    pg = services.pg_connect()  # the old connection died with the server
    try:
        m2 = mcsd(DATA_RETENTION_DAYS=3, **same)
        wait_until(lambda: stored_seqs(pg, sn) == [7, 8], 15,
                   desc="both readings stored, the 8-day-old one in a new partition",
                   detail=lambda: f"stored {stored_seqs(pg, sn)}\n{m2.log_tail(10)}")
    finally:
        with pg.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS sensor_data_{day}")
        pg.close()


def test_recreated_spool_is_replayed_not_skipped(mcsd, services, add_device, pg, mqtt_client,
                                               tmp_path):
    """The checkpoint names the spool it belongs to (spool.id). A spool
    directory recreated under the same INSTANCE_ID starts at position 0; if
    the database is away while it fills past the old checkpoint position, the
    old position must not make mcsd skip the new spool's first records."""
    sn = add_device()
    iid = "it-spool-" + secrets.token_hex(3)
    spool = tmp_path / "spool-re"
    m1 = mcsd(INSTANCE_ID=iid, SPOOL_DIR=str(spool))
    pub = mqtt_client()
    ts0 = int(time.time()) - 3000
    publish_qos0(pub, sn, range(1, 201), ts0)
    wait_until(lambda: len(stored_seqs(pg, sn)) == 200, 15, desc="200 stored by the first spool")
    m1.stop()
    subprocess.run(["rm", "-rf", str(spool)], check=True)
    spool.mkdir()
    m2 = mcsd(INSTANCE_ID=iid, SPOOL_DIR=str(spool))
    stopped = False
    try:
        services.pg_stop()
        stopped = True
        publish_qos0(pub, sn, range(1001, 1301), ts0)
        m2.wait_metric("accepted", lambda v: v >= 300, timeout=15)
    finally:
        if stopped:
            services.pg_start()
    want = list(range(1, 201)) + list(range(1001, 1301))
    pg = services.pg_connect()  # the old connection died with the server
    wait_until(lambda: stored_seqs(pg, sn) == want, 20,
               desc="all 300 readings of the new spool stored",
               detail=lambda: f"missing {sorted(set(want) - set(stored_seqs(pg, sn)))[:20]}\n"
                              f"{m2.log_tail(10)}")


def test_slow_device_clock_stays_online(mcsd, add_device, pg, mqtt_pub, rds):
    """Online state follows receive time (R-PR-3): a device whose clock is two
    minutes slow, reporting every second, stays online."""
    sn = add_device()
    mcsd(OFFLINE_AFTER_S=30)
    for s in range(1, 9):
        mqtt_pub.reading(sn, qos=0, ts=int(time.time()) - 120, seq=s)
        time.sleep(1)
    with pg.cursor() as cur:
        cur.execute("SELECT status, extract(epoch from now() - last_seen) FROM devices "
                    "WHERE sn = %s", (sn,))
        status, age = cur.fetchone()
    assert status == "online", f"a device two minutes slow went {status}"
    assert age < 10, f"last_seen follows the device clock ({age:.0f} s ago)"
    assert rds.exists(f"online:{sn}")


def test_clock_ahead_does_not_freeze_realtime(mcsd, add_device, mqtt_pub, rds):
    """One reading stamped minutes ahead must not freeze realtime:{sn}: the
    newest is the last received."""
    sn = add_device()
    m = mcsd()
    now = int(time.time())
    mqtt_pub.reading(sn, qos=0, ts=now + 240, seq=1, v_raw=900.0)
    wait_until(lambda: rds.get(f"realtime:{sn}"), 5, desc="realtime key")
    for s in range(2, 6):
        mqtt_pub.reading(sn, qos=0, ts=now + s, seq=s, v_raw=100.0 + s)
        time.sleep(0.6)
    m.wait_metrics_refresh()
    wait_until(lambda: json.loads(rds.get(f"realtime:{sn}"))["seq"] == 5, 5,
               desc="realtime shows the last reading received",
               detail=lambda: rds.get(f"realtime:{sn}"))


def test_silent_device_goes_offline(mcsd, add_device, pg, mqtt_pub, rds):
    """R-PR-3 without a Last Will: a device that simply stops reporting is
    offline after OFFLINE_AFTER_S (90 s in production, 3 s here) — in the
    devices table and in Redis."""
    sn = add_device()
    mcsd(OFFLINE_AFTER_S=3)
    mqtt_pub.reading(sn, qos=0, ts=int(time.time()) - 1, seq=1)

    def status():
        with pg.cursor() as cur:
            cur.execute("SELECT status FROM devices WHERE sn = %s", (sn,))
            return cur.fetchone()[0]
    wait_until(lambda: status() == "online", 5, desc="online after its reading")
    assert 0 < rds.ttl(f"online:{sn}") <= 3
    t0 = time.monotonic()
    wait_until(lambda: status() == "offline", 10, desc="offline after 3 s of silence")
    assert time.monotonic() - t0 >= 1.0
    assert not rds.exists(f"online:{sn}")


def test_error_codes_stored_and_shown_on_device(mcsd, add_device, pg, mqtt_pub, wait_db):
    """R-MQ-5: every non-zero err is stored with the reading and shown on the
    device (devices.last_err), the latest one winning."""
    sn = add_device()
    mcsd()
    now = int(time.time())
    for s, err in enumerate([0, 20, 10], start=1):
        mqtt_pub.reading(sn, qos=0, ts=now - 10 + s, seq=s, err=err)
    rows = wait_db("SELECT seq, err FROM sensor_data WHERE sn = %s ORDER BY seq", (sn,),
                   pred=lambda r: len(r) == 3)
    assert rows == [(1, 0), (2, 20), (3, 10)]
    wait_db("SELECT last_err FROM devices WHERE sn = %s", (sn,), pred=lambda r: r[0][0] == 10,
            desc="devices.last_err = 10")


def test_non_default_topic_prefix_end_to_end(mcsd, add_device, pg, mqtt_pub, wait_db):
    """MQTT_TOPIC_PREFIX (R-MQ-1): an mcsd on prefix `plant7` stores
    plant7/{sn}/up and ignores mcs/{sn}/up."""
    sn = add_device()
    mcsd(MQTT_TOPIC_PREFIX="plant7")
    now = int(time.time())
    mqtt_pub.reading(sn, qos=0, prefix="mcs", ts=now - 3, seq=1)
    mqtt_pub.reading(sn, qos=0, prefix="plant7", ts=now - 2, seq=2)
    wait_db("SELECT seq FROM sensor_data WHERE sn = %s", (sn,), pred=lambda r: r == [(2,)],
            desc="only the plant7/ reading stored")
    time.sleep(0.5)
    assert stored_seqs(pg, sn) == [2]


def test_missed_notification_caught_by_periodic_reload(mcsd, add_device, pg, mqtt_pub,
                                                       wait_db):
    """A calibration change whose NOTIFY never arrives (here: the trigger was
    disabled while it was made) still reaches mcsd by the periodic reload
    (REGISTRY_RELOAD_S, 5 min in production, 5 s here)."""
    sn = add_device(calib_k=1)
    mcsd(REGISTRY_RELOAD_S=5)
    with pg.cursor() as cur:
        cur.execute("ALTER TABLE devices DISABLE TRIGGER devices_notify_upd")
        try:
            cur.execute("UPDATE devices SET calib_k = 3 WHERE sn = %s", (sn,))
        finally:
            cur.execute("ALTER TABLE devices ENABLE TRIGGER devices_notify_upd")
    seq = 0

    def tripled():
        nonlocal seq
        seq += 1
        mqtt_pub.reading(sn, qos=0, ts=int(time.time()) - 60 + seq, seq=seq, v_raw=100.0)
        time.sleep(0.5)
        with pg.cursor() as cur:
            cur.execute("SELECT ppm FROM sensor_data WHERE sn = %s AND seq = %s", (sn, seq))
            r = cur.fetchone()
        return r is not None and abs(r[0] - 300.0) < 1e-6
    wait_until(tripled, 12, interval=0, desc="k = 3 applied without a NOTIFY")


def test_forged_latency_stamp_is_ignored(mcsd, add_device, mqtt_pub, wait_db):
    """The mcs-pt user property feeds the latency histogram; a device sending
    an absurd one (INT64_MIN, the far future) must not skew it."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    sn = add_device()
    m = mcsd()
    now = int(time.time())
    for s, v in enumerate(["-9223372036854775808", str(10 ** 18), "12abc"], start=1):
        p = Properties(PacketTypes.PUBLISH)
        p.UserProperty = ("mcs-pt", v)
        mqtt_pub.publish(up_topic(sn), telemetry(ts=now - 10 + s, seq=s), qos=0,
                         properties=p)
    wait_db("SELECT count(*) FROM sensor_data WHERE sn = %s", (sn,), pred=lambda r: r[0][0] == 3)
    m.wait_metrics_refresh()
    got = m.metrics()
    assert got.get("lat_count", 0) == 0, got
    assert got.get("lat_p99_ms", 0) == 0, got


def test_hung_redis_does_not_stall_storage(mcsd, services, add_device, pg, mqtt_client):
    """Redis trouble must not slow storage (issue #6): with the Redis process
    frozen (SIGSTOP: connections hang rather than fail), readings published
    ten times a second for 8 s are each stored within a second (before, every
    batch waited 2 s for Redis's replies)."""
    sn = add_device()
    mcsd(REDIS_TIMEOUT_MS=200)
    pub = mqtt_client()
    pid = int(Path(services.run_dir, "redis", "pid").read_text())
    sent, seen = {}, {}
    os.kill(pid, signal.SIGSTOP)
    try:
        t_end = time.monotonic() + 8
        s = 0
        while time.monotonic() < t_end:
            s += 1
            sent[s] = time.monotonic()
            pub.reading(sn, qos=0, ts=int(time.time()) - 30, seq=s)
            for q in stored_seqs(pg, sn):
                seen.setdefault(q, time.monotonic())
            time.sleep(0.1)
        wait_until(lambda: [seen.setdefault(q, time.monotonic()) for q in stored_seqs(pg, sn)]
                   and len(seen) == s, 15, interval=0.05, desc="every reading stored")
    finally:
        os.kill(pid, signal.SIGCONT)
    lags = sorted(seen[q] - sent[q] for q in sent)
    assert lags[-1] < 1.0, f"max store lag {lags[-1]:.2f} s with Redis frozen; " \
                           f"slowest: {[round(x, 2) for x in lags[-5:]]}"


# ---------------------------------------------------------------------------
# Stopping like a service: within 15 s of SIGTERM in every state.

def sigterm_within(proc, limit=15):
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"mcsd ignored SIGTERM for {limit} s")
    return rc, time.monotonic() - t0


def raw_mcsd(bin_path, base_env, tmp_path, **env):
    e = dict(base_env)
    e.update({"INSTANCE_ID": "it-stop-" + secrets.token_hex(3),
              "SPOOL_DIR": str(tmp_path / ("spool-" + secrets.token_hex(3)))})
    e.update({k: str(v) for k, v in env.items()})
    log = open(tmp_path / f"mcsd-stop-{secrets.token_hex(3)}.log", "wb")
    return subprocess.Popen([bin_path("mcsd")], env=e, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, cwd=str(tmp_path))


def test_sigterm_while_database_down_at_start(bin_path, base_env, tmp_path, services):
    stopped = False
    try:
        services.pg_stop()
        stopped = True
        p = raw_mcsd(bin_path, base_env, tmp_path)
        time.sleep(2.5)  # retrying migrations
        assert p.poll() is None
        rc, took = sigterm_within(p)
    finally:
        if stopped:
            services.pg_start()
    assert rc == 0, f"exit code {rc}"


def test_sigterm_while_broker_unreachable(bin_path, base_env, tmp_path):
    p = raw_mcsd(bin_path, base_env, tmp_path, MQTT_PORT=1)  # nothing listens on port 1
    time.sleep(8)  # the reconnect back-off has grown to several seconds
    rc, took = sigterm_within(p)
    assert rc == 0 and took < 3, (rc, took)


def test_sigterm_while_database_hung(mcsd, services, add_device, mqtt_pub):
    """PostgreSQL frozen (SIGSTOP of every server process) mid-batch: mcsd
    still stops within 15 s; the journal keeps the unstored readings."""
    sn = add_device()
    m = mcsd(BATCH_MAX_MS=10)
    # This suite's server only (its postmaster and children), never another.
    master = int(Path(services.run_dir, "pg", "postmaster.pid").read_text().split()[0])
    kids = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    pids = [master] + [int(x) for x in kids.stdout.split()]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        mqtt_pub.reading(sn, qos=0, ts=int(time.time()) - 5, seq=1)
        time.sleep(1)
        rc, took = sigterm_within(m.proc)
        m.stopped = True
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    assert rc == 0, (rc, m.log_tail())


def test_device_disabled_while_running_is_refused(mcsd, add_device, pg, mqtt_pub):
    """A device disabled while mcsd runs (the admin's switch, via NOTIFY) is
    refused by mcsd from then on, counted as `disabled`, nothing stored."""
    sn = add_device()
    m = mcsd()
    now = int(time.time())
    mqtt_pub.reading(sn, qos=0, ts=now - 30, seq=1)
    wait_until(lambda: stored_seqs(pg, sn) == [1], 5, desc="stored while enabled")
    with pg.cursor() as cur:
        cur.execute("UPDATE devices SET enabled = false WHERE sn = %s", (sn,))
    d0 = m.metric("rej_disabled")
    seq = 1

    def refused():
        nonlocal seq
        seq += 1
        mqtt_pub.reading(sn, qos=0, ts=now - 30 + seq, seq=seq)
        time.sleep(0.1)
        return m.metric("rej_disabled") > d0
    wait_until(refused, 5, interval=0, desc="readings refused as disabled")
    kept = stored_seqs(pg, sn)
    for s in range(seq + 1, seq + 6):
        mqtt_pub.reading(sn, qos=0, ts=now - 30 + s, seq=s)
    m.wait_metric("rej_disabled", lambda v: v >= d0 + 6, timeout=5)
    assert stored_seqs(pg, sn) == kept
