"""License guard (issue #17, R-LI-1..6) with real mcs-licensed, mcsd, mcs
and mcs-api processes. The plant side: a valid license runs green; one
edited byte, a missing file or an expired license lock the API (403 with
20001/20002) except login, health, the license and the alarm feed; an upload
takes effect without a restart; the device limit answers 20003; a locked
mcsd stores no telemetry but still raises and notifies a gas alarm. Online:
the token (token.json, Redis license:token), another host 20004 (kept
across a server restart, until released), revocation, a forged or replayed
answer never unlocks, 71 h without the server runs yellow with a warning
alarm, 73 h locks, a successful check unlocks, a clock turned back is
detected. The clock tests need a test build (MCS_LICENSE_TEST: the ASan
tree); svc.sh's session server knows every license issued into
LICENSE_VENDOR_DB."""
import http.server
import json
import secrets
import signal
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from alarmhelpers import Capture, outbox, reset_alarm_config, set_config
from apihelpers import add_user, api_launcher, error_of, free_port  # noqa: F401
from mcshelpers import REPO, build_dir, wait_until
from test_api_ws import recv_until, ws_open

DEMO_SK = REPO / "deploy" / "demo" / "license-vendor-demo.sk"
H = 3600


def is_test_build():
    cache = build_dir() / "CMakeCache.txt"
    return cache.exists() and "MCS_LICENSE_TEST:BOOL=ON" in cache.read_text()


needs_test_clock = pytest.mark.skipif(not is_test_build(),
                                      reason="the test clock exists in test builds only")


