"""The alarm engine's decisions (issue #15): a batch's readings and its alarm
decisions commit together or not at all (a failed evaluation retries the
batch), two instances deciding crossing devices do not deadlock, OVER_RANGE
is debounced with a hysteresis band, a rise to level 2 after a level-1
acknowledgement sounds again (channels and the WebSocket feed of mcs-api),
and a cleared gas alarm sends one "已恢复" message per paged channel (a
per-channel switch). Everything over MQTT into real mcsd processes, ground
truth read from PostgreSQL, capture servers and mcs-api's WebSocket."""
import json
import time

import pytest

from alarmhelpers import alarms, outbox, reset_alarm_config, set_config, set_limits
from apihelpers import api  # noqa: F401 (a fixture)
from mcshelpers import wait_until
from test_alarm import hook, send  # noqa: F401 (hook is a fixture)
from test_api_ws import recv_until, ws_open

EVENT_TPL = '{"sn":"{sn}","t":"{type}","e":"{event}","l":{level},"v":"{val}"}'


@pytest.fixture
def sql_fixture(pg):
    """sql_fixture(create, drop): runs create now and drop at teardown (test
    triggers on the real tables, limited to the test's own devices)."""
    drops = []

    def make(create, drop):
        drops.append(drop)
        with pg.cursor() as cur:
            cur.execute(create)
    yield make
    with pg.cursor() as cur:
        for d in reversed(drops):
            cur.execute(d)


def two_level_device(pg, add_device, hook):
    """A fresh alarm config with a webhook capture (EVENT_TPL) and a device
    with limits 100 (level 1) and 200 (level 2): (capture, sn)."""
    reset_alarm_config(pg)
    cap = hook("webhook")
    set_config(pg, "alarm.channel.webhook", {"enabled": True, "url": cap.url,
                                             "template": EVENT_TPL})
    sn = add_device(high_limit=100)
    set_limits(pg, sn, high_limit2=200)
    return cap, sn


def readings(pg, sn):
    with pg.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT seq) FROM sensor_data WHERE sn = %s", (sn,))
        return cur.fetchone()


def deadlocks(pg):
    with pg.cursor() as cur:
        cur.execute("SELECT pg_stat_force_next_flush()")
        cur.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cur.fetchone()[0]


def crossing_setup(pg, add_device, mcsd, sql_fixture, when, cond):
    """Three pairs of fresh devices, a trigger `when` (e.g. "BEFORE INSERT ON
    alarm_logs") that sleeps 0.4 s per row of these devices where cond
    holds, and two instances sharing one subscription: (pairs, sns,
    instances)."""
    reset_alarm_config(pg)
    pairs = [(add_device(high_limit=100), add_device(high_limit=100)) for _ in range(3)]
    sns = [sn for p in pairs for sn in p]
    fn = "t_slow_" + sns[0].lower()
    table = when.split()[-1]
    sql_fixture(
        f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF NEW.sn = ANY(ARRAY{sns!r}) AND {cond} THEN PERFORM pg_sleep(0.4); END IF;"
        f" RETURN NEW; END $$;"
        f" CREATE TRIGGER {fn} {when} FOR EACH ROW EXECUTE FUNCTION {fn}()",
        f"DROP TRIGGER IF EXISTS {fn} ON {table}; DROP FUNCTION IF EXISTS {fn}()")
    group = "gx" + sns[0]
    inst = (mcsd(MQTT_SHARE_GROUP=group, BATCH_MAX_MS=300),
            mcsd(MQTT_SHARE_GROUP=group, BATCH_MAX_MS=300))
    time.sleep(1.0)
    return pairs, sns, inst


