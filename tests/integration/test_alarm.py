"""Alarm engine (issue #7, R-AL-1..3, R-AL-6): raise → durable outbox →
exactly one delivery, lifecycle and states, hysteresis, latching and
acknowledgement, level 1→2, events on Redis mcs:alarm, kill -9 between raise
and send, two instances. Telemetry is published at QoS 0, as devices do."""
import json
import threading
import time

import pytest

from alarmhelpers import (Capture, alarms, outbox, reset_alarm_config, set_config, set_limits,
                          text_of)
from mcshelpers import wait_until


@pytest.fixture
def hook():
    caps = []

    def make(kind="webhook", **kw):
        c = Capture(kind, **kw)
        caps.append(c)
        return c
    yield make
    for c in caps:
        c.close()


def send(pub, sn, ppm, seq, **kw):
    """One QoS 0 reading whose ppm equals v_raw (calibration k=1, b=0)."""
    pub.reading(sn, qos=0, seq=seq, v_raw=float(ppm), temp=25.0, **kw)


def wait_alarm(wait_db, sn, pred, desc, timeout=10):
    return wait_db("SELECT id, state, count, level, peak_value, last_value, cleared_at IS NOT NULL"
                   " FROM alarm_logs WHERE sn = %s AND alarm_type = 'HIGH' ORDER BY id", (sn,),
                   pred=pred, timeout=timeout, desc=desc)


def test_raise_notify_once_update_clear(mcsd, pg, add_device, mqtt_pub, wait_db, hook):
    reset_alarm_config(pg)
    cap = hook("webhook")
    set_config(pg, "alarm.channel.webhook", {"enabled": True, "url": cap.url})
    sn = add_device(name="1号探头", location="车间A", high_limit=100)
    mcsd()
    send(mqtt_pub, sn, 50, 1)
    send(mqtt_pub, sn, 150, 2)      # raise
    send(mqtt_pub, sn, 170, 3)      # update: peak 170
    send(mqtt_pub, sn, 99, 4)       # inside the 2 % band: still active
    send(mqtt_pub, sn, 160, 5)      # update
    wait_until(lambda: cap.count() >= 1, 10, desc="webhook delivered")
    rows = wait_alarm(wait_db, sn, lambda r: r and r[0][2] == 3, "count 3")
    assert len(rows) == 1
    aid, state, count, level, peak, last, cleared = rows[0]
    assert (state, level, peak, last, cleared) == ("active_unack", 1, 170, 160, False)
    send(mqtt_pub, sn, 97, 6)       # below 100 - 2: cleared
    rows = wait_alarm(wait_db, sn, lambda r: r and r[0][6], "cleared")
    assert rows[0][1] == "cleared_unack"  # a gas alarm latches until acknowledged
    # The clear sends one recovery message (issue #15) on the paged channel.
    wait_until(lambda: cap.count() >= 2, 10, desc="recovery delivered")
    time.sleep(1.0)
    reqs = cap.snapshot()
    assert len(reqs) == 2, reqs
    b = reqs[0]["body"]
    assert b["sn"] == sn and b["type"] == "HIGH" and b["level"] == 1 and b["name"] == "1号探头"
    assert b["val"] == "150" and b["threshold"] == "100"
    assert "浓度高报" in b["text"] and "车间A" in b["text"]
    assert reqs[1]["body"]["event"] == "clear" and "已恢复" in reqs[1]["body"]["text"]
    ob = outbox(pg, aid)
    assert [(o["channel"], o["status"], o["event"]) for o in ob] == [
        ("webhook", "sent", "raise"), ("webhook", "sent", "clear")]
    wait_db("SELECT channels, notified FROM alarm_logs WHERE id = %s", (aid,),
            pred=lambda r: r[0] == ("webhook:sent", True), desc="alarm_logs.channels")
    with pg.cursor() as cur:
        cur.execute("SELECT ok, http_status FROM alarm_attempts WHERE outbox_id = %s",
                    (ob[0]["id"],))
        assert cur.fetchall() == [(True, 200)]
    # acknowledgement: one statement, the first ack stays
    with pg.cursor() as cur:
        cur.execute("SELECT state, ack_by FROM mcs_alarm_ack(%s, 'alice', '已处理')", (aid,))
        assert cur.fetchone() == ("cleared_ack", "alice")
        cur.execute("SELECT state, ack_by, ack_note FROM mcs_alarm_ack(%s, 'bob', 'x')", (aid,))
        assert cur.fetchone() == ("cleared_ack", "alice", "已处理")


