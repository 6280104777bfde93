"""R-PR-5 under stress: every reading the broker accepted is stored exactly
once across two instances sharing the load, a SIGKILL of mcsd mid-load, a
PostgreSQL outage mid-load and a full spool — with publishers at QoS 0, as
devices publish telemetry (R-MQ-1), and at QoS 1. The broker delivers to
mcsd at QoS 1 (upgrade_outgoing_qos): mcsd acknowledges a reading only once
it is in the journal. Counts are printed (-s shows them; they also appear in
failure reports)."""
import json
import secrets
import struct
import time
from pathlib import Path

import pytest

from mcshelpers import Publisher, RatePublisher, new_sn, telemetry, up_topic, wait_until

QOS = [pytest.param(0, id="qos0"), pytest.param(1, id="qos1")]


def add_devices(conn, n, prefix):
    sns = [new_sn(prefix) for _ in range(n)]
    with conn.cursor() as cur:
        cur.execute("INSERT INTO devices (sn) SELECT unnest(%s::text[])", (sns,))
    return sns


def make_msgs(sns, per_device):
    """Round-robin over devices, seq rising per device, distinct ts per seq.
    Returns [((sn, seq), topic, payload_bytes), ...]."""
    now = int(time.time())
    t0 = now - 10 * per_device - 60
    out = []
    for seq in range(per_device):
        for i, sn in enumerate(sns):
            d = telemetry(ts=t0 + 10 * seq, seq=seq, v_raw=1000.0 + i + seq / 100)
            out.append(((sn, seq), up_topic(sn), json.dumps(d).encode()))
    return out


def stored(conn, sns):
    """(set of (sn, seq) stored, total rows). make_msgs gives each (sn, seq)
    one time, so a reading stored twice shows as rows > len(set)."""
    with conn.cursor() as cur:
        cur.execute("SELECT sn, seq FROM sensor_data WHERE sn = ANY(%s)", (sns,))
        rows = cur.fetchall()
    return {(sn, seq) for sn, seq in rows}, len(rows)


def count(conn, sns):
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM sensor_data WHERE sn = ANY(%s)", (sns,))
        return cur.fetchone()[0]