def test_failed_evaluation_retries_the_batch(mcsd, pg, add_device, mqtt_pub, wait_db,
                                             sql_fixture):
    """The first INSERT of this device's alarm fails (a trigger raising once,
    as a deadlock or lock timeout would): the batch is rolled back and
    retried, so the gas spike still raises its alarm and each reading is
    stored exactly once."""
    reset_alarm_config(pg)
    sn = add_device(high_limit=100)
    fn = "t_fail_once_" + sn.lower()
    sql_fixture(
        f"CREATE SEQUENCE {fn}_seq;"
        f" CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF NEW.sn = '{sn}' AND nextval('{fn}_seq') = 1 THEN"
        f" RAISE EXCEPTION 'injected evaluation failure' USING ERRCODE = '55P03'; END IF;"
        f" RETURN NEW; END $$;"
        f" CREATE TRIGGER {fn} BEFORE INSERT ON alarm_logs FOR EACH ROW EXECUTE FUNCTION {fn}()",
        f"DROP TRIGGER IF EXISTS {fn} ON alarm_logs; DROP FUNCTION IF EXISTS {fn}();"
        f" DROP SEQUENCE IF EXISTS {fn}_seq")
    m = mcsd()
    send(mqtt_pub, sn, 50, 1)
    send(mqtt_pub, sn, 150, 2)  # the spike: its batch's first evaluation fails
    send(mqtt_pub, sn, 60, 3)
    send(mqtt_pub, sn, 160, 4)  # a new episode (60 cleared the first)
    rows = wait_db("SELECT count, peak_value, cleared_at IS NULL FROM alarm_logs WHERE sn = %s"
                   " ORDER BY id", (sn,), pred=lambda r: len(r) == 2, timeout=15,
                   desc="the spike's alarm row, cleared, and the next one")
    assert rows == [(1, 150, False), (1, 160, True)]
    wait_until(lambda: readings(pg, sn) == (4, 4), 10, desc="4 readings stored once each")
    with pg.cursor() as cur:
        cur.execute(f"SELECT last_value FROM {fn}_seq")
        assert cur.fetchone()[0] >= 2  # the failure happened, then the retry
    assert m.metric("store_retries") >= 1


def test_two_instances_crossing_devices_do_not_deadlock(mcsd, pg, add_device, mqtt_client,
                                                        wait_db, sql_fixture):
    """Two instances get the raises of devices P and Q in opposite journal
    orders (a shared subscription hands messages out in turn). Each INSERT
    of these devices' alarms is slowed down so that both transactions are
    inside their raises at once: locks taken in journal order deadlock;
    in (sn, type) order the second waits for the first. Every reading is
    counted in one alarm per device, and PostgreSQL saw no deadlock."""
    pairs, sns, (a, b) = crossing_setup(pg, add_device, mcsd, sql_fixture,
                                        "BEFORE INSERT ON alarm_logs", "TRUE")
    before = deadlocks(pg)
    pub = mqtt_client()
    seq = 1
    for p, q in pairs:
        # In turn: P -> one instance, Q -> the other, Q -> the first, P -> the other.
        for sn in (p, q, q, p):
            send(pub, sn, 150 + seq, seq)
            seq += 1
        time.sleep(2.0)
    wait_db("SELECT coalesce(sum(count), 0) FROM alarm_logs WHERE sn = ANY(%s)", (sns,),
            pred=lambda r: r[0][0] == 2 * len(sns), timeout=30, desc="every reading counted")
    with pg.cursor() as cur:
        cur.execute("SELECT sn, count(*) FROM alarm_logs WHERE sn = ANY(%s) GROUP BY sn", (sns,))
        assert sorted(cur.fetchall()) == sorted((sn, 1) for sn in sns)
    for sn in sns:
        assert readings(pg, sn) == (2, 2)
    time.sleep(1.0)
    assert deadlocks(pg) - before == 0
    for h in (a, b):
        assert not [ln for ln in h.log_lines() if "40P01" in str(ln.get("error", ""))]


def test_two_instances_crossing_status_updates_do_not_deadlock(mcsd, pg, add_device,
                                                               mqtt_client, wait_db,
                                                               sql_fixture):
    """Status messages (offline) of P and Q reach two instances in opposite
    orders; each UPDATE of these devices' rows is slowed down so that both
    batch transactions hold one row and want the other. In journal order
    that deadlocks (one batch rolled back and retried); in sn order it
    cannot: no deadlock, both devices offline, one OFFLINE alarm each
    counting both messages."""
    pairs, sns, _ = crossing_setup(pg, add_device, mcsd, sql_fixture,
                                   "BEFORE UPDATE ON devices",
                                   "NEW.status IS DISTINCT FROM OLD.status")
    before = deadlocks(pg)
    pub = mqtt_client()
    for p, q in pairs:
        for sn in (p, q, q, p):
            pub.publish(f"mcs/{sn}/status",
                        json.dumps({"status": "offline", "ts": int(time.time())}), qos=1)
        time.sleep(2.0)
    wait_db("SELECT coalesce(sum(count), 0) FROM alarm_logs WHERE sn = ANY(%s)"
            " AND alarm_type = 'OFFLINE'", (sns,), pred=lambda r: r[0][0] == 2 * len(sns),
            timeout=30, desc="every status message counted")
    with pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM devices WHERE sn = ANY(%s) AND status = 'offline'",
                    (sns,))
        assert cur.fetchone()[0] == len(sns)
    time.sleep(1.0)
    assert deadlocks(pg) - before == 0


