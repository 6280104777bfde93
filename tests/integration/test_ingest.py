"""Ingest spine: MQTT telemetry → calibration → sensor_data, Redis and device
statistics (R-PR-1, R-PR-2, R-PR-4, R-PR-5, R-ST-7), against a real mcsd."""
import json
import subprocess
import time

import pytest

from mcshelpers import latency_props, telemetry, up_topic, wait_until

PPM_COLS = ("SELECT ppm, v_raw, temp, humi, bat, rssi, seq, err, flags, "
            "extract(epoch from time)::bigint FROM sensor_data WHERE sn = %s ORDER BY time, seq")


def one_row(wait_db, sn, timeout=10):
    rows = wait_db(PPM_COLS, (sn,), pred=lambda r: len(r) >= 1, timeout=timeout,
                   desc=f"a sensor_data row of {sn}")
    assert len(rows) == 1, f"expected one row of {sn}, got {rows}"
    return rows[0]


def test_worked_example(mcsd, add_device, mqtt_pub, wait_db, rds):
    """R-PR-1: k 1.5, b -10, t_comp 0.1, t_ref 25, v_raw 2350.5, temp 28.5 →
    3516.1 ppm, in sensor_data and realtime:{sn}; online:{sn} with TTL ≤ 90."""
    sn = add_device(calib_k=1.5, calib_b=-10, calib_t_comp=0.1, calib_t_ref=25)
    mcsd()
    ts = int(time.time()) - 5
    t_pub = int(time.time())
    mqtt_pub.reading(sn, ts=ts, seq=1024, v_raw=2350.5, temp=28.5, humi=65.2, bat=85,
                     rssi=-75)

    ppm, v_raw, temp, humi, bat, rssi, seq, err, flags, t = one_row(wait_db, sn)
    assert ppm == pytest.approx(3516.1, abs=1e-6)
    assert (v_raw, temp, humi, bat, rssi, seq, err, flags, t) == \
        (2350.5, 28.5, 65.2, 85, -75, 1024, 0, 0, ts)

    raw = wait_until(lambda: rds.get(f"realtime:{sn}"), 5, desc=f"realtime:{sn}")
    rt = json.loads(raw)
    assert rt["sn"] == sn
    assert rt["ppm"] == pytest.approx(3516.1, abs=1e-6)
    assert rt["ts"] == ts and rt["seq"] == 1024 and rt["v_raw"] == 2350.5
    assert 0 < rds.ttl(f"realtime:{sn}") <= 30

    online = wait_until(lambda: rds.get(f"online:{sn}"), 5, desc=f"online:{sn}")
    # R-PR-3: online:{sn} holds when mcsd received the reading (receive
    # time, not the device clock, which was 5 s behind here).
    assert t_pub <= int(online) <= int(time.time()), \
        f"online:{sn} should hold the receive time, not the device's ts {ts}: {online}"
    assert 0 < rds.ttl(f"online:{sn}") <= 90

    # Device statistics, flushed every DEVICE_FLUSH_S (1 s here).
    rows = wait_db("SELECT status, pkt_recv, pkt_lost, bat, rssi, fw_ver, last_err, "
                   "extract(epoch from now() - last_seen) FROM devices WHERE sn = %s", (sn,),
                   pred=lambda r: r and r[0][1] == 1 and r[0][0] == "online", timeout=5,
                   desc="devices statistics flushed")
    status, recv, lost, dbat, drssi, fw, last_err, age = rows[0]
    assert (status, recv, lost, dbat, drssi, fw, last_err) == \
        ("online", 1, 0, 85, -75, "1.0.2", 0)
    assert age is not None and age < 120


