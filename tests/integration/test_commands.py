"""test_commands.py - the life of a device command end to end (issue #20,
R-MQ-4): mcs-api records it in device_commands and sends it with its id,
the broker's PUBACK marks it delivered, the device (mcs-sim: the firmware
core) answers on mcs/{sn}/status with the id, and mcsd records the result.
A device offline at send time gets the command from its broker session when
it returns; a command nobody answers expires. Ground truth: the rows in
PostgreSQL. The services are test_sim.py's (plugin-mode broker over TLS,
this module's own run directory)."""
import json
import os
import time

import pytest

from apihelpers import ApiLauncher, add_user
from mcshelpers import new_sn, wait_until
from test_plugin import Client, dev_pass
from test_sim import db, device_sn, rows, sims, ssvc, worker_mcsd  # noqa: F401

DEADLINE_S = 3


@pytest.fixture
def api(ssvc, tmp_path):
    """mcs-api on this module's services, logged in as an admin: (api, token)."""
    env = dict(os.environ)
    env.pop("ENV_FILE", None)
    env.pop("MQTT_TLS_CAFILE", None)
    env.update(ssvc)
    env.update({"LOG_LEVEL": "INFO", "SCHED_ENABLED": "0", "API_MQTT_PASS": ssvc["WORKER_PASS"],
                "CMD_DEADLINE_S": str(DEADLINE_S)})
    env.pop("API_MQTT_USER", None)
    launcher = ApiLauncher(env, tmp_path)
    a = launcher.start()
    user = "cmd_" + new_sn("").lower()
    add_user(env, user, "command-test-password", "admin")
    tok = a.login(user, "command-test-password")
    wait_until(lambda: "connected to the broker" in a.log_tail(200), 10,
               desc="mcs-api connected to the broker", detail=lambda: a.log_tail(40))
    yield a, tok
    problems = launcher.cleanup()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def command(db, cid, sn):
    with db.cursor() as cur:
        cur.execute("SELECT state, result, reason, payload, delivered_at IS NOT NULL,"
                    " due_at IS NOT NULL FROM device_commands WHERE cmd_id = %s AND sn = %s",
                    (cid, sn))
        r = cur.fetchone()
    db.commit()
    if r is None:
        return None
    return dict(zip(("state", "result", "reason", "payload", "delivered", "due"), r))


def wait_state(db, cid, sn, state, timeout=20):
    return wait_until(lambda: (lambda c: c if c and c["state"] == state else None)(
        command(db, cid, sn)), timeout, 0.1, f"command {cid} of {sn} {state}",
        lambda: command(db, cid, sn))


def test_result_from_the_device_is_recorded(ssvc, db, device_sn, worker_mcsd, sims, api):
    a, tok = api
    prefix, sn = device_sn
    sims(prefix, "--interval", "1")
    wait_until(lambda: len(rows(db, sn)) >= 2, 20, 0.1, f"first readings of {sn} stored")
    r = a.post(f"/api/devices/{sn}/command", tok,
               json={"cmd": "calib", "k": 0.5, "b": -50, "t_comp": 0.1})
    assert r.status_code == 200, r.text
    body = r.json()
    cid = body["command_id"]
    assert body["queued"] is False and body["payload"]["id"] == str(cid)
    c = wait_state(db, cid, sn, "ok")
    assert c["result"] == "ok" and c["reason"] is None and c["delivered"], c
    assert c["payload"] == {"cmd": "calib", "k": 0.5, "b": -50, "t_comp": 0.1, "id": str(cid)}
    # An OTA whose image fails its MD5: accepted first, then the failure
    # with the device's reason, on the same command.
    r = a.post(f"/api/devices/{sn}/command", tok,
               json={"cmd": "ota", "url": "https://fw.example.com/mcs/v9.9.9.bin",
                     "md5": "0" * 32})
    assert r.status_code == 200, r.text
    ota = r.json()["command_id"]
    c = wait_state(db, ota, sn, "error")
    assert (c["result"], c["reason"]) == ("failed", "md5"), c
    # Counted: calib ok, ota ok (accepted), ota failed; none lost.
    worker_mcsd.wait_metric("cmd_results", lambda v: v >= 3)
    assert worker_mcsd.metric("cmd_results_dropped") == 0
    # The device's history through the API, newest first (§10.2 list).
    h = a.get(f"/api/devices/{sn}/commands", tok, params={"page": 1, "size": 10})
    assert h.status_code == 200, h.text
    h = h.json()
    assert (h["total"], h["page"], h["size"]) == (2, 1, 10)
    assert [(x["id"], x["cmd"], x["state"], x["result"], x["reason"]) for x in h["data"]] == [
        (ota, "ota", "error", "failed", "md5"), (cid, "calib", "ok", "ok", None)]
    assert h["data"][1]["payload"]["k"] == 0.5 and h["data"][1]["delivered_at"].endswith("Z")
    assert a.get(f"/api/devices/{new_sn()}/commands", tok).status_code == 404