def test_over_range_hovering_debounced_with_hysteresis(mcsd, pg, add_device, mqtt_pub, wait_db,
                                                       hook):
    """A sensor hovering at its range maximum (1000): one OVER_RANGE alarm,
    one notification; it clears only below 1000 - 2 % (980), and then the
    channel hears "已恢复" once."""
    reset_alarm_config(pg)
    cap = hook("webhook")
    set_config(pg, "alarm.channel.webhook", {"enabled": True, "url": cap.url,
                                             "template": EVENT_TPL})
    sn = add_device(range_max=1000)
    mcsd()
    seq = 0
    for v in (1001, 999, 1003, 995, 1002, 990, 1005, 985):
        seq += 1
        send(mqtt_pub, sn, v, seq)
        time.sleep(0.15)  # one reading per batch: every cycle decided on its own
    rows = wait_db("SELECT count, cleared_at IS NULL FROM alarm_logs WHERE sn = %s"
                   " AND alarm_type = 'OVER_RANGE'", (sn,), pred=lambda r: r and r[0][0] == 4,
                   desc="one alarm counting the 4 readings over range")
    assert rows == [(4, True)]
    wait_until(lambda: cap.count() >= 1, 10, desc="the OVER_RANGE message")
    seq += 1
    send(mqtt_pub, sn, 970, seq)  # beyond the band: cleared
    wait_db("SELECT 1 FROM alarm_logs WHERE sn = %s AND cleared_at IS NOT NULL", (sn,),
            desc="cleared below the band")
    wait_until(lambda: cap.count() >= 2, 10, desc="the recovery message")
    time.sleep(1.0)
    got = [(r["body"]["t"], r["body"]["e"]) for r in cap.snapshot()]
    assert got == [("OVER_RANGE", "raise"), ("OVER_RANGE", "clear")]
    assert len(alarms(pg, sn)) == 1


def test_level2_after_ack_sounds_again(mcsd, pg, add_device, mqtt_pub, wait_db, hook, api):
    """Level 1 is raised and acknowledged; the reading then rises past level
    2: the alarm is unacknowledged again (the level-1 ack kept in ack1_*),
    the WebSocket feed of mcs-api carries it as active_unack at level 2, and
    the channel is notified at once."""
    cap, sn = two_level_device(pg, add_device, hook)
    mcsd()
    send(mqtt_pub, sn, 150, 1)
    wait_until(lambda: cap.count() >= 1, 10, desc="level-1 message")
    aid = alarms(pg, sn)[0]["id"]
    r = api.post(f"/api/alarms/{aid}/ack", api.admin_token, json={"note": "已知"})
    assert r.status_code == 200, r.text
    assert alarms(pg, sn)[0]["state"] == "active_ack"
    ws = ws_open(api, api.admin_token)
    try:
        send(mqtt_pub, sn, 250, 2)
        f, _ = recv_until(ws, lambda f: f["type"] == "alarm" and f["data"]["id"] == aid
                          and f["data"]["level"] == 2, 10)
        assert f["data"]["state"] == "active_unack" and f["data"]["ack_by"] is None
    finally:
        ws.close()
    row = alarms(pg, sn)[0]
    assert (row["state"], row["level"], row["ack_at"], row["ack1_by"], row["ack1_note"]) == \
        ("active_unack", 2, None, api.admin, "已知")
    wait_until(lambda: cap.count() >= 2, 10, desc="level-2 message")
    bodies = [(b["body"]["e"], b["body"]["l"]) for b in cap.snapshot()]
    assert bodies == [("raise", 1), ("level2", 2)]
    # The level-2 alarm can be acknowledged in its turn.
    r = api.post(f"/api/alarms/{aid}/ack", api.admin_token, json={"note": "二级已处理"})
    assert r.status_code == 200, r.text
    assert alarms(pg, sn)[0]["state"] == "active_ack"