def test_level2_notifies_at_once_and_events(mcsd, pg, add_device, mqtt_pub, wait_db, hook, rds):
    reset_alarm_config(pg)
    cap = hook("webhook")
    set_config(pg, "alarm.channel.webhook", {"enabled": True, "url": cap.url,
                                             "template": '{"t":"{type}","l":{level},"v":"{val}"}'})
    sn = add_device(high_limit=100)
    set_limits(pg, sn, high_limit2=200)
    ps = rds.pubsub()
    ps.subscribe("mcs:alarm")
    events = []
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            m = ps.get_message(timeout=0.2)
            if m and m["type"] == "message":
                e = json.loads(m["data"])
                if e["sn"] == sn:
                    events.append((time.monotonic(), e))
    th = threading.Thread(target=listen, daemon=True)
    th.start()
    mcsd()
    time.sleep(2.5)  # the relay takes the lock within its first round
    t0 = time.monotonic()
    send(mqtt_pub, sn, 150, 1)
    wait_until(lambda: cap.count() >= 1, 10, desc="level-1 message")
    send(mqtt_pub, sn, 250, 2)  # level 2 inside the debounce window: sent at once
    wait_until(lambda: cap.count() >= 2, 10, desc="level-2 message")
    bodies = [r["body"] for r in cap.snapshot()]
    assert bodies == [{"t": "HIGH", "l": 1, "v": "150"}, {"t": "HIGH", "l": 2, "v": "250"}]
    rows = alarms(pg, sn)
    assert len(rows) == 1 and rows[0]["level"] == 2 and rows[0]["threshold"] == 200
    wait_until(lambda: any(e["event"] == "raised" for _, e in events), 5, desc="raised event")
    t_raised = next(t for t, e in events if e["event"] == "raised")
    assert t_raised - t0 < 3
    with pg.cursor() as cur:
        cur.execute("SELECT * FROM mcs_alarm_ack(%s, 'op', NULL)", (rows[0]["id"],))
    wait_until(lambda: any(e["event"] == "acked" for _, e in events), 5, desc="acked event")
    kinds = [e["event"] for _, e in events]
    assert kinds[0] == "raised" and "updated" in kinds
    ev = next(e for _, e in events if e["event"] == "acked")
    assert ev["state"] == "active_ack" and ev["level"] == 2 and ev["alarm_type"] == "HIGH"
    stop.set()
    th.join(5)
    ps.close()


def test_kill9_between_raise_and_send(mcsd, pg, add_device, mqtt_pub, wait_db, hook):
    """The channel's poll is slowed so that the alarm and its outbox row are
    committed and mcsd is killed before the notifier looks: after restart,
    exactly one delivery, and the replayed journal raises nothing twice."""
    reset_alarm_config(pg)
    cap = hook("webhook")
    set_config(pg, "alarm.channel.webhook", {"enabled": True, "url": cap.url})
    sn = add_device(high_limit=100)
    m = mcsd(NOTIFY_POLL_MS=10000, INSTANCE_ID="it-k9-" + sn)
    time.sleep(1.5)  # the worker has had its first (empty) look
    for i in range(1, 6):
        send(mqtt_pub, sn, 150 + i, i)
    rows = wait_db("SELECT o.status FROM alarm_outbox o JOIN alarm_logs a ON a.id = o.alarm_id"
                   " WHERE a.sn = %s", (sn,), desc="outbox row committed")
    assert rows == [("pending",)]
    m.kill()
    assert cap.count() == 0
    mcsd(INSTANCE_ID="it-k9-" + sn)
    wait_until(lambda: cap.count() >= 1, 10, desc="delivered after restart")
    send(mqtt_pub, sn, 160, 7)
    wait_db("SELECT count FROM alarm_logs WHERE sn = %s", (sn,),
            pred=lambda r: r and r[0][0] >= 6, desc="repeat counted after restart")
    time.sleep(1.0)
    assert cap.count() == 1
    rows = alarms(pg, sn)
    assert len(rows) == 1
    assert [o["status"] for o in outbox(pg, rows[0]["id"])] == ["sent"]