def issue(tmp_path, db=None, max_devices=1000, expires="2099-12-31", issued=None, sk=DEMO_SK):
    """A license file signed by sk (the demo vendor key: every test build
    trusts it), recorded in the vendor store db; returns the path a plant
    of its own would read it from (not written yet) and its text."""
    d = tmp_path / ("lic-" + secrets.token_hex(3))
    d.mkdir()
    args = [str(build_dir() / "mcs-license"), "issue", "--sk", str(sk), "--db",
            str(db or d / "vendor.db"), "--customer", "测试化工 Test Chemicals",
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


def plant(tmp_path, text, **env):
    """Configuration of a plant of its own: license directory, machine id."""
    d = tmp_path / ("plant-" + secrets.token_hex(3))
    d.mkdir()
    (d / "license.key").write_text(text)
    mid = d / "machine-id"
    mid.write_text(secrets.token_hex(16) + "\n")
    e = {"LICENSE_FILE": str(d / "license.key"), "MACHINE_ID_FILE": str(mid)}
    e.update({k: str(v) for k, v in env.items()})
    return e


def check(base_env, penv):
    """`mcs job run license` for that plant: (exit status, output)."""
    r = subprocess.run([str(build_dir() / "mcs"), "job", "run", "license"],
                       env=dict(base_env, **penv), capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def last_run(pg):
    with pg.cursor() as cur:
        cur.execute("SELECT outcome, error, detail FROM job_runs WHERE job = 'license' "
                    "ORDER BY id DESC LIMIT 1")
        return cur.fetchone()


def vendor(services, *args):
    r = subprocess.run([str(build_dir() / "mcs-license"), *args, "--db",
                        services["LICENSE_VENDOR_DB"]], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def key_of(text):
    return [ln for ln in text.splitlines() if ln.startswith("key: ")][0][5:]


class Licd:
    """An mcs-licensed of the test's own (its store, optionally a test clock)."""

    def __init__(self, services, tmp_path, clock=None, rate=("6000", "600")):
        self.services, self.db = services, tmp_path / ("licd-" + secrets.token_hex(3) + ".db")
        self.clock, self.port, self.proc, self.rate = clock, free_port(), None, rate
        self.log = tmp_path / f"licd-{self.port}.log"
        self.url = f"https://localhost:{self.port}/api/verify"

    def start(self):
        tls = Path(self.services["RUN_DIR"]) / "tls"
        env = {"PATH": "/usr/bin:/bin"}
        if self.clock:
            env["MCS_TEST_CLOCK_FILE"] = str(self.clock)
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen(
                [str(build_dir() / "mcs-licensed"), "--db", str(self.db), "--sk", str(DEMO_SK),
                 "--cert", str(tls / "server.crt"), "--key", str(tls / "server.key"),
                 "--port", str(self.port), "--rate-per-min", self.rate[0], "--burst", self.rate[1]],
                env=env, stdout=f, stderr=subprocess.STDOUT)
        wait_until(lambda: b'"msg":"ready"' in self.log.read_bytes(), 10,
                   desc="mcs-licensed ready")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(15) == 0, self.log.read_text()[-2000:]


@pytest.fixture
def licd(services, tmp_path):
    made = []

    def make(clock=None, **kw):
        d = Licd(services, tmp_path, clock, **kw)
        made.append(d)
        d.start()
        return d
    yield make
    for d in made:
        d.stop()


class FakeServer:
    """A server on the plant's network that answers whatever it is told to,
    with the run's own certificate (as a DNS entry away would)."""

    def __init__(self, services):
        body = self.body = {"text": b"ok"}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Length", str(len(body["text"])))
                self.end_headers()
                self.wfile.write(body["text"])

            def log_message(self, *a):
                pass
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        tls = Path(services["RUN_DIR"]) / "tls"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls / "server.crt", tls / "server.key")
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.url = f"https://localhost:{self.srv.server_address[1]}/api/verify"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def clear_license_alarms(pg):
    with pg.cursor() as cur:
        cur.execute("UPDATE alarm_logs SET cleared_at = now(), state = 'cleared' WHERE sn = 'SYSTEM'"
                    " AND alarm_type IN ('LICENSE_GRACE', 'LICENSE_FAILED') AND cleared_at IS NULL")


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


def test_valid_license_runs_green(api_launcher, tmp_path, pg, services, base_env):
    _, text = issue(tmp_path, db=services["LICENSE_VENDOR_DB"], max_devices=1234)
    penv = plant(tmp_path, text)
    assert check(base_env, penv)[0] == 0
    a = users(api_launcher.start(**penv))
    j = a.get("/api/system/license", a.admin_token).json()
    assert (j["status"], j["code"], j["max_devices"], j["expires"]) == ("valid", None, 1234,
                                                                        "2099-12-31")
    assert j["customer"] == "测试化工 Test Chemicals"
    key = key_of(text)
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
    _, text = issue(tmp_path)
    # a fresh install: not even the license directory exists yet
    path = tmp_path / ("new-" + secrets.token_hex(3)) / "license.key"
    a = users(api_launcher.start(LICENSE_FILE=path))  # no file yet: missing
    tok = a.admin_token
    assert error_of(a.get("/api/devices", tok))["code"] == 20001
    # a forged file is refused and nothing is written
    r = a.post("/api/system/license", tok, data=text.replace("1000", "9999").encode())
    assert r.status_code == 400 and error_of(r)["code"] == 20001
    assert not path.exists()
    r = a.post("/api/system/license", tok, data=text.encode())
    assert r.status_code == 200, r.text
    # Running, in grace until the first online check (mcsd's, at once).
    assert r.json()["status"] == "grace" and path.read_text() == text
    assert a.get("/api/devices", tok).status_code == 200
    with_audit = a.get("/api/system/logs?size=20", tok).json()["data"]
    assert any(row["action"] == "license.install" for row in with_audit)


def test_cli_installs_a_license(api_launcher, tmp_path, base_env, pg):
    """`mcs license install FILE` verifies and installs as the upload does:
    a forged file is refused (20001) and nothing is written; a good one
    takes effect in the running mcs-api without a restart, audited."""
    _, text = issue(tmp_path)
    path = tmp_path / ("cli-" + secrets.token_hex(3)) / "license.key"
    env = dict(base_env, LICENSE_FILE=str(path))
    a = users(api_launcher.start(LICENSE_FILE=path))
    tok = a.admin_token
    assert error_of(a.get("/api/devices", tok))["code"] == 20001

    def mcs(*args):
        r = subprocess.run([str(build_dir() / "mcs"), "license", *args], env=env,
                           capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout, r.stderr

    forged = tmp_path / "forged.key"
    forged.write_text(text.replace("1000", "9999"))
    rc, out, err = mcs("install", str(forged))
    assert rc == 1 and "20001" in err, (rc, out, err)
    assert not path.exists()
    good = tmp_path / "good.key"
    good.write_text(text)
    rc, out, err = mcs("install", str(good))
    assert rc == 0, err
    assert path.read_text() == text and "state: grace" in out and "max_devices: 1000" in out
    wait_until(lambda: a.get("/api/devices", tok).status_code == 200, 10,
               desc="mcs-api running on the installed license")
    rc, out, _ = mcs("show")
    assert rc == 0 and "customer: 测试化工 Test Chemicals" in out
    with pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM audit_logs WHERE username = 'cli'"
                    " AND action = 'license.install' AND target = %s", (str(good),))
        assert cur.fetchone()[0] == 1


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
    # the admin CLI keeps the same limit
    r = subprocess.run([str(build_dir() / "mcs"), "device", "add", sn2], capture_output=True,
                       text=True, timeout=30, env=dict(a.env))
    assert r.returncode == 1 and "20003" in r.stderr, r.stdout + r.stderr
    with pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM devices WHERE sn = %s", (sn2,))
        assert cur.fetchone()[0] == 0
        cur.execute("DELETE FROM devices WHERE sn = %s", (sn1,))


def test_locked_worker_stores_nothing_but_raises_and_notifies(mcsd, pg, add_device, mqtt_pub,
                                                               wait_db, tmp_path, api_launcher):
    """Safety over the seed: no license, yet a gas reading over its limit
    gives an alarm row, a notification and an alarm on the wall screen's
    feed; the readings are not stored and the device list is refused."""
    reset_alarm_config(pg)
    cap = Capture("webhook")
    ws = None
    try:
        set_config(pg, "alarm.channel.webhook", {"enabled": True, "url": cap.url})
        sn = add_device(name="锁定探头", location="车间L", high_limit=100)
        nolic = tmp_path / "none" / "license.key"
        m = mcsd(LICENSE_FILE=nolic)
        a = users(api_launcher.start(LICENSE_FILE=nolic))
        assert error_of(a.get("/api/devices", a.admin_token))["code"] == 20001
        ws = ws_open(a, a.admin_token)
        assert any(ln.get("module") == "license" and ln.get("state") == "missing"
                   for ln in m.log_lines())
        mqtt_pub.reading(sn, qos=0, seq=1, v_raw=50.0, temp=25.0)
        mqtt_pub.reading(sn, qos=0, seq=2, v_raw=150.0, temp=25.0)
        rows = wait_db("SELECT id, alarm_type, peak_value FROM alarm_logs WHERE sn = %s", (sn,),
                       pred=lambda r: len(r) == 1, desc="alarm raised while locked")
        assert rows[0][1] == "HIGH" and rows[0][2] == 150
        wait_until(lambda: cap.count() >= 1, 15, desc="webhook delivered while locked")
        assert cap.snapshot()[0]["body"]["sn"] == sn
        # The outcome commits right after the send returns (issue #15): wait for it.
        wait_until(lambda: [o["status"] for o in outbox(pg, rows[0][0])] == ["sent"], 10,
                   desc="outbox row sent")
        recv_until(ws, lambda f: f["type"] == "alarm" and f["data"]["sn"] == sn, 10)
        listed = a.get("/api/alarms", a.admin_token, params={"sn": sn}).json()["data"]
        assert [x["id"] for x in listed] == [rows[0][0]]
        m.wait_metric("unlicensed", lambda v: v >= 2)
        with pg.cursor() as cur:
            cur.execute("SELECT count(*) FROM sensor_data WHERE sn = %s", (sn,))
            assert cur.fetchone()[0] == 0
    finally:
        cap.close()
        if ws:
            ws.close()


def test_worker_unlocks_when_a_license_is_installed(mcsd, pg, add_device, mqtt_pub, wait_db,
                                                   tmp_path, services):
    path, text = issue(tmp_path, db=services["LICENSE_VENDOR_DB"])
    sn = add_device()
    m = mcsd(LICENSE_FILE=path)
    mqtt_pub.reading(sn, qos=0, seq=1, v_raw=10.0)
    m.wait_metric("unlicensed", lambda v: v >= 1)
    path.write_text(text)  # as the CLI or the upload would, no restart
    # mcsd sees it (grace), checks online at once, and is valid.
    wait_until(lambda: any(ln.get("module") == "license" and ln.get("result") == "ok"
                           for ln in m.log_lines()), 15, desc="mcsd's online check")
    wait_until(lambda: any(ln.get("module") == "license" and ln.get("state") == "valid"
                           for ln in m.log_lines()), 10, desc="mcsd valid")
    mqtt_pub.reading(sn, qos=0, seq=2, v_raw=11.0)
    wait_db("SELECT seq FROM sensor_data WHERE sn = %s", (sn,), pred=lambda r: r == [(2,)],
            desc="stored after the unlock")


def test_online_check_keeps_the_token(tmp_path, services, base_env, pg, rds):
    _, text = issue(tmp_path, db=services["LICENSE_VENDOR_DB"])
    penv = plant(tmp_path, text)
    rc, out = check(base_env, penv)
    assert rc == 0, out
    outcome, _, detail = last_run(pg)
    assert outcome == "ok" and detail["state"] == "valid" and detail["check"] == "ok"
    tok = json.loads((Path(penv["LICENSE_FILE"]).parent / "token.json").read_text())["token"]
    assert tok.startswith("MCS-TOKEN 1\n") and "status: ok\n" in tok
    lines = dict(ln.split(": ", 1) for ln in tok.splitlines()[1:])
    assert int(lines["expires_at"]) - int(lines["issued_at"]) == 24 * H
    assert rds.get("license:token") == tok and 0 < rds.ttl("license:token") <= 24 * H
    # the raw machine id is never sent: only its keyed hash
    assert Path(penv["MACHINE_ID_FILE"]).read_text().strip() not in tok
    assert key_of(text) not in (Path(services["RUN_DIR"]) / "license" / "licd.log").read_text()


def test_another_host_20004_until_released(tmp_path, services, base_env, api_launcher):
    _, text = issue(tmp_path, db=services["LICENSE_VENDOR_DB"])
    a_env, b_env = plant(tmp_path, text), plant(tmp_path, text)
    assert check(base_env, a_env)[0] == 0       # host A binds
    rc, out = check(base_env, b_env)            # host B: refused, locked at once
    assert rc == 1 and "another host" in out
    b = users(api_launcher.start(**b_env))
    r = b.get("/api/devices", b.admin_token)
    assert r.status_code == 403 and error_of(r)["code"] == 20004
    # the binding survives a restart of the license server
    services.licd_stop()
    services.licd_start()
    assert check(base_env, b_env)[0] == 1
    vendor(services, "release", key_of(text))
    rc, out = check(base_env, b_env)
    assert rc == 0, out                         # B binds now
    wait_until(lambda: b.get("/api/devices", b.admin_token).status_code == 200, 5,
               desc="B unlocked without a restart")
    assert check(base_env, a_env)[0] == 1       # and A is the other host


def test_revoked_locks_at_the_next_check(tmp_path, services, base_env, api_launcher, pg):
    _, text = issue(tmp_path, db=services["LICENSE_VENDOR_DB"])
    penv = plant(tmp_path, text)
    assert check(base_env, penv)[0] == 0
    a = users(api_launcher.start(**penv))
    assert a.get("/api/devices", a.admin_token).status_code == 200
    vendor(services, "revoke", key_of(text))
    rc, out = check(base_env, penv)
    assert rc == 1 and "revoked" in out
    wait_until(lambda: a.get("/api/devices", a.admin_token).status_code == 403, 5,
               desc="locked after the revocation")
    j = a.get("/api/system/license", a.admin_token).json()
    assert (j["status"], j["code"]) == ("locked", 20001) and "revoked" in j["reason"]
    clear_license_alarms(pg)


@needs_test_clock
def test_grace_warning_lock_forged_replayed_unlock(tmp_path, services, base_env, api_launcher,
                                                   pg, licd):
    """71 h without the server: running, yellow, warning alarm; 73 h: locked;
    a fake server's unsigned or re-signed "ok" and a replayed old answer do
    not unlock; the real server does."""
    clock = tmp_path / "clock"
    clock.write_text("0")
    srv = licd(clock)
    _, text = issue(tmp_path, db=srv.db)
    penv = plant(tmp_path, text, LICENSE_SERVER_URL=srv.url, MCS_TEST_CLOCK_FILE=clock)
    assert check(base_env, penv)[0] == 0
    old = json.loads((Path(penv["LICENSE_FILE"]).parent / "token.json").read_text())["token"]
    a = users(api_launcher.start(**penv))
    tok = a.admin_token
    srv.stop()
    clock.write_text(str(71 * H))
    rc, out = check(base_env, penv)
    assert rc == 1 and "unreachable" in out
    assert last_run(pg)[2]["state"] == "grace" and 0 < last_run(pg)[2]["grace_left_s"] <= H
    with pg.cursor() as cur:
        cur.execute("SELECT message FROM alarm_logs WHERE sn = 'SYSTEM' AND "
                    "alarm_type = 'LICENSE_GRACE' AND cleared_at IS NULL")
        assert "grace" in cur.fetchone()[0]
    wait_until(lambda: a.get("/api/system/license", tok).json()["status"] == "grace", 5,
               desc="API sees grace")
    assert a.get("/api/devices", tok).status_code == 200
    hl = a.get("/api/system/health", tok).json()["components"]["license"]
    assert hl["status"] == "grace" and hl["warning"] is True and 0 < hl["grace_left_s"] <= H
    assert hl["last_check"] is not None
    clock.write_text(str(73 * H))
    assert check(base_env, penv)[0] == 1
    wait_until(lambda: a.get("/api/devices", tok).status_code == 403, 5, desc="locked at 73 h")
    assert error_of(a.get("/api/devices", tok))["code"] == 20001
    fake = FakeServer(services)
    try:
        fenv = dict(penv, LICENSE_SERVER_URL=fake.url)
        forged = [b"ok", b'{"status":"ok"}', old.encode(),
                  old.replace("expires_at: ", "expires_at: 9").encode(),
                  issue(tmp_path, sk=other_vendor_key(tmp_path))[1].encode()]
        for body, why in zip(forged, ["forged", "forged", "replayed", "forged", "forged"]):
            fake.body["text"] = body
            rc, out = check(base_env, fenv)
            assert rc == 1 and why in out, (body, out)
            assert a.get("/api/system/license", tok).json()["status"] == "locked"
    finally:
        fake.close()
    srv.start()
    assert check(base_env, penv)[0] == 0
    wait_until(lambda: a.get("/api/devices", tok).status_code == 200, 5, desc="unlocked")
    j = a.get("/api/system/license", tok).json()
    assert j["status"] == "valid", (j, (Path(penv["LICENSE_FILE"]).parent / "license.state").read_text())
    with pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM alarm_logs WHERE sn = 'SYSTEM' AND "
                    "alarm_type = 'LICENSE_GRACE' AND cleared_at IS NULL")
        assert cur.fetchone()[0] == 0
    clear_license_alarms(pg)


@needs_test_clock
def test_clock_turned_back_is_detected(tmp_path, services, base_env, api_launcher, pg, licd):
    server_clock, plant_clock = tmp_path / "server-clock", tmp_path / "plant-clock"
    server_clock.write_text("0")
    plant_clock.write_text("0")
    srv = licd(server_clock)
    _, text = issue(tmp_path, db=srv.db)
    penv = plant(tmp_path, text, LICENSE_SERVER_URL=srv.url, MCS_TEST_CLOCK_FILE=plant_clock)
    assert check(base_env, penv)[0] == 0
    # 60 h pass (server unreachable meanwhile), then the clock is set back two days
    srv.stop()
    plant_clock.write_text(str(60 * H))
    assert check(base_env, penv)[0] == 1
    plant_clock.write_text(str(-48 * H))
    a = users(api_launcher.start(**penv))
    j = a.get("/api/system/license", a.admin_token).json()
    assert j["status"] == "grace" and "clock turned back" in j["reason"]
    # no grace bought: the 60 h already seen still count (12 h left, not 72 h)
    assert "剩余 11 小时" in j["reason"] or "剩余 12 小时" in j["reason"]
    server_clock.write_text(str(60 * H))
    srv.start()
    rc, out = check(base_env, penv)
    assert rc == 1 and "clock differs from the license server" in out
    assert a.get("/api/system/license", a.admin_token).json()["status"] != "valid"
    clear_license_alarms(pg)


def verify_req(url, cafile, key, fp, nonce=None):
    body = {"machine_id": fp, "license_key": key, "version": "1.0.0",
            "nonce": nonce or secrets.token_hex(16)}
    return requests.post(url, json=body, verify=cafile, timeout=10)


def test_server_binds_one_host_under_concurrent_activations(tmp_path, services):
    """Eight hosts activate one new license at the same moment: exactly one
    binds, the seven others are told other_host (signed)."""
    _, text = issue(tmp_path, db=services["LICENSE_VENDOR_DB"])
    key, url, ca = key_of(text), services["LICENSE_SERVER_URL"], services["LICENSE_SERVER_CAFILE"]
    fps = [secrets.token_hex(32) for _ in range(8)]
    out = [None] * 8
    start = threading.Barrier(8)

    def one(i):
        start.wait()
        out[i] = verify_req(url, ca, key, fps[i])
    ts = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all(r.status_code == 200 for r in out)
    statuses = sorted(r.text.split("status: ")[1].split("\n")[0] for r in out)
    assert statuses == ["ok"] + ["other_host"] * 7
    listed = vendor(services, "list")
    bound = [ln for ln in listed.splitlines() if key in ln][0].split("\t")[-1]
    winner = fps[[i for i, r in enumerate(out) if "status: ok" in r.text][0]]
    assert winner.startswith(bound)


def test_server_rate_limit_health_and_bad_requests(tmp_path, services, licd):
    srv = licd(rate=("60", "3"))
    ca = services["LICENSE_SERVER_CAFILE"]
    h = requests.get(srv.url.replace("/api/verify", "/health"), verify=ca, timeout=10)
    assert h.status_code == 200 and h.json()["status"] == "ok"
    r = requests.post(srv.url, data=b"not json", verify=ca, timeout=10)
    assert r.status_code == 400
    r = verify_req(srv.url, ca, "MCS-0000-0000-0000", "zz" * 32)
    assert r.status_code == 400 and "machine_id" in r.json()["error"]
    # the burst of 3 is spent: the next ones from this address wait
    codes = [verify_req(srv.url, ca, "MCS-0000-0000-0000", "a" * 64).status_code
             for _ in range(3)]
    assert codes[-1] == 429
    # plain HTTP is not served
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{srv.port}/health", timeout=5)
    logs = [json.loads(ln) for ln in srv.log.read_text().splitlines() if ln.startswith("{")]
    assert logs and all("ts" in ln and "level" in ln for ln in logs)