@pytest.mark.parametrize("recovery", [True, False])
def test_recovery_message_once_per_channel(mcsd, pg, add_device, mqtt_pub, wait_db, hook,
                                           recovery):
    """A cleared gas alarm sends "已恢复" once on each channel that was paged,
    from the outbox row written with the clear; the channel's "recovery"
    switch off sends none."""
    reset_alarm_config(pg)
    cap = hook("webhook")
    cfg = {"enabled": True, "url": cap.url}
    if not recovery:
        cfg["recovery"] = False
    set_config(pg, "alarm.channel.webhook", cfg)
    sn = add_device(name="3号探头", high_limit=100)
    mcsd()
    send(mqtt_pub, sn, 150, 1)
    wait_until(lambda: cap.count() >= 1, 10, desc="the raise message")
    send(mqtt_pub, sn, 90, 2)  # below 100 - 2: cleared
    wait_db("SELECT 1 FROM alarm_logs WHERE sn = %s AND cleared_at IS NOT NULL", (sn,),
            desc="cleared")
    aid = alarms(pg, sn)[0]["id"]
    if recovery:
        wait_until(lambda: cap.count() >= 2, 10, desc="the recovery message")
    time.sleep(1.5)
    reqs = cap.snapshot()
    assert len(reqs) == (2 if recovery else 1), [r["body"] for r in reqs]
    evs = [(o["event"], o["status"]) for o in outbox(pg, aid)]
    if recovery:
        text = reqs[1]["body"]["text"]
        assert "已恢复" in text and "3号探头" in text and "90" in text, text
        assert evs == [("raise", "sent"), ("clear", "sent")]
    else:
        assert evs == [("raise", "sent")]


def test_recovery_switch_in_the_api(api, pg):
    """The per-channel "recovery" switch through PUT/GET /api/config/alarm:
    default on, stored as the channel's "recovery", anything but a boolean
    refused with 400 / 50001."""
    reset_alarm_config(pg)  # no channel stored: the default shows
    tok = api.admin_token
    r = api.put("/api/config/alarm", tok, json={"webhook": {"platform": "custom",
                                                            "url": "http://127.0.0.1:9/x"}})
    assert r.status_code == 200, r.text
    got = api.get("/api/config/alarm", tok).json()
    assert got["webhook"]["recovery"] is True and got["email"]["recovery"] is True
    assert got["sms"]["recovery"] is True
    for sec, body in (("webhook", {"platform": "custom", "recovery": False}),
                      ("email", {"recovery": False}), ("sms", {"recovery": False})):
        r = api.put("/api/config/alarm", tok, json={sec: body})
        assert r.status_code == 200, r.text
        assert api.get("/api/config/alarm", tok).json()[sec]["recovery"] is False
    with pg.cursor() as cur:
        cur.execute("SELECT key, value->'recovery' FROM system_config WHERE key IN"
                    " ('alarm.channel.webhook', 'alarm.channel.email', 'alarm.channel.sms')")
        assert sorted(cur.fetchall()) == [("alarm.channel.email", False),
                                          ("alarm.channel.sms", False),
                                          ("alarm.channel.webhook", False)]
    for bad in ({"webhook": {"platform": "custom", "recovery": "no"}}, {"sms": {"recovery": 0}}):
        r = api.put("/api/config/alarm", tok, json=bad)
        assert r.status_code == 400 and r.json()["code"] == 50001, r.text
    api.put("/api/config/alarm", tok, json={"webhook": {"platform": "custom", "recovery": True},
                                            "email": {"recovery": True},
                                            "sms": {"recovery": True}})


def test_level1_and_level2_in_one_batch_raise_once_at_level2(mcsd, pg, add_device, mqtt_pub,
                                                             wait_db, hook):
    """A reading over level 1 and one over level 2 in the same batch: the
    raise is merged in memory (so that the batch's raises stay one ordered
    INSERT) into one level-2 raise, notified at once with the level-2 value;
    both readings counted."""
    cap, sn = two_level_device(pg, add_device, hook)
    mcsd(BATCH_MAX_MS=500)
    send(mqtt_pub, sn, 150, 1)
    send(mqtt_pub, sn, 250, 2)
    rows = wait_db("SELECT level, count, peak_value, threshold FROM alarm_logs WHERE sn = %s",
                   (sn,), pred=lambda r: r and r[0][1] == 2, desc="one alarm, both counted")
    assert rows == [(2, 2, 250, 200)]
    wait_until(lambda: cap.count() >= 1, 10, desc="the level-2 message")
    time.sleep(1.0)
    assert [(r["body"]["e"], r["body"]["l"], r["body"]["v"]) for r in cap.snapshot()] == \
        [("raise", 2, "250")]
