"""test_plugin.py - the mcs_auth broker plugin (issue #3; R-MQ-6, R-MQ-7,
R-PR-3) against a real Mosquitto 2.0.11 in plugin mode, started by
scripts/svc.sh (MCS_BROKER_AUTH=plugin) in a run directory of this module
with its own PostgreSQL and Redis, so that stopping the database or the
broker here disturbs no other test.

Clients are not ours: Debian's mosquitto_pub/mosquitto_sub and
python3-paho-mqtt (1.6.1), devices over TLS on MQTT_TLS_PORT with the
project-generated CA. Note on paho 1.6.1: it reads the reason code of a
PUBACK but drops it (client.py _handle_pubackcomp), so a publish the broker
refused with 135 looks "published" to paho; refusals are therefore shown
with mosquitto_pub (`-V mqttv5 -q 1` prints "Not authorized") and by a
subscriber that never receives the message.

With an AddressSanitizer build (MCS_BUILD_DIR=build-asan) the plugin is
instrumented; the broker (Debian's, not instrumented) then runs with the
sanitizer runtimes preloaded and any report fails the module."""
import hashlib
import os
import queue
import secrets
import shutil
import signal
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import psycopg2
import pytest
import redis

from mcshelpers import (REPO, McsdLauncher, build_dir, close_client, new_sn, parse_env, telemetry,
                        wait_until)

SVC = REPO / "scripts" / "svc.sh"
PREFIX = "mcs"


# --------------------------------------------------------------------------
# The plugin-mode services of this module


class PluginServices(dict):
    """DIR/env of the module's services as a dict, with helpers."""

    def __init__(self, run_dir, svc_env):
        super().__init__(parse_env(run_dir / "env"))
        self.run_dir = run_dir
        self.svc_env = svc_env

    def svc(self, cmd):
        r = subprocess.run(["bash", str(SVC), cmd, str(self.run_dir)], env=self.svc_env,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"svc.sh {cmd} failed ({r.returncode}): {r.stderr[-2000:]}\n"
                               f"broker log:\n{self.broker_log()[-2000:]}")

    def broker_log(self):
        try:
            return (self.run_dir / "mosquitto" / "log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def broker_pid(self):
        return int((self.run_dir / "mosquitto" / "pid").read_text().strip())

    def pg(self):
        c = psycopg2.connect(host=self["DB_HOST"], port=int(self["DB_PORT"]),
                             dbname=self["DB_NAME"], user=self["DB_USER"], connect_timeout=5)
        c.autocommit = True
        return c

    def redis(self):
        return redis.Redis(host=self["REDIS_HOST"], port=int(self["REDIS_PORT"]),
                           decode_responses=True, socket_timeout=10)


def _sanitizer_preload(plugin):
    """What an instrumented plugin needs preloaded into Debian's broker: the
    sanitizer runtimes (they must come first), and libpq. Without libpq in
    the preload list, libpq's first bindtextdomain() deadlocks on glibc's
    _nl_state_lock when it is dlopen()ed under the preloaded ASan runtime
    (seen with glibc 2.36, gcc 12, LANG=C.UTF-8). Empty for a normal build."""
    r = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True)
    san, pq = [], []
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and ("libasan" in parts[0] or "libubsan" in parts[0]):
            san.append(parts[2])
        elif len(parts) >= 3 and parts[0].startswith("libpq.so"):
            pq.append(parts[2])
    return san + pq if san else []