@pytest.mark.parametrize("cols,v_raw,want_ppm,over", [
    pytest.param(dict(calib_k=1, calib_b=-1000), 100.0, 0.0, False, id="negative-clamps-to-0"),
    pytest.param(dict(calib_k=1, range_max=1000), 5000.0, 1000.0, True, id="over-device-range"),
    pytest.param(dict(calib_k=2), 30000.0, 50000.0, True, id="over-default-range-50000"),
    pytest.param(dict(calib_k=1, range_max=1000), 1000.0, 1000.0, False, id="at-range-max"),
])
def test_clamping(mcsd, add_device, mqtt_pub, wait_db, rds, cols, v_raw, want_ppm, over):
    """R-PR-1: < 0 → 0; > range max → range max with flags bit 0."""
    sn = add_device(**cols)
    mcsd()
    mqtt_pub.reading(sn, seq=1, v_raw=v_raw, temp=25.0)
    ppm, _, _, _, _, _, _, _, flags, _ = one_row(wait_db, sn)
    assert ppm == pytest.approx(want_ppm, abs=1e-9)
    assert bool(flags & 1) == over, f"flags={flags}"
    rt = json.loads(wait_until(lambda: rds.get(f"realtime:{sn}"), 5, desc="realtime"))
    assert rt["ppm"] == pytest.approx(want_ppm, abs=1e-9)
    assert bool(rt.get("over_range")) == over, rt


def test_calibration_update_takes_effect_without_restart(mcsd, add_device, mqtt_pub,
                                                         wait_db, pg):
    """R-PR-2: an UPDATE of devices (as psql/CLI/API would do) is pushed by
    NOTIFY and applies to the next messages; k and b change together."""
    sn = add_device(calib_k=1, calib_b=0)
    m = mcsd()
    ts = int(time.time()) - 100
    mqtt_pub.reading(sn, ts=ts, seq=1, v_raw=100.0, temp=25.0)
    assert one_row(wait_db, sn)[0] == pytest.approx(100.0)

    with pg.cursor() as cur:
        cur.execute("UPDATE devices SET calib_k = 2, calib_b = 5 WHERE sn = %s", (sn,))
    t0 = time.monotonic()
    seen = []
    seq = 1
    while True:
        seq += 1
        mqtt_pub.reading(sn, ts=ts + seq, seq=seq, v_raw=100.0, temp=25.0)
        rows = wait_db("SELECT ppm FROM sensor_data WHERE sn = %s AND seq = %s", (sn, seq),
                       pred=lambda r: len(r) == 1, timeout=10)
        seen.append(rows[0][0])
        if rows[0][0] == pytest.approx(205.0):
            break
        if time.monotonic() - t0 > 2.0:
            pytest.fail(f"calibration change not applied 2 s after UPDATE; ppm seen: {seen}\n"
                        f"log tail:\n{m.log_tail(20)}", pytrace=False)
        time.sleep(0.1)
    print(f"calibration applied {time.monotonic() - t0:.2f}s after UPDATE "
          f"({len(seen)} readings)")
    # Never a mix of old k with new b (or the reverse).
    assert all(p == pytest.approx(100.0) or p == pytest.approx(205.0) for p in seen), seen
    # And it stays applied.
    mqtt_pub.reading(sn, ts=ts + 50, seq=1000, v_raw=10.0, temp=25.0)
    rows = wait_db("SELECT ppm FROM sensor_data WHERE sn = %s AND seq = 1000", (sn,),
                   pred=lambda r: len(r) == 1)
    assert rows[0][0] == pytest.approx(25.0)


@pytest.mark.parametrize("seqs,lost", [
    pytest.param([1, 2, 5, 6], 2, id="gap"),
    pytest.param([65534, 65535, 0, 1], 0, id="wrap-no-loss"),
    pytest.param([65533, 65535, 1], 2, id="wrap-with-gaps"),
])
def test_packet_loss_statistics(mcsd, add_device, mqtt_pub, wait_db, seqs, lost):
    """R-PR-4: seq gaps (wrapping at 65535) counted in devices.pkt_lost."""
    sn = add_device()
    mcsd()
    ts0 = int(time.time()) - 100
    for i, seq in enumerate(seqs):
        mqtt_pub.reading(sn, ts=ts0 + 10 * i, seq=seq)
    rows = wait_db("SELECT pkt_recv, pkt_lost FROM devices WHERE sn = %s", (sn,),
                   pred=lambda r: r and r[0][0] >= len(seqs), timeout=6,
                   desc=f"pkt_recv of {sn} = {len(seqs)}")
    assert rows[0] == (len(seqs), lost), f"(pkt_recv, pkt_lost) for seqs {seqs}"
    wait_db("SELECT count(*) FROM sensor_data WHERE sn = %s", (sn,),
            pred=lambda r: r[0][0] == len(seqs))


