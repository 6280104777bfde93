"""License guard on the plant's side (issue #17, R-LI-1, R-LI-5): real mcsd
and mcs-api processes with their own LICENSE_FILE. A valid license runs
green; one edited byte, a missing file or an expired license lock the API
(403 with 20001/20002) except login, health, the license and the alarm
feed; a license installed through the API takes effect without a restart;
the device limit answers 20003; and a locked mcsd stores no telemetry but
still raises and notifies a gas alarm (safety over the seed)."""
import secrets
import subprocess

import pytest

from alarmhelpers import Capture, outbox, reset_alarm_config, set_config
from apihelpers import add_user, api_launcher, error_of  # noqa: F401
from mcshelpers import REPO, build_dir, wait_until

DEMO_SK = REPO / "deploy" / "demo" / "license-vendor-demo.sk"


def issue(tmp_path, max_devices=1000, expires="2099-12-31", issued=None, sk=DEMO_SK):
    """A license file signed by sk (the demo vendor key: every test build
    trusts it) in a directory of its own; returns its path and text."""
    d = tmp_path / ("lic-" + secrets.token_hex(3))
    d.mkdir()
    args = [str(build_dir() / "mcs-license"), "issue", "--sk", str(sk), "--db",
            str(d / "vendor.db"), "--customer", "测试化工 Test Chemicals",
            "--max-devices", str(max_devices), "--expires", expires, "--out", str(d / "issued.key")]
    if issued:
        args += ["--issued", issued]
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    text = (d / "issued.key").read_text()
    return d / "license.key", text