@pytest.fixture(scope="module")
def psvc():
    build = build_dir()
    plugin, cli, mcsd = build / "mcs_auth.so", build / "mcs", build / "mcsd"
    for f in (plugin, cli, mcsd):
        if not f.exists():
            pytest.fail(f"{f} not built", pytrace=False)
    run_dir = REPO / ".run" / f"plugin-{os.getpid()}"
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "asan").mkdir(parents=True)
    env = dict(os.environ)
    env.update({
        "MCS_BROKER_AUTH": "plugin",
        "MCS_AUTH_PLUGIN": str(plugin),
        "MCS_CLI": str(cli),
        # Quick metrics so that tests see counters within a fraction of a
        # second; three attempts make an unknown SN "repeated" (default).
        "MCS_AUTH_PLUGIN_OPTS": "metrics_interval_ms=200 alarm_min_attempts=3",
    })
    preload = _sanitizer_preload(plugin)
    if preload:
        env["MCS_BROKER_PRELOAD"] = " ".join(preload)
        env["ASAN_OPTIONS"] = ("detect_leaks=1:abort_on_error=1:halt_on_error=1:"
                               f"log_path={run_dir}/asan/report")
        env["UBSAN_OPTIONS"] = f"print_stacktrace=1:halt_on_error=1:log_path={run_dir}/asan/ub"
    svc = None
    try:
        r = subprocess.run(["bash", str(SVC), "start", str(run_dir)], env=env,
                           capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            pytest.fail(f"svc.sh start (plugin mode) failed:\n{r.stdout}\n{r.stderr}\n"
                        f"{(run_dir / 'mosquitto' / 'log').read_text(errors='replace')[-3000:]}"
                        if (run_dir / "mosquitto" / "log").exists() else r.stderr,
                        pytrace=False)
        svc = PluginServices(run_dir, env)
        menv = dict(os.environ)
        menv.pop("ENV_FILE", None)
        menv.update(svc)
        m = subprocess.run([str(mcsd), "--migrate"], env=menv, cwd=str(run_dir),
                           capture_output=True, text=True, timeout=120)
        assert m.returncode == 0, m.stderr
        # The plugin retries the database every 2 s; wait for its first load.
        rds = svc.redis()
        wait_until(lambda: rds.hget("mcs:metrics:broker", "registry_loaded") == "1", 20, 0.1,
                   "the plugin's first registry load",
                   lambda: svc.broker_log()[-2000:])
        rds.close()
        yield svc
    finally:
        subprocess.run(["bash", str(SVC), "stop", str(run_dir)], env=env, capture_output=True,
                       timeout=180)
        reports = [p for p in (run_dir / "asan").glob("*") if p.stat().st_size > 0]
        text = "\n".join(p.read_text(errors="replace")[-4000:] for p in reports)
        if not os.environ.get("MCS_KEEP_RUN"):
            shutil.rmtree(run_dir, ignore_errors=True)
        if reports:
            pytest.fail(f"sanitizer reports from the broker with the plugin:\n{text}",
                        pytrace=False)


@pytest.fixture
def db(psvc):
    c = psvc.pg()
    yield c
    c.close()


@pytest.fixture
def rds(psvc):
    r = psvc.redis()
    yield r
    r.close()


def insert_device(db, sn=None, enabled=True):
    sn = sn or new_sn("P")
    with db.cursor() as cur:
        cur.execute("INSERT INTO devices (sn, enabled) VALUES (%s, %s)", (sn, enabled))
    return sn


@pytest.fixture
def add_device(psvc, rds):
    """add_device(sn=None, enabled=True) registers a device and waits until
    the plugin has applied the change (its registry_updates counter moved),
    so that the device's first CONNECT is not a race with the NOTIFY."""
    def add(sn=None, enabled=True):
        before = metrics(rds).get("registry_updates", 0)
        c = psvc.pg()
        try:
            sn = insert_device(c, sn, enabled)
        finally:
            c.close()
        wait_until(lambda: metrics(rds).get("registry_updates", 0) > before, 10, 0.02,
                   f"the plugin to learn about {sn}")
        return sn
    return add


def set_enabled(db, sn, enabled):
    with db.cursor() as cur:
        cur.execute("UPDATE devices SET enabled = %s WHERE sn = %s", (enabled, sn))


def dev_pass(sn, secret):
    """R-MQ-6: hex(SHA256(sn + vendor_secret))[:16]."""
    return hashlib.sha256((sn + secret).encode()).hexdigest()[:16]


def metrics(rds):
    out = {}
    for k, v in rds.hgetall("mcs:metrics:broker").items():
        try:
            out[k] = int(v)
        except ValueError:
            out[k] = v
    return out


def fresh_metrics(rds, times=2):
    """Waits for `times` more refreshes of the hash, then returns it."""
    for _ in range(times):
        start = rds.hget("mcs:metrics:broker", "updated_ms")
        wait_until(lambda: rds.hget("mcs:metrics:broker", "updated_ms") != start, 10, 0.02,
                   "a refresh of mcs:metrics:broker")
    return metrics(rds)


# --------------------------------------------------------------------------
# Clients


class Client:
    """One paho MQTT v5 client. Never reconnects by itself (a refused or
    kicked client must stay observable, and must not add attempts)."""

    def __init__(self, svc, user=None, password=None, client_id=None, will=None, tls=True,
                 wait=True):
        self.client_id = client_id if client_id is not None else "t-" + secrets.token_hex(4)
        self.c = mqtt.Client(client_id=self.client_id, protocol=mqtt.MQTTv5)
        self.c.reconnect_delay_set(3600, 3600)
        if user is not None:
            self.c.username_pw_set(user, password)
        if tls:
            self.c.tls_set(ca_certs=svc["MQTT_CAFILE"])
            port = int(svc["MQTT_TLS_PORT"])
        else:
            port = int(svc["MQTT_PORT"])
        if will:
            self.c.will_set(*will)
        self.messages = queue.Queue()
        self.connack = None
        self.connack_evt = threading.Event()
        self.disconnected = threading.Event()
        self.disconnect_rc = None
        self.disconnect_at = None
        self.subacks = {}
        self.suback_evt = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, m.retain))
        self.c.on_subscribe = self._on_subscribe
        self.c.connect("127.0.0.1", port, keepalive=60, clean_start=True)
        self.c.loop_start()
        if wait:
            self.wait_connack()

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.connack = rc.value if hasattr(rc, "value") else rc
        if self.connack != 0:
            client.disconnect()  # refused: do not let the loop retry
        self.connack_evt.set()

    def _on_disconnect(self, client, userdata, rc, properties=None):
        self.disconnect_rc = rc.value if hasattr(rc, "value") else rc
        self.disconnect_at = time.monotonic()
        self.disconnected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties=None):
        with self.suback_evt:
            self.subacks[mid] = [r.value if hasattr(r, "value") else r for r in reason_codes]
            self.suback_evt.notify_all()

    def wait_connack(self, timeout=10):
        if not self.connack_evt.wait(timeout):
            raise AssertionError(f"no CONNACK for {self.client_id} within {timeout}s")
        return self.connack

    @property
    def ok(self):
        return self.connack == 0

    def subscribe(self, topic, qos=1, timeout=10):
        """Returns the SUBACK reason codes (0..2 granted QoS, 135 refused)."""
        rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe {topic}: {mqtt.error_string(rc)}"
        deadline = time.monotonic() + timeout
        with self.suback_evt:
            while mid not in self.subacks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no SUBACK for {topic!r}")
                self.suback_evt.wait(left)
            return self.subacks[mid]

    def publish(self, topic, payload, qos=1, retain=False, timeout=10):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish {topic}: {mqtt.error_string(info.rc)}"
        info.wait_for_publish(timeout)
        return info

    def expect(self, topic, timeout=5):
        """Waits for a message on topic; returns (payload, retain)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.client_id}: no message on {topic!r} within "
                                     f"{timeout}s (saw {seen})")
            try:
                t, p, r = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if t == topic:
                return p, r
            seen.append(t)

    def no_message(self, topic, wait=1.0):
        """Asserts that nothing arrives on topic for `wait` seconds."""
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                t, p, _ = self.messages.get(timeout=left)
            except queue.Empty:
                return
            assert t != topic, f"{self.client_id} received {t!r}: {p!r}"

    def close(self, abrupt=False):
        close_client(self.c, abrupt)


@pytest.fixture
def clients(psvc):
    made = []

    def make(*a, **kw):
        c = Client(psvc, *a, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        try:
            c.close()
        except Exception:
            pass


def device(clients, psvc, sn, **kw):
    """A device client of sn with the right credentials (R-MQ-6)."""
    return clients(f"device_{sn}", dev_pass(sn, psvc["VENDOR_SECRET"]), f"device_{sn}", **kw)


def worker(clients, psvc, client_id=None, **kw):
    return clients("worker", psvc["WORKER_PASS"], client_id or "w-" + secrets.token_hex(3),
                   **kw)


def admin(clients, psvc, **kw):
    return clients("admin", psvc["ADMIN_PASS"], "a-" + secrets.token_hex(3), **kw)


def mpub(psvc, user, password, client_id, topic, msg="x", qos=1, tls=True, extra=()):
    """mosquitto_pub (MQTT v5); returns the CompletedProcess."""
    args = ["mosquitto_pub", "-V", "mqttv5", "-h", "127.0.0.1", "-q", str(qos), "-t", topic,
            "-m", msg, "-i", client_id]
    if tls:
        args += ["-p", psvc["MQTT_TLS_PORT"], "--cafile", psvc["MQTT_CAFILE"]]
    else:
        args += ["-p", psvc["MQTT_PORT"]]
    if user is not None:
        args += ["-u", user]
    if password is not None:
        args += ["-P", password]
    return subprocess.run(args + list(extra), capture_output=True, text=True, timeout=30)


def refused_connect(r):
    return r.returncode != 0 and ("Not authorized" in r.stderr or
                                  "Bad user name or password" in r.stderr)


# --------------------------------------------------------------------------
# Authentication


def test_right_password_accepted_within_seconds_of_registration(psvc, db, clients):
    sn = new_sn("P")
    t0 = time.monotonic()
    insert_device(db, sn)
    # Registered a moment ago: the NOTIFY reaches the plugin at once.
    def accepted():
        c = Client(psvc, f"device_{sn}", dev_pass(sn, psvc["VENDOR_SECRET"]), f"device_{sn}")
        ok = c.ok
        c.close()
        return ok
    wait_until(accepted, 5, 0.1, f"device {sn} accepted after registration")
    assert time.monotonic() - t0 < 5
    r = mpub(psvc, f"device_{sn}", dev_pass(sn, psvc["VENDOR_SECRET"]), f"device_{sn}",
             f"{PREFIX}/{sn}/up", '{"ts":1}')
    assert r.returncode == 0 and "failed" not in r.stderr, r.stderr


def test_wrong_password_refused(psvc, db, clients, rds, add_device):
    sn = add_device()
    before = fresh_metrics(rds)
    c = clients(f"device_{sn}", "0000000000000000", f"device_{sn}")
    assert c.connack in (134, 135), c.connack
    c2 = clients(f"device_{sn}", dev_pass(sn, "not-the-vendor-secret"), f"device_{sn}")
    assert not c2.ok
    r = mpub(psvc, f"device_{sn}", "wrong", f"device_{sn}", f"{PREFIX}/{sn}/up")
    assert refused_connect(r), r.stderr
    w = clients("worker", "wrong-worker-password", "w-wrong")
    assert not w.ok
    after = fresh_metrics(rds)
    assert after["auth_bad_password"] - before["auth_bad_password"] == 4
    assert after["auth_refused"] - before["auth_refused"] == 4


def test_unregistered_refused_and_one_alarm(psvc, db, clients, rds):
    sn = new_sn("U")
    secret = psvc["VENDOR_SECRET"]
    before = fresh_metrics(rds)
    for _ in range(8):
        c = clients(f"device_{sn}", dev_pass(sn, secret), f"device_{sn}")
        assert not c.ok
        c.close()
    after = fresh_metrics(rds)
    assert after["auth_unknown_sn"] - before["auth_unknown_sn"] == 8

    def alarms():
        with db.cursor() as cur:
            cur.execute("SELECT id, count, message, state FROM alarm_logs "
                        "WHERE sn = %s AND alarm_type = 'UNKNOWN_DEVICE'", (sn,))
            return cur.fetchall()
    rows = wait_until(lambda: (lambda r: r if r and r[0][1] == 8 else None)(alarms()), 10, 0.1,
                      "one UNKNOWN_DEVICE alarm counting all 8 attempts",
                      lambda: f"rows: {alarms()}")
    assert len(rows) == 1
    # issue #7: states are active_unack / active_ack / cleared_unack / cleared_ack
    assert sn in rows[0][2] and rows[0][3] == "active_unack"
    # More attempts inside the window: still one record, its count grows.
    for _ in range(3):
        c = clients(f"device_{sn}", dev_pass(sn, secret), f"device_{sn}")
        assert not c.ok
    rows = wait_until(lambda: (lambda r: r if r and r[0][1] == 11 else None)(alarms()), 10, 0.1,
                      "the alarm's count updated", lambda: f"rows: {alarms()}")
    assert len(rows) == 1
    # Strangers guessing passwords for made-up SNs are bad_password, never
    # an alarm: only a device that knows the vendor secret is "unknown".
    ghost = new_sn("G")
    for _ in range(5):
        assert not clients(f"device_{ghost}", "0123456789abcdef", f"device_{ghost}").ok
    time.sleep(1.5)
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM alarm_logs WHERE sn = %s", (ghost,))
        assert cur.fetchone()[0] == 0


def test_disabled_while_connected_is_cut_off_within_5s(psvc, db, clients, rds, add_device):
    sn = add_device()
    d = device(clients, psvc, sn)
    assert d.ok
    assert d.subscribe(f"{PREFIX}/{sn}/cmd") == [1]
    t0 = time.monotonic()
    set_enabled(db, sn, False)
    assert d.disconnected.wait(5), "device still connected 5 s after it was disabled"
    cut = d.disconnect_at - t0
    assert cut < 5, cut
    # The broker sends DISCONNECT 152 (administrative action) and closes;
    # paho over TLS often reports just the lost connection (7).
    assert d.disconnect_rc in (152, mqtt.MQTT_ERR_CONN_LOST), d.disconnect_rc
    # Reconnecting is refused as disabled.
    again = device(clients, psvc, sn)
    assert not again.ok
    r = mpub(psvc, f"device_{sn}", dev_pass(sn, psvc["VENDOR_SECRET"]), f"device_{sn}",
             f"{PREFIX}/{sn}/up")
    assert refused_connect(r), r.stderr
    m = fresh_metrics(rds)
    assert m["kicks"] >= 1 and m["auth_disabled"] >= 2
    # Enabled again: accepted again, without any broker reload.
    set_enabled(db, sn, True)
    wait_until(lambda: device(clients, psvc, sn).ok, 5, 0.1, "re-enabled device accepted")


def test_deleted_device_is_cut_off(psvc, db, clients, add_device):
    sn = add_device()
    d = device(clients, psvc, sn)
    assert d.ok
    with db.cursor() as cur:
        cur.execute("DELETE FROM devices WHERE sn = %s", (sn,))
    assert d.disconnected.wait(5)
    assert not device(clients, psvc, sn).ok


def test_mcs_cli_add_and_disable_take_effect_at_the_broker(psvc, clients, rds):
    """`mcs device add` prints credentials the broker accepts; `mcs device
    disable` cuts the device off; `enable` lets it back."""
    env = dict(os.environ)
    env.pop("ENV_FILE", None)
    env.update(psvc)
    sn = new_sn("C")

    def mcs(*args):
        r = subprocess.run([str(build_dir() / "mcs"), *args], env=env, capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout
    before = metrics(rds).get("registry_updates", 0)
    out = dict(line.split(": ", 1) for line in mcs("device", "add", sn).splitlines()
               if ": " in line)
    assert out["mqtt username"] == f"device_{sn}"
    assert out["mqtt client id"] == f"device_{sn}"
    wait_until(lambda: metrics(rds).get("registry_updates", 0) > before, 10, 0.02,
               "the plugin to learn about the new device")
    d = clients(out["mqtt username"], out["mqtt password"], out["mqtt client id"])
    assert d.ok, d.connack
    mcs("device", "disable", sn)
    assert d.disconnected.wait(5), "still connected 5 s after `mcs device disable`"
    assert not device(clients, psvc, sn).ok
    mcs("device", "enable", sn)
    wait_until(lambda: device(clients, psvc, sn).ok, 5, 0.1, "re-enabled device accepted")


# --------------------------------------------------------------------------
# Topic rights (ACL)


def test_device_cannot_publish_as_another(psvc, db, clients, rds, add_device):
    a, b = add_device(), add_device()
    watcher = admin(clients, psvc)
    assert watcher.subscribe(f"{PREFIX}/#") == [1]
    before = fresh_metrics(rds)
    pa = dev_pass(a, psvc["VENDOR_SECRET"])
    # mosquitto_pub, MQTT v5, QoS 1: the PUBACK carries reason 135.
    r = mpub(psvc, f"device_{a}", pa, f"device_{a}", f"{PREFIX}/{b}/up", '{"forged":1}')
    assert "Not authorized" in r.stderr, (r.returncode, r.stderr)
    r = mpub(psvc, f"device_{a}", pa, f"device_{a}", f"{PREFIX}/{b}/status", "{}")
    assert "Not authorized" in r.stderr
    r = mpub(psvc, f"device_{a}", pa, f"device_{a}", f"{PREFIX}/{a}/cmd", "{}")
    assert "Not authorized" in r.stderr
    r = mpub(psvc, f"device_{a}", pa, f"device_{a}", f"{PREFIX}/broadcast/cmd", "{}")
    assert "Not authorized" in r.stderr
    # paho: the refused publish is "acked" (reason dropped by paho 1.6.1)
    # but never delivered.
    d = device(clients, psvc, a)
    d.publish(f"{PREFIX}/{b}/up", '{"forged":2}')
    d.publish(f"{PREFIX}/{a}/up", '{"own":1}')
    payload, _ = watcher.expect(f"{PREFIX}/{a}/up")
    assert payload == b'{"own":1}'
    watcher.no_message(f"{PREFIX}/{b}/up", 1.0)
    after = fresh_metrics(rds)
    assert after["acl_denied_write"] - before["acl_denied_write"] == 5


def test_device_cannot_take_another_devices_client_id(psvc, db, clients, add_device):
    a, b = add_device(), add_device()
    db_ = device(clients, psvc, b)
    assert db_.ok
    # A's credentials with B's client id: refused, and B is not kicked off
    # (a session takeover would disconnect B and hand A B's queued commands).
    intruder = clients(f"device_{a}", dev_pass(a, psvc["VENDOR_SECRET"]), f"device_{b}")
    assert not intruder.ok
    assert not clients(f"device_{a}", dev_pass(a, psvc["VENDOR_SECRET"]), b).ok
    assert not clients(f"device_{a}", dev_pass(a, psvc["VENDOR_SECRET"]), "anything").ok
    # The worker may not use a device's id either.
    assert not clients("worker", psvc["WORKER_PASS"], f"device_{b}").ok
    assert not db_.disconnected.wait(1.0)


def test_device_cannot_read_another_devices_commands(psvc, db, clients, add_device):
    a, b = add_device(), add_device()
    da = device(clients, psvc, a)
    assert da.subscribe(f"{PREFIX}/{b}/cmd") == [135]
    assert da.subscribe(f"{PREFIX}/+/cmd") == [135]
    assert da.subscribe(f"{PREFIX}/#") == [135]
    assert da.subscribe("#") == [135]
    assert da.subscribe(f"$share/x/{PREFIX}/{b}/cmd") == [135]
    assert da.subscribe(f"{PREFIX}/{a}/cmd") == [1]
    # mosquitto_sub sees the refusal too.
    r = subprocess.run(["mosquitto_sub", "-V", "mqttv5", "-h", "127.0.0.1",
                        "-p", psvc["MQTT_TLS_PORT"], "--cafile", psvc["MQTT_CAFILE"],
                        "-u", f"device_{a}", "-P", dev_pass(a, psvc["VENDOR_SECRET"]),
                        "-i", f"device_{a}-x", "-t", f"{PREFIX}/{b}/cmd", "-W", "2"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0  # client id device_{a}-x is not device_{a}: refused
    r = subprocess.run(["mosquitto_sub", "-V", "mqttv5", "-h", "127.0.0.1",
                        "-p", psvc["MQTT_TLS_PORT"], "--cafile", psvc["MQTT_CAFILE"],
                        "-u", f"device_{b}", "-P", dev_pass(b, psvc["VENDOR_SECRET"]),
                        "-i", f"device_{b}", "-t", f"{PREFIX}/{a}/cmd", "-W", "2"],
                       capture_output=True, text=True, timeout=30)
    assert "denied" in (r.stdout + r.stderr).lower(), (r.stdout, r.stderr)
    w = worker(clients, psvc)
    w.publish(f"{PREFIX}/{b}/cmd", '{"cmd":"reboot","delay":5}')
    w.publish(f"{PREFIX}/{a}/cmd", '{"cmd":"debug","duration":600}')
    payload, _ = da.expect(f"{PREFIX}/{a}/cmd")
    assert b"debug" in payload
    da.no_message(f"{PREFIX}/{b}/cmd", 0.5)


def test_broadcast_reaches_all_devices(psvc, db, clients, add_device):
    sns = [add_device() for _ in range(3)]
    devs = [device(clients, psvc, sn) for sn in sns]
    for d in devs:
        assert d.subscribe(f"{PREFIX}/broadcast/cmd") == [1]
    worker(clients, psvc).publish(f"{PREFIX}/broadcast/cmd", '{"cmd":"reboot","delay":5}')
    for d in devs:
        payload, _ = d.expect(f"{PREFIX}/broadcast/cmd")
        assert b"reboot" in payload
    r = mpub(psvc, "admin", psvc["ADMIN_PASS"], "adm-bc", f"{PREFIX}/broadcast/cmd", "bc2",
             tls=False)
    assert r.returncode == 0 and "failed" not in r.stderr, r.stderr
    for d in devs:
        assert d.expect(f"{PREFIX}/broadcast/cmd")[0] == b"bc2"


def test_worker_rights(psvc, db, clients, add_device):
    sn = add_device()
    w = worker(clients, psvc, tls=False)  # the internal loopback listener
    assert w.ok
    # Reads up/status of every device, also through shared subscriptions
    # (Mosquitto 2.0.11 hands the plugin the whole "$share/g/..." filter).
    assert w.subscribe(f"$share/wg/{PREFIX}/+/up") == [1]
    assert w.subscribe(f"{PREFIX}/+/status") == [1]
    assert w.subscribe(f"{PREFIX}/#") == [135]
    assert w.subscribe(f"{PREFIX}/+/cmd") == [135]
    assert w.subscribe("#") == [135]
    # The broker's own statistics (mcsd's health, R-API-8): read-only.
    assert w.subscribe("$SYS/broker/clients/connected") == [1]
    d = device(clients, psvc, sn)
    d.publish(f"{PREFIX}/{sn}/up", "r1")
    d.publish(f"{PREFIX}/{sn}/status", '{"status":"online"}')
    assert w.expect(f"{PREFIX}/{sn}/up")[0] == b"r1"
    assert w.expect(f"{PREFIX}/{sn}/status")[0] == b'{"status":"online"}'
    # Writes commands, not readings or status.
    wp = psvc["WORKER_PASS"]
    for topic in (f"{PREFIX}/{sn}/up", f"{PREFIX}/{sn}/status", "other/topic"):
        r = mpub(psvc, "worker", wp, "w-pub", topic, tls=False)
        assert "Not authorized" in r.stderr, (topic, r.stderr)
    for topic in (f"{PREFIX}/{sn}/cmd", f"{PREFIX}/broadcast/cmd"):
        r = mpub(psvc, "worker", wp, "w-pub", topic, tls=False)
        assert r.returncode == 0 and "failed" not in r.stderr, (topic, r.stderr)


def test_admin_rights(psvc, db, clients, add_device):
    sn = add_device()
    a = admin(clients, psvc)
    assert a.subscribe(f"{PREFIX}/#") == [1]
    assert a.subscribe("#") == [135]
    assert a.subscribe("$SYS/#") == [1]  # broker statistics, read-only
    assert a.subscribe("other/#") == [135]
    ap = psvc["ADMIN_PASS"]
    for topic in (f"{PREFIX}/{sn}/cmd", f"{PREFIX}/{sn}/up", f"{PREFIX}/x/y/z"):
        r = mpub(psvc, "admin", ap, "adm-pub", topic, "m")
        assert r.returncode == 0 and "failed" not in r.stderr, (topic, r.stderr)
        assert a.expect(topic)[0] == b"m"
    r = mpub(psvc, "admin", ap, "adm-pub", "other/topic")
    assert "Not authorized" in r.stderr
    assert not clients("admin", "wrong", "adm-x").ok


def test_last_will_published_on_abrupt_disconnect(psvc, db, clients, add_device):
    sn = add_device()
    w = worker(clients, psvc)
    assert w.subscribe(f"{PREFIX}/+/status") == [1]
    will = (f"{PREFIX}/{sn}/status", '{"status":"offline","ts":1}', 1, True)
    d = device(clients, psvc, sn, will=will)
    assert d.ok
    d.publish(f"{PREFIX}/{sn}/status", '{"status":"online","ts":1}', retain=True)
    assert w.expect(f"{PREFIX}/{sn}/status")[0] == b'{"status":"online","ts":1}'
    d.close(abrupt=True)
    payload, _ = w.expect(f"{PREFIX}/{sn}/status", timeout=5)
    assert payload == b'{"status":"offline","ts":1}'
    # Retained: a late subscriber sees the device offline.
    late = admin(clients, psvc)
    assert late.subscribe(f"{PREFIX}/{sn}/status") == [1]
    payload, retained = late.expect(f"{PREFIX}/{sn}/status")
    assert payload == b'{"status":"offline","ts":1}' and retained


def test_will_on_another_devices_topic_is_dropped(psvc, db, clients, add_device):
    a, b = add_device(), add_device()
    w = admin(clients, psvc)
    assert w.subscribe(f"{PREFIX}/+/status") == [1]
    d = device(clients, psvc, a, will=(f"{PREFIX}/{b}/status", "forged-will", 1, True))
    assert d.ok  # Mosquitto 2.0.11 checks a Will when it is sent, not at CONNECT
    d.close(abrupt=True)
    w.no_message(f"{PREFIX}/{b}/status", 1.5)


# --------------------------------------------------------------------------
# Bad input


def test_bad_input_refused_and_counted(psvc, db, clients, rds, add_device):
    sn = add_device()
    good = dev_pass(sn, psvc["VENDOR_SECRET"])
    before = fresh_metrics(rds)
    cases = [
        # (username, password, client id, counter)
        ("device_" + "A" * 500, good, "c1", "auth_bad_input"),
        (f"device_{sn}", "p" * 5000, f"device_{sn}", "auth_bad_input"),
        (f"device_{sn}", good, "c" * 300, "auth_bad_input"),
        (f"device_{sn}", b"\xff\xfe\xfd\xfc", f"device_{sn}", "auth_bad_input"),
        ("device_A1' OR '1'='1", good, "device_A1' OR '1'='1", "auth_bad_input"),
        ("device_x;DROP TABLE devices", good, "device_x;DROP TABLE devices", "auth_bad_input"),
        (f"device_{sn}", "", f"device_{sn}", "auth_no_credentials"),
        (f"device_{sn}", None, f"device_{sn}", "auth_no_credentials"),
        (None, None, "anon", "auth_no_credentials"),
        ("root", "toor", "r", "auth_unknown_user"),
    ]
    want = {}
    for user, pw, cid, counter in cases:
        c = clients(user, pw, cid)
        assert not c.ok, (user, cid)
        c.close()
        want[counter] = want.get(counter, 0) + 1
    # The broker keeps serving the others.
    d = device(clients, psvc, sn)
    assert d.ok
    after = fresh_metrics(rds)
    for counter, n in want.items():
        assert after[counter] - before[counter] == n, (counter, before[counter], after[counter])
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM devices")
        assert cur.fetchone()[0] > 0  # still there, of course


def test_metrics_hash_in_redis(psvc, rds):
    m = fresh_metrics(rds)
    for field in ("auth_ok", "auth_bad_password", "auth_unknown_sn", "auth_disabled",
                  "auth_bad_input", "auth_clientid", "acl_denied", "kicks", "alarms_raised",
                  "devices", "db_up", "redis_up", "updated_ms"):
        assert field in m, field
    assert m["db_up"] == 1 and m["registry_loaded"] == 1


def test_worker_reconnect_storm_verifies_password_once(psvc, rds):
    before = fresh_metrics(rds)
    for i in range(20):
        r = mpub(psvc, "worker", psvc["WORKER_PASS"], f"w-storm-{i}", f"{PREFIX}/S/cmd",
                 tls=False)
        assert r.returncode == 0, r.stderr
    after = fresh_metrics(rds)
    assert after["auth_ok_worker"] - before["auth_ok_worker"] == 20
    # An Argon2id check costs ~80 ms of the broker's only thread: one at
    # most (the first, unless remembered already), the rest from memory.
    assert after["verify_argon2"] - before["verify_argon2"] <= 1
    assert after["verify_cached"] - before["verify_cached"] >= 19


# --------------------------------------------------------------------------
# mcsd through the plugin-mode broker


def test_mcsd_ingests_through_plugin_broker(psvc, db, clients, tmp_path, add_device):
    sn = add_device()
    env = dict(os.environ)
    env.pop("ENV_FILE", None)
    env.pop("MQTT_TLS_CAFILE", None)
    env.update(psvc)
    env.update({"MQTT_USER": "worker", "MQTT_PASS": psvc["WORKER_PASS"], "LOG_LEVEL": "INFO"})
    launcher = McsdLauncher(build_dir() / "mcsd", env, tmp_path, psvc.redis)
    try:
        m = launcher.start()
        d = device(clients, psvc, sn)
        d.publish(f"{PREFIX}/{sn}/up", __import__("json").dumps(telemetry(seq=7, v_raw=123.0)))
        def stored():
            with db.cursor() as cur:
                cur.execute("SELECT seq, v_raw FROM sensor_data WHERE sn = %s", (sn,))
                return cur.fetchall()
        rows = wait_until(stored, 15, 0.1, f"reading of {sn} stored by mcsd",
                          lambda: m.log_tail(20))
        assert rows == [(7, 123.0)]
        m.stop()
    finally:
        problems = launcher.cleanup()
    assert not problems, problems


# --------------------------------------------------------------------------
# Registry outages and restarts (these stop services: keep them last)


def test_sighup_reloads_registry(psvc, rds):
    before = fresh_metrics(rds)
    os.kill(psvc.broker_pid(), signal.SIGHUP)
    wait_until(lambda: metrics(rds)["registry_full_loads"] > before["registry_full_loads"], 10,
               0.1, "a full registry reload after SIGHUP")


def test_database_down_known_devices_keep_working(psvc, db, clients, rds, add_device):
    known = add_device()
    disabled = add_device(enabled=False)
    unknown = new_sn("U")
    # Let the plugin see both before the database goes away.
    wait_until(lambda: device(clients, psvc, known).ok, 5, 0.1, "known device accepted")
    psvc.svc("pg-stop")
    try:
        wait_until(lambda: metrics(rds).get("db_up") == 0, 10, 0.1, "db_up = 0")
        assert device(clients, psvc, known).ok
        assert not device(clients, psvc, disabled).ok
        assert not device(clients, psvc, unknown).ok
        # Across a broker restart too: the registry snapshot file.
        psvc.svc("mqtt-stop")
        psvc.svc("mqtt-start")
        assert device(clients, psvc, known).ok
        assert not device(clients, psvc, disabled).ok
        assert not device(clients, psvc, unknown).ok
    finally:
        psvc.svc("pg-start")
    wait_until(lambda: metrics(rds).get("db_up") == 1, 15, 0.1, "db_up = 1 after the restart")
    # Back in sync: a device added now is accepted.
    db2 = psvc.pg()
    try:
        late = add_device()
        wait_until(lambda: device(clients, psvc, late).ok, 5, 0.1, "device added after outage")
    finally:
        db2.close()