def test_duplicates_stored_once(mcsd, add_device, mqtt_client, wait_db, db_count):
    """R-PR-5: the same (sn, ts, seq) three times, and a device resending its
    offline cache of 20 readings, are each stored once; `duplicates` counts
    the 2 + 20 repeats."""
    sn = add_device()
    m = mcsd()
    pub = mqtt_client()
    dup0 = m.metric("duplicates")
    now = int(time.time())
    for _ in range(3):
        pub.reading(sn, ts=now - 5, seq=500, v_raw=123.0)
    cache = [(up_topic(sn), telemetry(ts=now - 1000 + 10 * i, seq=100 + i, v_raw=float(i)))
             for i in range(20)]
    pub.publish_many(cache)
    wait_db("SELECT count(*) FROM sensor_data WHERE sn = %s", (sn,),
            pred=lambda r: r[0][0] >= 21, desc="21 distinct readings stored")
    # The device reconnects and resends its whole offline cache.
    pub.publish_many(cache)
    m.wait_metric("duplicates", lambda v: v - dup0 >= 22, timeout=10,
                  desc="duplicates grows by 22")
    m.wait_metrics_refresh()
    assert db_count(sn) == 21
    assert m.metric("duplicates") - dup0 == 22


def test_timestamps_within_bounds_are_stored(mcsd, add_device, mqtt_pub, wait_db):
    """Readings up to TS_MAX_FUTURE_S ahead and up to DATA_RETENTION_DAYS old
    (a device resending a long offline cache) are accepted and stored, into
    whatever day partition they belong to."""
    sn = add_device()
    m = mcsd()
    now = int(time.time())
    stamps = {1: now - 2 * 86400, 2: now - 86400 - 3600, 3: now - 3600, 4: now + 60}
    for seq, ts in stamps.items():
        mqtt_pub.reading(sn, ts=ts, seq=seq)
    rows = wait_db("SELECT seq, extract(epoch from time)::bigint FROM sensor_data "
                   "WHERE sn = %s ORDER BY seq", (sn,), pred=lambda r: len(r) >= 4,
                   desc="4 readings stored", timeout=10)
    assert dict(rows) == stamps
    assert all(m.metrics().get(f"rej_{r}", 0) == 0 for r in ("ts_future", "ts_past"))


def test_metrics_hash_has_contract_fields(mcsd, rds):
    """INTERFACES.md: mcs:metrics:{INSTANCE_ID} refreshed every
    METRICS_INTERVAL_MS with every documented field; mcs:instances lists it."""
    m = mcsd()
    m.wait_metrics_refresh()
    got = m.metrics()
    want = ("received accepted status_msgs rejected stored duplicates batches spool_bytes "
            "spool_lost db_up redis_up mqtt_connected devices lat_count lat_p50_ms "
            "lat_p99_ms rss_kb updated_ms").split()
    reasons = ("too_large bad_json bad_topic missing_field bad_type out_of_range ts_future "
               "ts_past unknown_sn disabled spool_full").split()
    missing = [f for f in want + [f"rej_{r}" for r in reasons] if f not in got]
    assert not missing, f"metrics fields missing: {missing}; got {sorted(got)}"
    assert (got["db_up"], got["redis_up"], got["mqtt_connected"]) == (1, 1, 1)
    assert got["rss_kb"] > 0
    assert abs(got["updated_ms"] / 1000 - time.time()) < 5
    assert m.instance_id in rds.smembers("mcs:instances")