def test_command_to_an_offline_device_arrives_when_it_returns(ssvc, db, device_sn,
                                                              worker_mcsd, sims, api):
    a, tok = api
    prefix, sn = device_sn
    rds = ssvc.redis()
    sim = sims(prefix, "--interval", "1")
    wait_until(lambda: len(rows(db, sn)) >= 2 and rds.exists(f"online:{sn}"), 20, 0.1,
               f"{sn} online")
    # The link dies for 15 readings; the Last Will makes the device offline.
    sim.control("offline 0 15")
    wait_until(lambda: not rds.exists(f"online:{sn}"), 15, 0.1, f"{sn} offline")
    assert sim.dev()["state"] == "offline"
    r = a.post(f"/api/devices/{sn}/command", tok, json={"cmd": "debug", "duration": 30})
    assert r.status_code == 202, r.text
    assert r.json()["queued"] is True
    cid = r.json()["command_id"]
    # Held by the broker for the device's session: delivered to the broker,
    # no deadline running while the device is away.
    c = wait_state(db, cid, sn, "delivered", 10)
    assert not c["due"], c
    time.sleep(DEADLINE_S + 1.5)  # past the deadline it would have had
    assert command(db, cid, sn)["state"] == "delivered"
    assert sim.dev()["state"] == "offline"
    # Back: the broker hands the command over, the device answers.
    c = wait_state(db, cid, sn, "ok", 40)
    assert c["result"] == "ok" and c["due"], c
    assert sim.dev()["interval_ms"] == 1000
    rds.close()


def test_unanswered_command_expires_and_an_answer_without_id_still_counts(
        ssvc, db, device_sn, worker_mcsd, api):
    a, tok = api
    _, sn = device_sn
    # A device of an older firmware: it takes commands, answers none of the
    # first kind and answers the second without an id.
    d = Client(ssvc, f"device_{sn}", dev_pass(sn, ssvc["VENDOR_SECRET"]), f"device_{sn}")
    try:
        assert d.subscribe(f"mcs/{sn}/cmd") == [1]
        d.publish(f"mcs/{sn}/status", json.dumps({"status": "online", "ts": int(time.time())}),
                  retain=True)
        rds = ssvc.redis()
        rds.set(f"online:{sn}", "1", ex=60)
        rds.close()
        r = a.post(f"/api/devices/{sn}/command", tok, json={"cmd": "reboot", "delay": 5})
        assert r.status_code == 200, r.text
        silent = r.json()["command_id"]
        payload, _ = d.expect(f"mcs/{sn}/cmd", 5)
        assert json.loads(payload) == {"cmd": "reboot", "delay": 5, "id": str(silent)}
        c = wait_state(db, silent, sn, "delivered", 5)
        assert c["due"], c
        c = wait_state(db, silent, sn, "expired", DEADLINE_S + 10)
        assert c["result"] is None, c
        r = a.post(f"/api/devices/{sn}/command", tok, json={"cmd": "debug", "duration": 60})
        assert r.status_code == 200, r.text
        answered = r.json()["command_id"]
        d.expect(f"mcs/{sn}/cmd", 5)
        d.publish(f"mcs/{sn}/status", json.dumps({"status": "online", "ts": int(time.time()),
                                                 "cmd": "debug", "result": "rejected",
                                                 "reason": "bad_args"}))
        c = wait_state(db, answered, sn, "error")
        assert (c["result"], c["reason"]) == ("rejected", "bad_args"), c
        # The expired one stays expired: the answer named another command.
        assert command(db, silent, sn)["state"] == "expired"
    finally:
        d.close()
