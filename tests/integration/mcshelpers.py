"""mcshelpers.py - what the integration tests share besides fixtures: the
mcsd process handle, MQTT publishers (paho, MQTT v5) and polling helpers.

Everything here talks to real processes over real protocols; nothing is
mocked. conftest.py turns these into fixtures; tests may import them too
(`from mcshelpers import telemetry, wait_until`)."""
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

REPO = Path(__file__).resolve().parents[2]


def build_dir():
    """The build directory under test: MCS_BUILD_DIR (the ASan build in
    `make test`), else <repo>/build."""
    return Path(os.environ.get("MCS_BUILD_DIR") or REPO / "build")


def parse_env(path):
    """KEY=VALUE lines of a svc.sh env file into a dict (comments skipped)."""
    env = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        env[k.strip()] = v.strip()
    return env


def wait_until(fn, timeout=10.0, interval=0.05, desc="condition", detail=None):
    """Calls fn until it returns something truthy; returns that value. On
    timeout fails the test, naming desc and, when given, detail() (a string
    describing the last observed state)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            extra = ""
            if detail is not None:
                try:
                    extra = "\n" + str(detail())
                except Exception as e:  # the state itself may be unreachable
                    extra = f"\n(detail unavailable: {e!r})"
            pytest.fail(f"timed out after {timeout:.1f}s waiting for {desc}{extra}",
                        pytrace=False)
        time.sleep(interval)


def new_sn(prefix="T"):
    """A unique, valid serial number: prefix + 8 random upper-case hex."""
    return prefix + secrets.token_hex(4).upper()


def telemetry(ts=None, seq=0, v_raw=100.0, temp=25.0, humi=50.0, bat=85, rssi=-70,
              net="4G", ver="1.0.2", err=0, **extra):
    """A seed-shaped telemetry dict (R-MQ-2). A field given as None is left
    out (e.g. humi=None for a device without humidity)."""
    d = {"ts": int(time.time()) if ts is None else ts, "seq": seq, "v_raw": v_raw,
         "temp": temp, "humi": humi, "bat": bat, "rssi": rssi, "net": net, "ver": ver,
         "err": err}
    d.update(extra)
    return {k: v for k, v in d.items() if v is not None}


def up_topic(sn, prefix="mcs"):
    return f"{prefix}/{sn}/up"


# --------------------------------------------------------------------------
# MQTT


def close_client(c, abrupt=False):
    """Stops a paho client that runs loop_start(): a clean DISCONNECT, or with
    abrupt=True the TCP connection cut at once (FIN, no MQTT DISCONNECT) so
    that the broker publishes the Last Will; no reconnect either way."""
    if abrupt:
        c._thread_terminate = True
        sock = c.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        c.loop_stop()
        if sock is not None:
            sock.close()
        return
    try:
        c.disconnect()
    finally:
        c.loop_stop()


class Publisher:
    """One paho MQTT v5 client with its network thread. Anonymous on the
    plain loopback listener unless username/password are given."""

    def __init__(self, host, port, client_id=None, will=None, username=None,
                 password=None, inflight=1000, keepalive=60, tls_ca=None):
        self.client_id = client_id or "it-pub-" + secrets.token_hex(4)
        self.c = mqtt.Client(client_id=self.client_id, protocol=mqtt.MQTTv5)
        self.c.max_inflight_messages_set(inflight)
        if username is not None:
            self.c.username_pw_set(username, password)
        if tls_ca:
            self.c.tls_set(ca_certs=tls_ca)
        if will:
            # will = (topic, payload, qos, retain)
            self.c.will_set(*will)
        self._connected = threading.Event()
        self.connect_rc = None
        self.c.on_connect = self._on_connect
        self.c.connect(host, int(port), keepalive=keepalive, clean_start=True)
        self.c.loop_start()
        if not self._connected.wait(10) or self.connect_rc != 0:
            self.c.loop_stop()
            raise AssertionError(f"MQTT connect to {host}:{port} failed: rc={self.connect_rc}")

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.connect_rc = rc.value if hasattr(rc, "value") else rc
        self._connected.set()

    def publish(self, topic, payload, qos=1, wait=True, timeout=10, properties=None):
        """Publishes bytes/str/dict (dicts are JSON-encoded). With wait, blocks
        until PUBACK (QoS 1) or until written (QoS 0), failing on timeout.
        Returns the MQTTMessageInfo."""
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        info = self.c.publish(topic, payload, qos=qos, properties=properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError(f"publish to {topic!r} failed: {mqtt.error_string(info.rc)}")
        if wait:
            info.wait_for_publish(timeout)
            if not info.is_published():
                raise AssertionError(f"no PUBACK for {topic!r} within {timeout}s")
        return info

    def reading(self, sn, qos=1, wait=True, prefix="mcs", **fields):
        """Publishes one telemetry message for sn; fields override the
        defaults of telemetry(). Returns the payload dict sent."""
        d = telemetry(**fields)
        self.publish(up_topic(sn, prefix), d, qos=qos, wait=wait)
        return d

    def publish_many(self, msgs, qos=1, timeout=60):
        """Publishes [(topic, payload), ...] as fast as the inflight window
        allows and waits for every acknowledgement. Returns the count acked."""
        infos = [self.publish(t, p, qos=qos, wait=False) for t, p in msgs]
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.01, deadline - time.monotonic()))
        acked = sum(1 for i in infos if i.is_published())
        if acked != len(infos):
            raise AssertionError(f"only {acked}/{len(infos)} publishes acknowledged "
                                 f"within {timeout}s")
        return acked

    def close(self, abrupt=False):
        """Disconnects cleanly, or with abrupt=True closes the TCP socket
        without DISCONNECT so that the broker sends the Last Will."""
        close_client(self.c, abrupt)


class RatePublisher(threading.Thread):
    """Background QoS 1 publisher of a fixed message list at about `rate`
    messages per second, counting which messages the broker acknowledged.
    After join(): .sent (publish calls made), .acked_keys() (keys of the
    acknowledged messages). msgs = [(key, topic, payload_bytes), ...]."""

    def __init__(self, host, port, msgs, rate=1000, qos=1):
        super().__init__(daemon=True)
        self.pub = Publisher(host, port, inflight=1000)
        self.msgs = msgs
        self.rate = rate
        self.qos = qos
        self.infos = []
        self.sent = 0
        self.error = None
        self._halt = threading.Event()

    def run(self):
        try:
            t0 = time.monotonic()
            for i, (key, topic, payload) in enumerate(self.msgs):
                if self._halt.is_set():
                    break
                due = t0 + i / self.rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                info = self.pub.c.publish(topic, payload, qos=self.qos)
                self.infos.append((key, info))
                self.sent += 1
        except Exception as e:  # surfaced by the test through .error
            self.error = e

    def stop(self):
        self._halt.set()

    def wait_acked(self, timeout=30):
        """Waits for the PUBACKs of everything sent; returns the acked keys."""
        self.join(timeout)
        deadline = time.monotonic() + timeout
        for _, info in self.infos:
            info.wait_for_publish(max(0.01, deadline - time.monotonic()))
        return self.acked_keys()

    def acked_keys(self):
        return [k for k, info in self.infos if info.is_published()]

    def close(self):
        self.stop()
        self.join(5)
        self.pub.close()


def latency_props():
    """MQTT v5 user property mcs-pt = publish time in microseconds."""
    p = Properties(PacketTypes.PUBLISH)
    p.UserProperty = ("mcs-pt", str(int(time.time() * 1e6)))
    return p


# --------------------------------------------------------------------------
# mcsd


def _num(v):
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


class Mcsd:
    """A running mcsd. Created by McsdLauncher.start()."""

    def __init__(self, proc, env, log_path, redis_factory):
        self.proc = proc
        self.env = env
        self.instance_id = env["INSTANCE_ID"]
        self.spool_dir = env["SPOOL_DIR"]
        self.log_path = Path(log_path)
        self._redis_factory = redis_factory
        self._rds = None
        self.stopped = False  # stop() was called (its exit code checked)
        self.killed = False   # kill() was called (exit code not meaningful)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    # -- logs
    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        lines = self.log_text().splitlines()
        return "\n".join(lines[-n:])

    def log_lines(self):
        """The JSON log lines parsed; non-JSON lines (sanitizer reports) are
        returned as {"raw": line}."""
        out = []
        for line in self.log_text().splitlines():
            try:
                v = json.loads(line)
                out.append(v if isinstance(v, dict) else {"raw": line})
            except ValueError:
                out.append({"raw": line})
        return out

    def _is_ready(self):
        return any(line.get("msg") == "ready" for line in self.log_lines())

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while not self._is_ready():
            if self.proc.poll() is not None:
                pytest.fail(f"mcsd {self.instance_id} exited with {self.proc.returncode} "
                            f"before ready; log tail:\n{self.log_tail()}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"mcsd {self.instance_id} not ready within {timeout}s; "
                            f"log tail:\n{self.log_tail()}", pytrace=False)
            time.sleep(0.05)

    # -- control
    def stop(self, timeout=30):
        """SIGTERM, wait, and require exit code 0 (with ASan: no leak/UB)."""
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"mcsd {self.instance_id} did not exit within {timeout}s of "
                            f"SIGTERM; log tail:\n{self.log_tail()}", pytrace=False)
        rc = self.proc.returncode
        if rc != 0:
            pytest.fail(f"mcsd {self.instance_id} exited with {rc} on SIGTERM; "
                        f"log tail:\n{self.log_tail(60)}", pytrace=False)
        return rc

    def kill(self):
        """SIGKILL (a crash, as far as mcsd can tell)."""
        self.killed = True
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    # -- metrics
    @property
    def rds(self):
        if self._rds is None:
            self._rds = self._redis_factory()
        return self._rds

    def metrics(self):
        h = self.rds.hgetall(f"mcs:metrics:{self.instance_id}")
        return {k: _num(v) for k, v in h.items()}

    def metric(self, name, default=0):
        return self.metrics().get(name, default)

    def wait_metric(self, name, pred, timeout=10, desc=None):
        """Polls the metrics hash until pred(value) holds (a missing field is
        0); returns the value, or fails showing the metrics and the log."""
        def check():
            v = self.metrics().get(name, 0)
            return (True, v) if pred(v) else None
        r = wait_until(check, timeout, 0.05, desc or f"metric {name} of {self.instance_id}",
                       lambda: f"metrics: {self.metrics()}\nalive: {self.alive()}\n"
                               f"log tail:\n{self.log_tail(20)}")
        return r[1]

    def wait_metrics_refresh(self, times=2, timeout=10):
        """Waits until the metrics hash has been rewritten `times` more times
        (updated_ms changes), so that what is read next is current."""
        for _ in range(times):
            start = self.metric("updated_ms", None)
            wait_until(lambda: self.metric("updated_ms", None) != start, timeout, 0.02,
                       f"metrics refresh of {self.instance_id}",
                       lambda: f"alive: {self.alive()}\nlog tail:\n{self.log_tail(20)}")


class McsdLauncher:
    """Starts mcsd processes and accounts for every one of them at teardown."""

    def __init__(self, binary, base_env, tmp_dir, redis_factory):
        self.binary = str(binary)
        self.base_env = dict(base_env)
        self.tmp_dir = Path(tmp_dir)
        self.redis_factory = redis_factory
        self.procs = []
        self._n = 0

    def start(self, wait_ready=True, args=(), **overrides):
        """Starts mcsd with base_env + test defaults + overrides (all str()).
        Defaults: a unique INSTANCE_ID, and a unique MQTT_SHARE_GROUP since a
        stopped instance's persistent session stays in its share group and
        would keep taking a share of later tests' messages."""
        if not Path(self.binary).exists():
            pytest.fail(f"{self.binary} does not exist (build it first)", pytrace=False)
        self._n += 1
        env = dict(self.base_env)
        iid = overrides.get("INSTANCE_ID") or f"it-{secrets.token_hex(4)}"
        env.update({
            "INSTANCE_ID": iid,
            "MQTT_SHARE_GROUP": "g" + secrets.token_hex(4),
            "SPOOL_DIR": str(self.tmp_dir / f"spool-{iid}"),
            "METRICS_INTERVAL_MS": "200",
            "DEVICE_FLUSH_S": "1",
            "BATCH_MAX_MS": "50",
        })
        env.update({k: str(v) for k, v in overrides.items()})
        Path(env["SPOOL_DIR"]).mkdir(parents=True, exist_ok=True)
        log_path = self.tmp_dir / f"mcsd-{iid}-{self._n}.log"
        with open(log_path, "wb") as logf:
            proc = subprocess.Popen([self.binary, *args], env=env, stdin=subprocess.DEVNULL,
                                    stdout=logf, stderr=subprocess.STDOUT,
                                    cwd=str(self.tmp_dir))
        h = Mcsd(proc, env, log_path, self.redis_factory)
        self.procs.append(h)
        if wait_ready:
            h.wait_ready()
        return h

    def cleanup(self):
        """Stops what still runs; returns a list of problems: a process that
        exited by itself with a non-zero code, or exits non-zero on SIGTERM."""
        problems = []
        for h in self.procs:
            if h.killed:
                continue
            if h.proc.poll() is None:
                h.proc.send_signal(signal.SIGTERM)
                try:
                    h.proc.wait(30)
                except subprocess.TimeoutExpired:
                    h.proc.kill()
                    h.proc.wait()
                    problems.append(f"mcsd {h.instance_id} ignored SIGTERM for 30s; "
                                    f"log tail:\n{h.log_tail()}")
                    continue
                if h.proc.returncode != 0:
                    problems.append(f"mcsd {h.instance_id} exited with {h.proc.returncode} "
                                    f"on SIGTERM at teardown; log tail:\n{h.log_tail(60)}")
            elif not h.stopped and h.proc.returncode != 0:
                problems.append(f"mcsd {h.instance_id} died by itself with "
                                f"{h.proc.returncode}; log tail:\n{h.log_tail(60)}")
        for h in self.procs:
            if h._rds is not None:
                h._rds.close()
        return problems