def test_broker_statistics_in_metrics(mcsd, services):
    """The broker's $SYS counters (connected clients, dropped publishes) are
    mirrored into the metrics hash, so drops before mcsd are visible: the
    value equals what the broker itself publishes."""
    m = mcsd()
    m.wait_metric("broker_clients", lambda v: v >= 1, timeout=10,
                  desc="broker_clients from $SYS (sys_interval 2 in svc.sh)")

    def from_broker():
        r = subprocess.run(["mosquitto_sub", "-h", services["MQTT_HOST"], "-p",
                            str(services["MQTT_PORT"]), "-C", "1", "-W", "5", "-t",
                            "$SYS/broker/publish/messages/dropped"],
                           capture_output=True, text=True, timeout=10)
        # Mosquitto publishes this counter (retained) only once it changed:
        # nothing within 5 s means "not known", which mcsd shows as -1.
        return int(r.stdout.strip()) if r.stdout.strip() else -1
    want = from_broker()
    m.wait_metric("broker_dropped", lambda v: v == want or v == from_broker(), timeout=6,
                  desc=f"broker_dropped equal to the broker's own $SYS figure ({want})")


def test_latency_metric_from_user_property(mcsd, add_device, mqtt_pub, wait_db):
    """MQTT v5 user property mcs-pt (publish time, us) feeds lat_* metrics."""
    sn = add_device()
    m = mcsd()
    now = int(time.time())
    t0 = time.monotonic()
    for seq in range(5):
        mqtt_pub.publish(up_topic(sn), telemetry(ts=now - 10 + seq, seq=seq), qos=1,
                         properties=latency_props())
    wait_db("SELECT count(*) FROM sensor_data WHERE sn = %s", (sn,),
            pred=lambda r: r[0][0] == 5)
    elapsed_ms = (time.monotonic() - t0) * 1000
    m.wait_metric("lat_count", lambda v: v == 5, timeout=5)
    got = m.metrics()
    # Each sample is publish → commit of a reading that was published and
    # stored within elapsed_ms: none can be longer, none is zero.
    assert 0 < got["lat_p50_ms"] <= got["lat_p99_ms"] <= elapsed_ms + 1, (got, elapsed_ms)


def test_worker_over_tls(mcsd, services, add_device, mqtt_pub, wait_db):
    """With MQTT_TLS_CAFILE set mcsd connects to the TLS listener (R-MQ-6) and
    ingests as usual."""
    sn = add_device()
    m = mcsd(MQTT_PORT=services["MQTT_TLS_PORT"], MQTT_TLS_CAFILE=services["MQTT_CAFILE"])
    mqtt_pub.reading(sn, seq=9)
    wait_db("SELECT count(*) FROM sensor_data WHERE sn = %s", (sn,),
            pred=lambda r: r[0][0] == 1)
    m.wait_metric("mqtt_connected", lambda v: v == 1, timeout=3)


def test_realtime_shows_newest_reading_after_cache_resend(mcsd, add_device, mqtt_pub, rds,
                                                         wait_db):
    """R-ST-7/R-API-5: live screens read realtime:{sn} and online:{sn}. When a
    device resends its offline cache after a fresh reading (seq and time both
    behind), realtime:{sn} keeps the live reading; online:{sn} follows receive
    time."""
    sn = add_device()
    m = mcsd()
    now = int(time.time())
    mqtt_pub.reading(sn, ts=now - 1, seq=50, v_raw=500.0)
    wait_until(lambda: rds.get(f"realtime:{sn}"), 5, desc=f"realtime:{sn}")
    mqtt_pub.publish_many([(up_topic(sn), telemetry(ts=now - 600 + 10 * i, seq=i, v_raw=100.0))
                           for i in range(1, 11)])
    wait_db("SELECT count(*) FROM sensor_data WHERE sn = %s", (sn,),
            pred=lambda r: r[0][0] == 11, desc="11 readings stored")
    m.wait_metrics_refresh()
    rt = json.loads(rds.get(f"realtime:{sn}"))
    assert (rt["seq"], rt["ts"], rt["ppm"]) == (50, now - 1, pytest.approx(500.0)), \
        f"realtime:{sn} went back to a resent old reading: {rt}"
    assert int(rds.get(f"online:{sn}")) >= now
    with_flags = wait_db("SELECT count(*) FROM sensor_data WHERE sn = %s AND flags & 2 = 2",
                         (sn,), pred=lambda r: r[0][0] == 10)
    assert with_flags[0][0] == 10, "the resent readings are stored flagged as resent"