def other_vendor_key(tmp_path):
    """A vendor key pair the product does not trust."""
    sk = tmp_path / ("other-" + secrets.token_hex(3) + ".sk")
    r = subprocess.run([str(build_dir() / "mcs-license"), "keygen", "--out", str(sk)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return sk


def users(a):
    a.admin = "ladm_" + secrets.token_hex(3)
    a.passwords = {a.admin: "admin-pass-" + secrets.token_hex(4)}
    add_user(a.env, a.admin, a.passwords[a.admin], "admin")
    a.admin_token = a.login(a.admin, a.passwords[a.admin])
    return a


def locked_answers(a, code):
    """Every call but the open ones answers 403 with code; the open ones work."""
    tok = a.admin_token
    for path in ["/api/devices", "/api/system/stats", "/api/users", "/api/config/alarm"]:
        r = a.get(path, tok)
        assert r.status_code == 403 and error_of(r)["code"] == code, (path, r.text)
    r = a.post("/api/devices", tok, json={"sn": "LIC" + secrets.token_hex(3)})
    assert r.status_code == 403 and error_of(r)["code"] == code
    for path in ["/api/system/health", "/api/system/license", "/api/alarms", "/api/auth/me",
                 "/api/config/dashboard"]:
        assert a.get(path, tok).status_code == 200, path
    assert a.login(a.admin, a.passwords[a.admin])


def test_valid_license_runs_green(api_launcher, tmp_path, pg):
    path, text = issue(tmp_path, max_devices=1234, expires="2099-12-31")
    path.write_text(text)
    a = users(api_launcher.start(LICENSE_FILE=path))
    j = a.get("/api/system/license", a.admin_token).json()
    assert (j["status"], j["code"], j["max_devices"], j["expires"]) == ("valid", None, 1234,
                                                                        "2099-12-31")
    assert j["customer"] == "测试化工 Test Chemicals"
    key = [ln for ln in text.splitlines() if ln.startswith("key: ")][0][5:]
    assert j["license_key"] == key[:8] + "-****-****" and key not in a.log_tail(400)
    with pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM devices")
        assert j["devices_in_use"] == cur.fetchone()[0]
    h = a.get("/api/system/health", a.admin_token).json()
    assert h["components"]["license"]["status"] == "valid"
    assert a.get("/api/devices", a.admin_token).status_code == 200


@pytest.mark.parametrize("case", ["edited_byte", "other_vendor", "missing", "empty", "expired"])
def test_bad_license_locks_the_api(api_launcher, tmp_path, case):
    path, text = issue(tmp_path)
    code, status = 20001, "locked"
    if case == "edited_byte":
        path.write_text(text.replace("max_devices: 1000", "max_devices: 9000"))
    elif case == "other_vendor":
        path.write_text(issue(tmp_path, sk=other_vendor_key(tmp_path))[1])
    elif case == "missing":
        status = "missing"
    elif case == "empty":
        path.write_text("")
    elif case == "expired":
        path.write_text(issue(tmp_path, expires="2020-12-31", issued="2020-01-01")[1])
        code = 20002
    a = users(api_launcher.start(LICENSE_FILE=path))
    locked_answers(a, code)
    j = a.get("/api/system/license", a.admin_token).json()
    assert (j["status"], j["code"]) == (status, code)
    reason = {"edited_byte": "altered", "other_vendor": "altered", "missing": "no license",
              "empty": "empty", "expired": "expired"}[case]
    assert reason in j["reason"]
    h = a.get("/api/system/health", a.admin_token).json()
    assert h["components"]["license"]["status"] == status and h["status"] != "healthy"


def test_upload_takes_effect_without_restart(api_launcher, tmp_path):
    path, text = issue(tmp_path)
    a = users(api_launcher.start(LICENSE_FILE=path))  # no file yet: missing
    tok = a.admin_token
    assert error_of(a.get("/api/devices", tok))["code"] == 20001
    # a forged file is refused and nothing is written
    r = a.post("/api/system/license", tok, data=text.replace("1000", "9999").encode())
    assert r.status_code == 400 and error_of(r)["code"] == 20001
    assert not path.exists()
    r = a.post("/api/system/license", tok, data=text.encode())
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "valid" and path.read_text() == text
    assert a.get("/api/devices", tok).status_code == 200
    with_audit = a.get("/api/system/logs?size=20", tok).json()["data"]
    assert any(row["action"] == "license.install" for row in with_audit)


def test_device_limit_20003(api_launcher, tmp_path, pg):
    with pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM devices")
        n = cur.fetchone()[0]
    path, text = issue(tmp_path, max_devices=n + 1)
    path.write_text(text)
    a = users(api_launcher.start(LICENSE_FILE=path))
    tok = a.admin_token
    sn1, sn2 = "LIM" + secrets.token_hex(4), "LIM" + secrets.token_hex(4)
    assert a.post("/api/devices", tok, json={"sn": sn1}).status_code == 201
    r = a.post("/api/devices", tok, json={"sn": sn2})
    assert r.status_code == 403 and error_of(r)["code"] == 20003
    with pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM devices WHERE sn = %s", (sn2,))
        assert cur.fetchone()[0] == 0
        cur.execute("DELETE FROM devices WHERE sn = %s", (sn1,))


def test_locked_worker_stores_nothing_but_raises_and_notifies(mcsd, pg, add_device, mqtt_pub,
                                                               wait_db, tmp_path):
    """Safety over the seed: no license, yet a gas reading over its limit
    gives an alarm row and a notification; the readings are not stored."""
    reset_alarm_config(pg)
    cap = Capture("webhook")
    try:
        set_config(pg, "alarm.channel.webhook", {"enabled": True, "url": cap.url})
        sn = add_device(name="锁定探头", location="车间L", high_limit=100)
        m = mcsd(LICENSE_FILE=tmp_path / "none" / "license.key")
        assert any(ln.get("module") == "license" and ln.get("state") == "missing"
                   for ln in m.log_lines())
        mqtt_pub.reading(sn, qos=0, seq=1, v_raw=50.0, temp=25.0)
        mqtt_pub.reading(sn, qos=0, seq=2, v_raw=150.0, temp=25.0)
        rows = wait_db("SELECT id, alarm_type, peak_value FROM alarm_logs WHERE sn = %s", (sn,),
                       pred=lambda r: len(r) == 1, desc="alarm raised while locked")
        assert rows[0][1] == "HIGH" and rows[0][2] == 150
        wait_until(lambda: cap.count() >= 1, 15, desc="webhook delivered while locked")
        assert cap.snapshot()[0]["body"]["sn"] == sn
        assert [o["status"] for o in outbox(pg, rows[0][0])] == ["sent"]
        m.wait_metric("unlicensed", lambda v: v >= 2)
        with pg.cursor() as cur:
            cur.execute("SELECT count(*) FROM sensor_data WHERE sn = %s", (sn,))
            assert cur.fetchone()[0] == 0
    finally:
        cap.close()


def test_worker_unlocks_when_a_license_is_installed(mcsd, pg, add_device, mqtt_pub, wait_db,
                                                   tmp_path):
    path, text = issue(tmp_path)
    sn = add_device()
    m = mcsd(LICENSE_FILE=path)
    mqtt_pub.reading(sn, qos=0, seq=1, v_raw=10.0)
    m.wait_metric("unlicensed", lambda v: v >= 1)
    path.write_text(text)  # as the CLI or the upload would, no restart
    wait_until(lambda: any(ln.get("module") == "license" and ln.get("state") == "valid"
                           for ln in m.log_lines()), 10, desc="mcsd sees the new license")
    mqtt_pub.reading(sn, qos=0, seq=2, v_raw=11.0)
    wait_db("SELECT seq FROM sensor_data WHERE sn = %s", (sn,), pred=lambda r: r == [(2,)],
            desc="stored after the unlock")