def wait_quiet(conn, sns, expected, timeout=90, quiet_s=4):
    """Polls the stored count until it equals expected, or has not moved for
    quiet_s seconds, or timeout. Returns the last count."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while True:
        c = count(conn, sns)
        if c == expected:
            return c
        if c != last:
            last, since = c, time.monotonic()
        elif time.monotonic() - since > quiet_s or time.monotonic() > deadline:
            return c
        time.sleep(0.2)


def report(name, **counts):
    line = f"{name}: " + ", ".join(f"{k}={v}" for k, v in counts.items())
    print(line)
    return line


def journal_unstored(spool_dir, conn, instance):
    """Readings on disk in mcsd's journal beyond the checkpoint committed to
    PostgreSQL (ground truth from the segment files and the database)."""
    segs = sorted(Path(spool_dir).glob("j-*.log"))
    if not segs:
        return 0
    last = segs[-1]
    with open(last, "rb") as f:
        head = f.read(64)
    if head[:8] == b"MCSJRNL\n":
        hdr, rec = 64, struct.unpack_from("<I", head, 12)[0] + 8
    else:
        hdr, rec = 0, struct.unpack_from("<I", head, 0)[0] + 8
    end = int(last.name[2:-4]) + last.stat().st_size - hdr
    with conn.cursor() as cur:
        cur.execute('SELECT "offset" FROM ingest_checkpoint WHERE instance = %s', (instance,))
        row = cur.fetchone()
    ck = row[0] if row else int(segs[0].name[2:-4])
    return (end - ck) // rec


def check_exactly_once(conn, sns, acked, line):
    keys, rows = stored(conn, sns)
    acked = set(acked)
    missing = sorted(acked - keys)
    extra = sorted(keys - acked)
    assert not missing, f"{line}\n{len(missing)} acknowledged readings not stored, " \
                        f"e.g. {missing[:10]}"
    assert not extra, f"{line}\n{len(extra)} stored readings never acknowledged: {extra[:10]}"
    assert rows == len(acked), line


@pytest.mark.parametrize("qos", QOS)
def test_two_instances_share_the_load(mcsd, services, pg, mqtt_client, qos):
    """(a) Two instances in one share group; 100 devices × 40 readings: every
    reading stored exactly once, each instance received a share, and the
    shares add up to what was published (none received twice)."""
    sns = add_devices(pg, 100, "A")
    group = "g" + secrets.token_hex(4)
    a = mcsd(MQTT_SHARE_GROUP=group)
    b = mcsd(MQTT_SHARE_GROUP=group)
    msgs = make_msgs(sns, 40)
    pubs = [mqtt_client() for _ in range(4)]
    t0 = time.monotonic()
    infos = [pubs[i % 4].publish(t, p, qos=qos, wait=False) for i, (_, t, p) in enumerate(msgs)]
    for info in infos:
        info.wait_for_publish(60)
    acked = [k for (k, _, _), info in zip(msgs, infos) if info.is_published()]
    assert len(acked) == 4000
    final = wait_quiet(pg, sns, 4000, timeout=60)
    took = time.monotonic() - t0
    a.wait_metrics_refresh()
    b.wait_metrics_refresh()
    ma, mb = a.metrics(), b.metrics()
    line = report("two-instances", qos=qos, published=len(msgs), acked=len(acked),
                  stored=final, accepted_a=ma.get("accepted"), accepted_b=mb.get("accepted"),
                  stored_a=ma.get("stored"), stored_b=mb.get("stored"), seconds=f"{took:.1f}")
    check_exactly_once(pg, sns, acked, line)
    # Each instance's own count of readings received: both took a share,
    # and the shares add up exactly (a reading given to both would show).
    assert ma.get("accepted", 0) > 0 and mb.get("accepted", 0) > 0, line
    assert ma["accepted"] + mb["accepted"] == 4000, line
    assert ma["stored"] + mb["stored"] == 4000, line


@pytest.mark.parametrize("qos", QOS)
def test_sigkill_mid_load_loses_and_repeats_nothing(mcsd, services, pg, tmp_path, qos):
    """(b) SIGKILL mcsd ~1.5 s into a 5000-message load (20 devices, ~1000/s);
    restart 3 s later with the same INSTANCE_ID and SPOOL_DIR: everything the
    broker accepted is stored exactly once — also at QoS 0 (issue #6: a QoS 0
    reading published while mcsd is down is queued for it, not dropped)."""
    sns = add_devices(pg, 20, "K")
    iid = "it-kill-" + secrets.token_hex(3)
    # A slow batch (1 s) leaves hundreds of readings PUBACKed by mcsd but not
    # yet in the database when the kill comes: the journal must replay them.
    same = dict(INSTANCE_ID=iid, SPOOL_DIR=str(tmp_path / "spool-kill"),
                MQTT_SHARE_GROUP="g" + secrets.token_hex(4), BATCH_MAX_MS=1000)
    m1 = mcsd(**same)
    msgs = make_msgs(sns, 250)
    pub = RatePublisher(services["MQTT_HOST"], services["MQTT_PORT"], msgs, rate=1000, qos=qos)
    try:
        pub.start()
        wait_until(lambda: pub.sent >= 1500 or not pub.is_alive(), 20, desc="1500 sent")
        m1_metrics = m1.metrics()
        m1.kill()
        at_kill = count(pg, sns)
        sent_at_kill = pub.sent
        in_journal = journal_unstored(same["SPOOL_DIR"], pg, iid)
        time.sleep(3)  # the publisher goes on while mcsd is down
        m2 = mcsd(**same)
        acked = pub.wait_acked(timeout=60)
        assert pub.error is None, pub.error
        final = wait_quiet(pg, sns, len(acked), timeout=90)
        m2.wait_metrics_refresh()
        m2m = m2.metrics()
        line = report("sigkill", qos=qos, published=pub.sent, acked=len(acked),
                      sent_at_kill=sent_at_kill, stored_at_kill=at_kill,
                      journal_unstored_at_kill=in_journal,
                      m1_stored_metric=m1_metrics.get("stored"), stored_final=final,
                      m2_stored=m2m.get("stored"), m2_duplicates=m2m.get("duplicates"))
        assert pub.sent == len(msgs), line
        assert len(acked) == len(msgs), line
        check_exactly_once(pg, sns, acked, line)
        assert at_kill < len(msgs), f"{line}\nthe kill came after the load had finished"
        # Replay really ran: readings were in the journal, not yet stored,
        # when the process died.
        assert in_journal > 0, f"{line}\nnothing was waiting in the journal at the kill"
    finally:
        pub.close()


@pytest.mark.parametrize("qos", QOS)
def test_postgres_outage_mid_load(mcsd, services, tmp_path, qos):
    """(c) PostgreSQL stopped while 20 devices publish (~500/s): db_up drops
    to 0, the spool grows, and after PostgreSQL returns everything published
    is stored exactly once."""
    conn = services.pg_connect()
    sns = add_devices(conn, 20, "P")
    conn.close()
    m = mcsd()
    msgs = make_msgs(sns, 200)
    pub = RatePublisher(services["MQTT_HOST"], services["MQTT_PORT"], msgs, rate=500, qos=qos)
    stopped = False
    try:
        pub.start()
        wait_until(lambda: pub.sent >= 500 or not pub.is_alive(), 20, desc="500 sent")
        try:
            services.pg_stop()
            stopped = True
            sent_at_stop = pub.sent
            m.wait_metric("db_up", lambda v: v == 0, timeout=10, desc="db_up = 0")
            spool1 = m.metric("spool_bytes")
            wait_until(lambda: pub.sent >= sent_at_stop + 1500 or not pub.is_alive(), 20,
                       desc="1500 more sent during the outage")
            spool2 = m.wait_metric("spool_bytes", lambda v: v > spool1, timeout=5,
                                   desc="spool_bytes grows while the database is down")
            outage_metrics = m.metrics()
        finally:
            if stopped:
                services.pg_start()
        m.wait_metric("db_up", lambda v: v == 1, timeout=30, desc="db_up back to 1")
        acked = pub.wait_acked(timeout=60)
        assert pub.error is None, pub.error
        conn = services.pg_connect()
        try:
            final = wait_quiet(conn, sns, len(acked), timeout=90)
            m.wait_metrics_refresh()
            after = m.metrics()
            line = report("pg-outage", published=pub.sent, acked=len(acked),
                          sent_at_stop=sent_at_stop, spool_bytes_at_stop=spool1,
                          spool_bytes_later=spool2, stored_final=final,
                          stored_metric=after.get("stored"),
                          spool_lost=after.get("spool_lost"),
                          rej_spool_full=after.get("rej_spool_full"),
                          received_during_outage=outage_metrics.get("received"))
            assert pub.sent == len(msgs), line
            check_exactly_once(conn, sns, acked, line)
            assert after.get("spool_lost", 0) == 0 and after.get("rej_spool_full", 0) == 0, line
        finally:
            conn.close()
        assert m.alive()
    finally:
        pub.close()
        if stopped:
            # pg_start is idempotent enough: a running server makes it fail,
            # which is harmless here; make sure later tests have a database.
            try:
                services.pg_connect().close()
            except Exception:
                services.pg_start()


def test_sigterm_drains_and_exits_zero(mcsd, add_device, mqtt_client, db_count):
    """SIGTERM with 500 accepted readings still waiting in a slow batch
    (BATCH_MAX_MS 10 s): mcsd stores them before exiting, and exits 0 (with
    ASan: no leak reports)."""
    sns = [add_device() for _ in range(5)]
    m = mcsd(BATCH_MAX_MS=10000, BATCH_MAX_ROWS=100000)
    pub = mqtt_client()
    pub.publish_many([(t, p) for _, t, p in make_msgs(sns, 100)])
    m.wait_metric("accepted", lambda v: v >= 500, timeout=20)
    t0 = time.monotonic()
    m.stop()
    n = sum(db_count(sn) for sn in sns)
    print(f"sigterm: accepted=500 stored_at_exit={n} exit_after={time.monotonic() - t0:.2f}s")
    assert n == 500, f"{500 - n} accepted readings not stored by the SIGTERM drain"


def test_redis_outage_does_not_stop_storage(mcsd, services, add_device, mqtt_pub, wait_db,
                                            rds):
    """Redis is a cache: while it is down readings are still stored, and
    when it returns metrics and live keys come back."""
    sn = add_device()
    m = mcsd()
    now = int(time.time())
    mqtt_pub.reading(sn, ts=now - 100, seq=0)
    wait_db("SELECT count(*) FROM sensor_data WHERE sn = %s", (sn,), pred=lambda r: r[0][0] == 1)
    stopped = False
    try:
        services.redis_stop()
        stopped = True
        for seq in range(1, 21):
            mqtt_pub.reading(sn, ts=now - 100 + seq, seq=seq)
        wait_db("SELECT count(*) FROM sensor_data WHERE sn = %s", (sn,),
                pred=lambda r: r[0][0] == 21, desc="20 readings stored with Redis down")
    finally:
        if stopped:
            services.redis_start()
    m.wait_metric("redis_up", lambda v: v == 1, timeout=20, desc="metrics back with redis_up 1")
    # The device keeps reporting: its live keys must come back at its next
    # reading (Redis lost them all in the restart; on reconnecting mcsd
    # forgets its write-interval bookkeeping, see registry_forget_keys).
    seq = 100
    t0 = time.monotonic()

    def live():
        nonlocal seq
        seq += 1
        mqtt_pub.reading(sn, ts=now - 150 + seq, seq=seq)
        time.sleep(0.5)
        raw = rds.get(f"realtime:{sn}")
        return raw and json.loads(raw)["seq"] >= 101 and rds.exists(f"online:{sn}")
    wait_until(live, 5, 0, desc=f"realtime:{sn} and online:{sn} back after Redis returned",
               detail=lambda: f"realtime={rds.get(f'realtime:{sn}')} "
                              f"online={rds.get(f'online:{sn}')} last seq={seq}")
    print(f"redis-outage: online:{sn} back {time.monotonic() - t0:.1f}s after Redis returned")
    assert m.alive()


def test_broker_restart_resumes_ingest(mcsd, services, add_device, mqtt_client, wait_db):
    """Mosquitto restarts: mcsd reconnects by itself and ingests again."""
    sn = add_device()
    m = mcsd()
    stopped = False
    try:
        services.mqtt_stop()
        stopped = True
        m.wait_metric("mqtt_connected", lambda v: v == 0, timeout=10)
    finally:
        if stopped:
            services.mqtt_start()
    m.wait_metric("mqtt_connected", lambda v: v == 1, timeout=20,
                  desc="mcsd reconnected to the broker")
    pub = mqtt_client()
    pub.reading(sn, seq=1)
    wait_db("SELECT count(*) FROM sensor_data WHERE sn = %s", (sn,), pred=lambda r: r[0][0] == 1,
            timeout=10)


@pytest.mark.parametrize("qos", QOS)
def test_spool_bound_with_database_down(mcsd, services, qos):
    """SPOOL_MAX_MB bounds what waits on disk while PostgreSQL is down. Past
    it mcsd refuses readings (counted as spool_full) without acknowledging
    them: it drops its broker connection before their PUBACK leaves, so they
    stay queued at the broker (issue #6). When the database returns, every
    published reading is stored, none lost."""
    conn = services.pg_connect()
    sns = add_devices(conn, 40, "F")
    conn.close()
    m = mcsd(SPOOL_MAX_MB=1)
    msgs = make_msgs(sns, 500)  # 20000 readings, well over 1 MiB of journal
    pub = Publisher(services["MQTT_HOST"], services["MQTT_PORT"])
    stopped = False
    try:
        services.pg_stop()
        stopped = True
        pub.publish_many([(t, p) for _, t, p in msgs], qos=qos, timeout=120)
        m.wait_metric("rej_spool_full", lambda v: v > 0, timeout=60)
        m.wait_metric("db_up", lambda v: v == 0, timeout=10)
        m.wait_metrics_refresh()
        during = m.metrics()
    finally:
        pub.close()
        if stopped:
            services.pg_start()
    m.wait_metric("db_up", lambda v: v == 1, timeout=30)
    conn = services.pg_connect()
    try:
        final = wait_quiet(conn, sns, len(msgs), timeout=120, quiet_s=10)
        m.wait_metrics_refresh()
        after = m.metrics()
        line = report("spool-full", qos=qos, published=len(msgs),
                      accepted_during=during["accepted"], rej_spool_full=during["rej_spool_full"],
                      unacked_drops=during.get("unacked_drops"),
                      spool_bytes_peak=during["spool_bytes"], stored=final,
                      spool_lost=after.get("spool_lost"))
        assert during["rej_spool_full"] > 0, line
        assert during["unacked_drops"] > 0, line
        assert during["spool_bytes"] <= 1.1 * 1024 * 1024, line
        assert during["accepted"] < len(msgs), line
        assert after.get("spool_lost", 0) == 0, line
        check_exactly_once(conn, sns, [k for (k, _, _) in msgs], line)
    finally:
        conn.close()
    assert m.alive()


def test_db_up_reflects_an_idle_outage(mcsd, services):
    """db_up (what health reports, R-API-8) turns 0 when PostgreSQL goes away
    even while no readings arrive, and back to 1 when it returns."""
    m = mcsd()
    m.wait_metric("db_up", lambda v: v == 1, timeout=5)
    stopped = False
    try:
        services.pg_stop()
        stopped = True
        m.wait_metric("db_up", lambda v: v == 0, timeout=5,
                      desc="db_up = 0 within 5 s of an outage with no traffic")
    finally:
        if stopped:
            services.pg_start()
    m.wait_metric("db_up", lambda v: v == 1, timeout=30)


@pytest.mark.parametrize("qos", QOS)
def test_decommission_hands_queue_over_and_leaves_group(mcsd, services, pg, mqtt_client, qos):
    """A stopped instance keeps its persistent session in the share group, so
    the broker queues it a share of the messages, QoS 0 telemetry included
    (nothing is lost across a restart, no share silently dropped). `mcsd --decommission` with its INSTANCE_ID stores that queue and
    ends the session: afterwards the remaining instance gets everything."""
    sns = add_devices(pg, 20, "D")
    group = "g" + secrets.token_hex(4)
    a = mcsd(MQTT_SHARE_GROUP=group)
    b = mcsd(MQTT_SHARE_GROUP=group)
    b.stop()
    msgs = make_msgs(sns, 20)  # 400 readings
    pub = mqtt_client()
    first, second = msgs[:200], msgs[200:]
    infos = [pub.publish(t, p, qos=qos, wait=False) for (_, t, p) in first]
    for info in infos:
        info.wait_for_publish(30)
    # Some of the first 200 wait at the broker for the stopped instance.
    held = wait_quiet(pg, sns, 200, timeout=15, quiet_s=2)
    assert held < 200, f"expected the stopped instance to hold a share, stored {held}/200"
    d = mcsd(MQTT_SHARE_GROUP=group, INSTANCE_ID=b.instance_id, SPOOL_DIR=b.env["SPOOL_DIR"],
             args=("--decommission",))
    d.proc.wait(30)
    assert d.proc.returncode == 0, d.log_tail()
    assert "leaving the group" in d.log_text()
    assert wait_quiet(pg, sns, 200, timeout=15) == 200
    stored_a_before = a.metric("stored")
    infos = [pub.publish(t, p, qos=qos, wait=False) for (_, t, p) in second]
    for info in infos:
        info.wait_for_publish(30)
    final = wait_quiet(pg, sns, 400, timeout=20)
    a.wait_metrics_refresh()
    line = report("decommission", held_while_stopped=200 - held, stored=final,
                  a_after=a.metric("stored") - stored_a_before)
    assert final == 400, line
    assert a.metric("stored") - stored_a_before == 200, line
    check_exactly_once(pg, sns, [k for (k, _, _) in msgs], line)