def assert_now_unknown(m, mqtt_pub, db_count, sn, stamps, what):
    """After a registry change that removes sn: readings of it (ts, seq from
    stamps) are refused as unknown_sn within a few seconds (the NOTIFY's
    propagation; one sent before it arrived may still have been stored), and
    from then on every one is refused and none stored."""
    u0 = m.metric("rej_unknown_sn")

    def refused():
        ts, seq = next(stamps)
        mqtt_pub.reading(sn, ts=ts, seq=seq)
        time.sleep(0.1)
        return m.metric("rej_unknown_sn") > u0
    wait_until(refused, 3, 0, desc=f"readings of {what} refused as unknown_sn")
    kept = db_count(sn)
    u1 = m.metric("rej_unknown_sn")
    for _ in range(3):
        ts, seq = next(stamps)
        mqtt_pub.reading(sn, ts=ts, seq=seq)
    m.wait_metric("rej_unknown_sn", lambda v: v >= u1 + 3, timeout=5)
    assert db_count(sn) == kept


def test_registry_follows_insert_and_delete(mcsd, pg, mqtt_pub, fresh_sn, db_count):
    """A device added while mcsd runs is accepted within a second or two (the
    INSERT's NOTIFY); once deleted its readings are refused as unknown_sn."""
    sn = fresh_sn()
    m = mcsd()
    now = int(time.time())
    seq = iter(range(1, 10000))
    u0 = m.metric("rej_unknown_sn")
    mqtt_pub.reading(sn, ts=now - 500, seq=0)
    m.wait_metric("rej_unknown_sn", lambda v: v > u0, timeout=5)
    assert db_count(sn) == 0

    with pg.cursor() as cur:
        cur.execute("INSERT INTO devices (sn) VALUES (%s)", (sn,))

    def accepted():
        s = next(seq)
        mqtt_pub.reading(sn, ts=now - 500 + s, seq=s)
        time.sleep(0.1)
        return db_count(sn) > 0
    wait_until(accepted, 3, 0, desc="a reading of the newly added device stored")

    with pg.cursor() as cur:
        cur.execute("DELETE FROM devices WHERE sn = %s", (sn,))
    assert_now_unknown(m, mqtt_pub, db_count, sn, ((now - 500 + s, s) for s in seq),
                       "the deleted device")


def test_renamed_device_old_sn_refused(mcsd, add_device, pg, mqtt_pub, fresh_sn, db_count):
    """UPDATE devices SET sn = new: the trigger notifies the old SN too, so
    mcsd refuses it as unknown and accepts the new one, without restart."""
    old, new = add_device(), fresh_sn()
    m = mcsd()
    now = int(time.time())
    mqtt_pub.reading(old, ts=now - 60, seq=1)
    wait_until(lambda: db_count(old) == 1, 5, desc="old SN stored before the rename")
    with pg.cursor() as cur:
        cur.execute("UPDATE devices SET sn = %s WHERE sn = %s", (new, old))
    assert_now_unknown(m, mqtt_pub, db_count, old, ((now - 60 + s, s) for s in range(2, 1000)),
                       "the old SN")
    mqtt_pub.reading(new, ts=now - 10, seq=1)
    wait_until(lambda: db_count(new) == 1, 5, desc="new SN accepted")


def test_realtime_ends_on_newest_of_a_fast_burst(mcsd, add_device, mqtt_pub, rds):
    """realtime:{sn} is written at most twice a second per device; a reading
    held back by that limit is written when its window opens, so after a
    fast burst the key shows the newest reading, not the first."""
    sn = add_device()
    mcsd()
    now = int(time.time())
    for seq in range(1, 31):
        mqtt_pub.publish(up_topic(sn), telemetry(ts=now - 30 + seq, seq=seq, v_raw=100 + seq),
                         qos=1, wait=False)
        if seq == 10:
            time.sleep(0.15)  # a first batch is written, the rest falls in its window

    def newest():
        raw = rds.get(f"realtime:{sn}")
        return raw and json.loads(raw)["seq"] == 30
    wait_until(newest, 3, desc="realtime shows seq 30",
               detail=lambda: rds.get(f"realtime:{sn}"))
    rt = json.loads(rds.get(f"realtime:{sn}"))
    assert rt["ts"] == now and rt["v_raw"] == 130
