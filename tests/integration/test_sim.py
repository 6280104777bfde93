"""test_sim.py - simulated devices (mcs-sim: the firmware core with a POSIX
HAL, issue #11, R-FW-1/R-FW-2) against the real broker with the mcs_auth
plugin (TLS, device_{sn} logins, R-MQ-6) and a real mcsd storing into
PostgreSQL: a device that loses its link caches its readings in the
offline ring and delivers every one of them, in order, exactly once; a
debug command published through the broker switches the device to 1 s and
back by itself (R-MQ-4); a malformed command is ignored and reported."""
import json
import os
import queue
import secrets
import shutil
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest

from mcshelpers import REPO, McsdLauncher, build_dir, close_client, wait_until
from simhelpers import Sim
from test_plugin import PluginServices, _sanitizer_preload, metrics

SVC = REPO / "scripts" / "svc.sh"


@pytest.fixture(scope="module")
def ssvc():
    """Plugin-mode Mosquitto (+ PostgreSQL, Redis) of this module."""
    build = build_dir()
    plugin = build / "mcs_auth.so"
    for f in (plugin, build / "mcs", build / "mcsd", build / "mcs-sim"):
        if not f.exists():
            pytest.fail(f"{f} not built", pytrace=False)
    run_dir = REPO / ".run" / f"sim-{os.getpid()}"
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "asan").mkdir(parents=True)
    env = dict(os.environ)
    env.update({"MCS_BROKER_AUTH": "plugin", "MCS_AUTH_PLUGIN": str(plugin),
                "MCS_CLI": str(build / "mcs"),
                "MCS_AUTH_PLUGIN_OPTS": "metrics_interval_ms=200"})
    preload = _sanitizer_preload(plugin)
    if preload:
        env["MCS_BROKER_PRELOAD"] = " ".join(preload)
        env["ASAN_OPTIONS"] = ("detect_leaks=1:abort_on_error=1:halt_on_error=1:"
                               f"log_path={run_dir}/asan/report")
    try:
        r = subprocess.run(["bash", str(SVC), "start", str(run_dir)], env=env,
                           capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            pytest.fail(f"svc.sh start (plugin mode) failed:\n{r.stdout}\n{r.stderr}",
                        pytrace=False)
        svc = PluginServices(run_dir, env)
        menv = dict(os.environ)
        menv.pop("ENV_FILE", None)
        menv.update(svc)
        m = subprocess.run([str(build / "mcsd"), "--migrate"], env=menv, cwd=str(run_dir),
                           capture_output=True, text=True, timeout=120)
        assert m.returncode == 0, m.stderr
        rds = svc.redis()
        wait_until(lambda: rds.hget("mcs:metrics:broker", "registry_loaded") == "1", 20, 0.1,
                   "the plugin's first registry load", lambda: svc.broker_log()[-2000:])
        rds.close()
        yield svc
    finally:
        subprocess.run(["bash", str(SVC), "stop", str(run_dir)], env=env, capture_output=True,
                       timeout=180)
        if not os.environ.get("MCS_KEEP_RUN"):
            shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def db(ssvc):
    c = ssvc.pg()
    yield c
    c.close()


@pytest.fixture
def device_sn(ssvc, db):
    """Registers one device SN (prefix + 000000, as mcs-sim names its first
    device) and waits until the plugin knows it. Returns (prefix, sn)."""
    prefix = "F" + secrets.token_hex(4).upper()
    sn = prefix + "000000"
    rds = ssvc.redis()
    before = metrics(rds).get("registry_updates", 0)
    with db.cursor() as cur:
        cur.execute("INSERT INTO devices (sn, calib_k, calib_b) VALUES (%s, 0.5, -50)", (sn,))
    wait_until(lambda: metrics(rds).get("registry_updates", 0) > before, 10, 0.02,
               f"the plugin to learn about {sn}")
    rds.close()
    return prefix, sn


@pytest.fixture
def worker_mcsd(ssvc, tmp_path):
    env = dict(os.environ)
    env.pop("ENV_FILE", None)
    env.pop("MQTT_TLS_CAFILE", None)
    env.update(ssvc)
    env.update({"MQTT_USER": "worker", "MQTT_PASS": ssvc["WORKER_PASS"], "LOG_LEVEL": "INFO"})
    launcher = McsdLauncher(build_dir() / "mcsd", env, tmp_path, ssvc.redis)
    yield launcher.start()
    problems = launcher.cleanup()
    assert not problems, problems


@pytest.fixture
def sims(ssvc, tmp_path):
    """sims(prefix, *args) starts mcs-sim over TLS as device_{sn}."""
    made = []

    def start(prefix, *args):
        env = dict(os.environ)
        env["VENDOR_SECRET"] = ssvc["VENDOR_SECRET"]
        s = Sim(tmp_path, "localhost", ssvc["MQTT_TLS_PORT"],
                ["--cafile", ssvc["MQTT_CAFILE"], "--vendor-secret", "@env",
                 "--sn-prefix", prefix, "--devices", "1", "--leaks-per-hour", "0",
                 "--reconnect-min-ms", "300", "--reconnect-max-ms", "1000", *args], env=env)
        made.append(s)
        return s
    yield start
    for s in made:
        s.kill()


class Watcher:
    """The admin's view of one device on the broker (plain listener): every
    message on mcs/{sn}/up and mcs/{sn}/status in arrival order."""

    def __init__(self, ssvc, sn):
        self.q = queue.Queue()
        self.c = mqtt.Client(client_id="adm-" + secrets.token_hex(3), protocol=mqtt.MQTTv5)
        self.c.username_pw_set("admin", ssvc["ADMIN_PASS"])
        self.c.on_message = lambda c, u, m: self.q.put((time.monotonic(), m.topic,
                                                        m.payload.decode(errors="replace")))
        self.c.connect("127.0.0.1", int(ssvc["MQTT_PORT"]), keepalive=60)
        self.c.loop_start()
        self.c.subscribe([(f"mcs/{sn}/up", 1), (f"mcs/{sn}/status", 1)])
        self.sn = sn
        self.seen = []

    def drain(self):
        while True:
            try:
                self.seen.append(self.q.get_nowait())
            except queue.Empty:
                return self.seen

    def ups(self):
        return [(t, json.loads(p)) for t, topic, p in self.drain() if topic.endswith("/up")]

    def statuses(self):
        return [json.loads(p) for t, topic, p in self.drain() if topic.endswith("/status")]

    def publish(self, topic, payload):
        info = self.c.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published()

    def close(self):
        close_client(self.c)


@pytest.fixture
def watcher(ssvc):
    made = []

    def make(sn):
        w = Watcher(ssvc, sn)
        made.append(w)
        return w
    yield make
    for w in made:
        w.close()


def rows(db, sn):
    with db.cursor() as cur:
        cur.execute("SELECT seq, extract(epoch FROM time)::bigint FROM sensor_data "
                    "WHERE sn = %s ORDER BY time, seq", (sn,))
        return cur.fetchall()


def test_offline_device_delivers_every_cached_reading_in_order_once(
        ssvc, db, device_sn, worker_mcsd, sims, watcher):
    prefix, sn = device_sn
    w = watcher(sn)
    time.sleep(0.3)  # the admin's SUBACK before the first reading
    sim = sims(prefix, "--interval", "1")
    wait_until(lambda: len(rows(db, sn)) >= 3, 20, 0.1, f"first readings of {sn} stored",
               lambda: sim.log_text()[-1000:])
    # Link loss of 8 readings at 1 s: the connection dies without DISCONNECT.
    sim.control("offline 0 8")
    wait_until(lambda: any(s.get("status") == "offline" for s in w.statuses()), 10, 0.1,
               "the broker to publish the Last Will of the cut device")
    d = wait_until(lambda: (lambda x: x if x["state"] == "offline" and x["ring"] >= 5 else None)(
        sim.dev()), 15, 0.2, "readings cached in the offline ring")
    assert d["link_losses"] == 1
    # Back online: the ring drains, then live data flows again.
    d = wait_until(lambda: (lambda x: x if x["state"] == "running" and x["ring"] == 0 and
                            x["connects"] == 2 else None)(sim.dev()), 30, 0.2,
                   "reconnect and the ring sent", lambda: sim.log_text()[-1000:])
    time.sleep(3)
    final = sim.stop()["devs"][0]
    n = final["seq_next"]
    assert final["cached"] >= 7, final
    assert final["acked_backlog"] == final["cached"], final
    assert final["dropped_full"] == 0 and final["lost"] == 0, final
    assert final["samples"] == n
    # Ground truth: every reading the device took is in sensor_data once.
    stored = wait_until(lambda: (lambda r: r if len(r) >= n else None)(rows(db, sn)), 15, 0.1,
                        f"all {n} readings of {sn} stored", lambda: rows(db, sn))
    seqs = [s for s, _ in stored]
    assert sorted(seqs) == list(range(n)), seqs
    # Stored with the time they were taken (not when they arrived): the
    # order by time is the order by seq, one second apart.
    assert seqs == list(range(n))
    times = [t for _, t in stored]
    assert all(0 <= b - a <= 3 for a, b in zip(times, times[1:])), times
    # Arrival at the broker: the cached readings came in order, once, before
    # any newer live reading.
    got = [p["seq"] for _, p in w.ups()]
    first = got[0]
    assert got == list(range(first, n)), got


def test_debug_command_switches_to_1s_and_back(ssvc, db, device_sn, worker_mcsd, sims, watcher):
    prefix, sn = device_sn
    w = watcher(sn)
    time.sleep(0.3)
    sim = sims(prefix)  # default 10 s interval
    wait_until(lambda: len(rows(db, sn)) >= 1, 20, 0.1, f"first reading of {sn} stored")
    assert sim.dev()["interval_ms"] == 10000
    # The admin's debug button: through the broker, QoS 1 (R-MQ-4).
    w.publish(f"mcs/{sn}/cmd", json.dumps({"cmd": "debug", "duration": 6}))
    t_cmd = time.monotonic()
    wait_until(lambda: any(s.get("cmd") == "debug" and s.get("result") == "ok"
                           for s in w.statuses()), 10, 0.1, "the device's report of the command")
    assert sim.dev()["interval_ms"] == 1000
    # A malformed command on the way is ignored and reported; debug goes on.
    w.publish(f"mcs/{sn}/cmd", "{\"cmd\":\"debug\",\"duration\":")
    wait_until(lambda: any(s.get("result") == "rejected" for s in w.statuses()), 10, 0.1,
               "the device's report of the malformed command")
    time.sleep(max(0.0, t_cmd + 6 - time.monotonic()))
    wait_until(lambda: sim.dev()["interval_ms"] == 10000, 5, 0.2, "debug mode to end by itself")
    # The next reading comes 10 s after the last fast one.
    wait_until(lambda: any(t - t_cmd > 7.5 for t, _ in w.ups()), 20, 0.2,
               "a reading after debug mode ended")
    final = sim.stop()["devs"][0]
    assert final["cmds_ok"] == 1 and final["cmds_rejected"] == 1, final
    ups = [(t - t_cmd, p) for t, p in w.ups()]
    fast = [t for t, _ in ups if 0 <= t <= 6.5]
    assert len(fast) >= 5, ups  # 1 s readings while in debug mode
    after = [t for t, _ in ups if t > 7.5]
    assert after and after[0] - fast[-1] > 8, ups  # back to 10 s
    # And the server stored every one of them.
    n = final["seq_next"]
    stored = wait_until(lambda: (lambda r: r if len(r) >= n else None)(rows(db, sn)), 15, 0.1,
                        f"all {n} readings of {sn} stored")
    assert [s for s, _ in stored] == list(range(n))


def test_gas_release_rises_past_level2_and_decays(ssvc, db, device_sn, worker_mcsd, sims):
    prefix, sn = device_sn
    # Clean air first, then a 6 s release towards 2500 mV over the zero.
    sim = sims(prefix, "--interval", "1", "--leak", "0@4+6:2500")
    def volts():
        with db.cursor() as cur:
            cur.execute("SELECT seq, v_raw FROM sensor_data WHERE sn = %s ORDER BY seq", (sn,))
            return cur.fetchall()
    got = wait_until(lambda: (lambda r: r if len(r) >= 18 else None)(volts()), 40, 0.2,
                     f"18 readings of {sn}", lambda: volts())
    sim.stop()
    v = [x for _, x in got]
    peak = max(v)
    i = v.index(peak)
    assert max(v[:3]) < 600, v          # clean air: well under level 1 (1100 mV)
    assert peak > 2100, v               # past level 2
    assert 3 <= i <= 12, v              # during the release
    assert v[-1] < 0.95 * peak, v       # ventilated away afterwards
    assert all(b <= a + 20 for a, b in zip(v[i + 2:], v[i + 3:])), v  # decaying


def fw_ver(db, sn):
    with db.cursor() as cur:
        cur.execute("SELECT fw_ver FROM devices WHERE sn = %s", (sn,))
        v = cur.fetchone()[0]
    db.commit()
    return v


def test_ota_through_broker_refuses_bad_image_and_boots_good_one(ssvc, db, device_sn, sims,
                                                               watcher, worker_mcsd):
    prefix, sn = device_sn
    w = watcher(sn)
    time.sleep(0.3)
    sim = sims(prefix, "--interval", "1")
    # The version comes once per connection in the online status, not in
    # every reading (R-MQ-8); the server keeps it in devices.fw_ver.
    wait_until(lambda: w.ups(), 20, 0.1, f"readings of {sn}")
    assert all("ver" not in p and "net" not in p for _, p in w.ups())
    old_ver = [s["ver"] for s in w.statuses() if s.get("status") == "online" and "ver" in s][0]
    wait_until(lambda: fw_ver(db, sn) == old_ver, 20, 0.2, f"fw_ver {old_ver} stored",
               lambda: fw_ver(db, sn))
    url = "https://fw.example.com/mcs/v9.9.9.bin"
    good = subprocess.run([str(build_dir() / "mcs-sim"), "--ota-md5", url], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert len(good) == 32
    # A wrong digest: downloaded, refused, the running image stays.
    w.publish(f"mcs/{sn}/cmd", json.dumps({"cmd": "ota", "url": url, "md5": "0" * 32}))
    wait_until(lambda: any(s.get("cmd") == "ota" and s.get("result") == "failed"
                           for s in w.statuses()), 15, 0.1, "the refused image reported")
    assert [s.get("reason") for s in w.statuses() if s.get("result") == "failed"] == ["md5"]
    # The right one: committed, rebooted into, and the readings say so.
    w.publish(f"mcs/{sn}/cmd", json.dumps({"cmd": "ota", "url": url, "md5": good}))
    wait_until(lambda: any(s.get("cmd") == "ota" and s.get("result") == "done"
                           for s in w.statuses()), 15, 0.1, "the new image reported")
    wait_until(lambda: any(s.get("ver") == "9.9.9" for s in w.statuses()), 20, 0.1,
               "the new firmware version in the online status after the reboot")
    wait_until(lambda: fw_ver(db, sn) == "9.9.9", 20, 0.2, "fw_ver 9.9.9 stored",
               lambda: fw_ver(db, sn))
    final = sim.stop()["devs"][0]
    assert final["boots"] == 2 and final["ver"] == "9.9.9", final  # core counters restart at boot
    vers = [s["ver"] for s in w.statuses() if "ver" in s]
    assert vers == [old_ver, "9.9.9"] and old_ver != "9.9.9", vers


def test_wrong_password_fleet_is_refused(ssvc, device_sn, sims):
    prefix, sn = device_sn
    env_secret = "not-the-vendor-secret"
    s = sims(prefix, "--vendor-secret", env_secret, "--duration", "3")
    s.proc.wait(20)
    final = s.stop()["devs"][0]
    assert final["connects"] == 0 and final["sent_live"] == 0, final
    assert "refused" in s.log_text() or "not authorised" in s.log_text().lower()