def test_two_instances_one_alarm_one_message(mcsd, pg, add_device, mqtt_client, wait_db, hook):
    reset_alarm_config(pg, digest={"threshold": 1000})
    cap = hook("webhook")
    set_config(pg, "alarm.channel.webhook", {"enabled": True, "url": cap.url})
    sns = [add_device(high_limit=100) for _ in range(8)]
    group = "g2inst" + sns[0]
    mcsd(MQTT_SHARE_GROUP=group, BATCH_MAX_MS=5)
    mcsd(MQTT_SHARE_GROUP=group, BATCH_MAX_MS=5)
    time.sleep(1.0)
    pub = mqtt_client()
    # Both instances get a share of every device's readings.
    for seq in range(1, 21):
        for sn in sns:
            send(pub, sn, 150 + seq, seq)
    wait_db("SELECT sum(count) FROM alarm_logs WHERE sn = ANY(%s)", (sns,),
            pred=lambda r: r[0][0] == 20 * len(sns), timeout=15, desc="every reading counted")
    with pg.cursor() as cur:
        cur.execute("SELECT sn, count(*), count(DISTINCT instance) FROM alarm_logs"
                    " WHERE sn = ANY(%s) GROUP BY sn", (sns,))
        got = cur.fetchall()
    assert sorted(r[0] for r in got) == sorted(sns)
    assert all(r[1] == 1 for r in got), got
    wait_until(lambda: cap.count() >= len(sns), 10, desc="one message per device")
    time.sleep(1.0)
    per = {}
    for r in cap.snapshot():
        per[r["body"]["sn"]] = per.get(r["body"]["sn"], 0) + 1
    assert per == {sn: 1 for sn in sns}


def test_limit_changes_apply_without_restart(mcsd, pg, add_device, mqtt_pub, wait_db, hook):
    """A limit edited in the database (any writer; the devices trigger
    notifies) applies to the next readings of the running engine."""
    reset_alarm_config(pg)
    sn = add_device(high_limit=100)
    mcsd()
    send(mqtt_pub, sn, 80, 1)
    wait_db("SELECT count(*) FROM sensor_data WHERE sn = %s", (sn,),
            pred=lambda r: r[0][0] == 1, desc="first reading stored")
    assert alarms(pg, sn) == []
    set_limits(pg, sn, high_limit=50, high_limit2=85)
    time.sleep(0.5)
    send(mqtt_pub, sn, 80, 2)
    rows = wait_db("SELECT level, threshold FROM alarm_logs WHERE sn = %s", (sn,),
                   desc="alarm at the new limit")
    assert rows == [(1, 50)]
    send(mqtt_pub, sn, 90, 3)
    wait_db("SELECT level, threshold FROM alarm_logs WHERE sn = %s", (sn,),
            pred=lambda r: r == [(2, 85)], desc="level 2 at the new level-2 limit")


def test_spooled_readings_replayed_after_kill9_raise_once(mcsd, services, add_device, mqtt_pub,
                                                          hook):
    """Readings over the limit arrive while PostgreSQL is down (journaled
    only), mcsd is killed, the database comes back, mcsd restarts and
    replays the journal: one alarm counting every reading, one message."""
    pg = services.pg_connect()
    reset_alarm_config(pg)
    cap = hook("webhook")
    set_config(pg, "alarm.channel.webhook", {"enabled": True, "url": cap.url})
    sn = add_device(high_limit=100)
    pg.close()
    iid = "it-replay-" + sn
    m = mcsd(INSTANCE_ID=iid)
    stopped = False
    try:
        services.pg_stop()
        stopped = True
        for i in range(1, 6):
            send(mqtt_pub, sn, 150 + i, i)
        m.wait_metric("accepted", lambda v: v >= 5, timeout=10)
        m.kill()
    finally:
        if stopped:
            services.pg_start()
    mcsd(INSTANCE_ID=iid)
    pg = services.pg_connect()
    try:
        wait_until(lambda: (lambda r: r and r[0]["count"] == 5)(alarms(pg, sn)), 20,
                   desc="replayed: one alarm counting 5 readings")
        wait_until(lambda: cap.count() == 1, 10, desc="one message")
        time.sleep(1.0)
        rows = alarms(pg, sn)
        assert len(rows) == 1 and rows[0]["peak_value"] == 155 and cap.count() == 1
        assert [o["status"] for o in outbox(pg, rows[0]["id"])] == ["sent"]
    finally:
        pg.close()
