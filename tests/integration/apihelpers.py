"""apihelpers.py - what the mcs-api tests share (issue #8): the mcs-api
process handle, users made with `mcs user add`, an HTTP client and JWT
forging for the negative cases. Real processes over real HTTP/WebSocket;
nothing is mocked. Fixtures: api_launcher (function), api (module: one
server with an admin and a viewer for a whole test file)."""
import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
import websocket

from mcshelpers import build_dir

JWT_SECRET = "test-jwt-secret-" + "x" * 32


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def forge_jwt(claims, secret=JWT_SECRET, alg="HS256"):
    """A token signed with secret (alg HS256) or unsigned (alg none)."""
    head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    if alg == "none":
        return f"{head}.{body}."
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def add_user(env, name, password, role="admin"):
    r = subprocess.run([str(build_dir() / "mcs"), "user", "add", name, "--role", role],
                       input=password + "\n", env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"mcs user add failed: {r.stdout} {r.stderr}"


class Api:
    """A running mcs-api. .url, .get/.post/.put/.delete(path, token=..., ...)."""

    def __init__(self, proc, env, log_path, port):
        self.proc = proc
        self.env = env
        self.log_path = Path(log_path)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.stopped = False
        self.killed = False
        self.tokens = {}

    def log_tail(self, n=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"mcs-api exited with {self.proc.returncode}:\n{self.log_tail()}",
                            pytrace=False)
            try:
                if requests.get(self.url + "/api/ping", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        pytest.fail(f"mcs-api not ready in {timeout}s:\n{self.log_tail()}", pytrace=False)

    def request(self, method, path, token=None, **kw):
        headers = dict(kw.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kw.setdefault("timeout", 15)
        return requests.request(method, self.url + path, headers=headers, **kw)

    def get(self, path, token=None, **kw):
        return self.request("GET", path, token, **kw)

    def post(self, path, token=None, **kw):
        return self.request("POST", path, token, **kw)

    def put(self, path, token=None, **kw):
        return self.request("PUT", path, token, **kw)

    def delete(self, path, token=None, **kw):
        return self.request("DELETE", path, token, **kw)

    def login(self, user, password):
        r = self.post("/api/auth/login", json={"username": user, "password": password})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    def stop(self, timeout=30):
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"mcs-api ignored SIGTERM:\n{self.log_tail()}", pytrace=False)
        assert self.proc.returncode == 0, \
            f"mcs-api exited {self.proc.returncode} on SIGTERM:\n{self.log_tail(60)}"

    def kill(self):
        self.killed = True
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class ApiLauncher:
    def __init__(self, base_env, tmp_dir):
        self.base_env = dict(base_env)
        self.tmp_dir = Path(tmp_dir)
        self.procs = []
        self.secret_key = secrets.token_hex(32)

    def forget_failed_logins(self):
        """Failed logins are shared by every mcs-api through the table
        login_throttle: one test's failures from 127.0.0.1 must not lock
        the next test out. A new instance starts with none, as before."""
        import psycopg2
        e = self.base_env
        c = psycopg2.connect(host=e["DB_HOST"], port=e["DB_PORT"], user=e["DB_USER"],
                             password=e.get("DB_PASS", ""), dbname=e["DB_NAME"])
        try:
            with c, c.cursor() as cur:
                cur.execute("DELETE FROM login_throttle")
        finally:
            c.close()

    def start(self, wait=True, keep_failed_logins=False, **overrides):
        if not keep_failed_logins:
            self.forget_failed_logins()
        binary = build_dir() / "mcs-api"
        if not binary.exists():
            pytest.fail(f"{binary} not built", pytrace=False)
        port = int(overrides.pop("API_PORT", 0)) or free_port()
        env = dict(self.base_env)
        env.update({"API_PORT": str(port), "API_BIND": "127.0.0.1", "JWT_SECRET": JWT_SECRET,
                    "MCS_SECRET_KEY": self.secret_key, "WEB_ROOT": str(self.tmp_dir / "noweb"),
                    "INSTANCE_ID": "api-" + secrets.token_hex(3)})
        env.update({k: str(v) for k, v in overrides.items()})
        log_path = self.tmp_dir / f"mcs-api-{port}-{len(self.procs)}.log"
        with open(log_path, "wb") as logf:
            proc = subprocess.Popen([str(binary)], env=env, stdin=subprocess.DEVNULL,
                                    stdout=logf, stderr=subprocess.STDOUT, cwd=str(self.tmp_dir))
        a = Api(proc, env, log_path, port)
        self.procs.append(a)
        if wait:
            a.wait_ready()
        return a

    def cleanup(self):
        problems = []
        for a in self.procs:
            if a.killed or a.stopped:
                continue
            if a.proc.poll() is None:
                a.proc.send_signal(signal.SIGTERM)
                try:
                    a.proc.wait(30)
                except subprocess.TimeoutExpired:
                    a.proc.kill()
                    a.proc.wait()
                    problems.append(f"mcs-api ignored SIGTERM:\n{a.log_tail()}")
                    continue
                if a.proc.returncode != 0:
                    problems.append(f"mcs-api exited {a.proc.returncode} at teardown:\n"
                                    f"{a.log_tail(60)}")
            elif a.proc.returncode not in (0, None):
                problems.append(f"mcs-api died with {a.proc.returncode}:\n{a.log_tail(60)}")
        return problems


@pytest.fixture
def api_launcher(base_env, tmp_path):
    launcher = ApiLauncher(base_env, tmp_path)
    yield launcher
    problems = launcher.cleanup()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def api(base_env, tmp_path_factory):
    """One mcs-api for a test file with users .admin/.viewer (names unique),
    their passwords in .passwords and tokens .admin_token/.viewer_token."""
    tmp = tmp_path_factory.mktemp("api")
    launcher = ApiLauncher(base_env, tmp)
    a = launcher.start()
    a.admin = "adm_" + secrets.token_hex(3)
    a.viewer = "view_" + secrets.token_hex(3)
    a.passwords = {a.admin: "admin-pass-" + secrets.token_hex(4),
                   a.viewer: "viewer-pass-" + secrets.token_hex(4)}
    add_user(a.env, a.admin, a.passwords[a.admin], "admin")
    add_user(a.env, a.viewer, a.passwords[a.viewer], "viewer")
    a.admin_token = a.login(a.admin, a.passwords[a.admin])
    a.viewer_token = a.login(a.viewer, a.passwords[a.viewer])
    a.launcher = launcher
    yield a
    problems = launcher.cleanup()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def routes():
    """The server's route table: [(method, pattern, role)] from --routes."""
    r = subprocess.run([str(build_dir() / "mcs-api"), "--routes"], capture_output=True,
                       text=True, timeout=30, env={"PATH": os.environ.get("PATH", "")})
    assert r.returncode == 0, r.stderr
    return [tuple(line.split()) for line in r.stdout.splitlines() if line.strip()]


def concrete(pattern):
    """A pattern with its parameters filled in with harmless values."""
    return (pattern.replace("{sn}", "NOSUCHSN").replace("{id}", "999999999")
            .replace("{username}", "nosuchuser").replace("{date}", "2001-01-01"))


def error_of(r):
    """The {"code","message","detail"} body of an error, checked for shape."""
    j = r.json()
    assert set(j) == {"code", "message", "detail"}, j
    assert isinstance(j["code"], int) and isinstance(j["message"], str) and \
        isinstance(j["detail"], str), j
    return j


def ws_open(a, token=None, timeout=5):
    ws = websocket.create_connection(f"ws://127.0.0.1:{a.port}/ws/dashboard", timeout=timeout)
    if token:
        ws.send(json.dumps({"type": "auth", "token": token}))
        first = json.loads(ws.recv())
        assert first["type"] == "connected", first
    return ws


def recv_until(ws, pred, timeout=5.0):
    """Frames until pred(frame) holds; returns (frame, frames seen)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        ws.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            f = json.loads(ws.recv())
        except websocket.WebSocketTimeoutException:
            break
        seen.append(f)
        if pred(f):
            return f, seen
    pytest.fail(f"no matching frame in {timeout}s; saw types {[s.get('type') for s in seen]}"
                f" last {str(seen[-1:])[:500]}", pytrace=False)


def closed_with(ws, code, timeout=5):
    """(True, data) when the server closes ws with code within timeout
    (frames before the close are skipped)."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ws.settimeout(max(0.05, deadline - time.monotonic()))
            op, data = ws.recv_data(control_frame=True)
            if op == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(data[:2], "big") == code, data
    except (websocket.WebSocketConnectionClosedException, ConnectionError):
        return False, b"closed without close frame"
    except websocket.WebSocketTimeoutException:
        pass
    return False, b"not closed in time"


@pytest.fixture
def screen_alarms(pg):
    """screen_alarms(n) inserts n open HIGH alarms (on screen, docs/ALARMS.md)
    of fresh device names and returns their ids; deleted afterwards."""
    from mcshelpers import new_sn
    made = []

    def make(n=1):
        sn = new_sn("S")  # one open alarm per device and type: sn + "_1", ...
        with pg.cursor() as cur:
            cur.execute("INSERT INTO alarm_logs (sn, alarm_type, level, value, threshold) "
                        "SELECT %s || '_' || g, 'HIGH', 2, 900, 100 FROM generate_series(1, %s) g "
                        "RETURNING id", (sn, n))
            ids = sorted(i for (i,) in cur.fetchall())
        made.extend(ids)
        return ids
    yield make
    with pg.cursor() as cur:
        cur.execute("DELETE FROM alarm_logs WHERE id = ANY(%s)", (made,))


def silence_rows(pg, user):
    """The alarm.silence audit rows of user: (username, target, after, ip)."""
    with pg.cursor() as cur:
        cur.execute("SELECT username, target, after, ip FROM audit_logs WHERE action = "
                    "'alarm.silence' AND username = %s ORDER BY id", (user,))
        return cur.fetchall()
