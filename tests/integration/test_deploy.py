"""test_deploy.py - the native deployment files in deploy/ (issue #18):
the hardened systemd units, checked by systemd-analyze (verify and the
offline security score), and the nginx site, checked by `nginx -t` and by
real requests through it (TLS, redirect, headers, gzip, cache, upload limit,
WebSocket upgrade, client address) to a real mcs-api."""
import gzip
import http.client
import json
import re
import shutil
import secrets
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests
import websocket

from apihelpers import api_launcher, free_port  # noqa: F401
from mcshelpers import REPO, build_dir, wait_until

UNITS = ("mcsd.service", "mcs-api.service", "mcs-mosquitto.service")
SYSTEMD = REPO / "deploy" / "systemd"
NGINX_DIR = REPO / "deploy" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def unit_copies(tmp_path):
    """The units with ExecStart pointing at this build (verify checks that
    the program exists and is executable)."""
    out = []
    for u in UNITS:
        p = tmp_path / u
        p.write_text((SYSTEMD / u).read_text().replace("/opt/mcs/bin", str(build_dir())))
        out.append(p)
    return out


def directives(unit):
    d = {}
    for line in (SYSTEMD / unit).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            d.setdefault(k.strip(), []).append(v.strip())
    return d


def mib(v):
    n, unit = re.fullmatch(r"(\d+)([KMG]?)", v).groups()
    return int(n) * {"K": 1 / 1024, "M": 1, "G": 1024, "": 1 / 1048576}[unit]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_units_verify_and_are_hardened(tmp_path):
    units = unit_copies(tmp_path)
    r = subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr
    for u in units:
        s = subprocess.run(["systemd-analyze", "security", "--offline=true", str(u)],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", s.stdout + s.stderr)
        assert m, s.stdout + s.stderr
        # 0 is a sealed box, 10 unprotected; a plain service scores 9.6.
        assert float(m.group(1)) <= 2.0, f"{u.name}: exposure {m.group(1)}"
    total = 0
    for u in UNITS:
        d = directives(u)
        for k, v in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                     ("PrivateTmp", "yes"), ("ProtectHome", "yes"),
                     ("CapabilityBoundingSet", ""), ("Restart", "always")):
            assert d.get(k) == [v], f"{u}: {k}={d.get(k)}"
        assert d.get("ReadWritePaths"), f"{u}: no ReadWritePaths"
        assert d.get("User") and d["User"] != ["root"], u
        total += mib(d["MemoryMax"][0])
    # The three together leave a 2 GB box >= 1 GB for PostgreSQL, Redis,
    # nginx and the system (docs/OPERATIONS.md, memory budget).
    assert total <= 1024, total


class Nginx:
    """deploy/nginx/mcs-api.conf rendered for loopback ports, this run's TLS
    certificate and a web root, under its own prefix."""

    def __init__(self, root, services, api_port):
        self.root = root
        self.http_port, self.https_port = free_port(), free_port()
        tls = Path(services.run_dir) / "tls"
        self.cafile = str(tls / "ca.crt")
        web = root / "web"
        (web / "assets").mkdir(parents=True)
        (web / "index.html").write_text("<!doctype html><title>MCS</title>"
                                        "<script src=/assets/app-3f9a1c.js></script>")
        (web / "assets" / "app-3f9a1c.js").write_text("console.log('mcs');\n" * 400)
        (root / "snippets").mkdir()
        for f in ("mcs-security-headers.conf", "mcs-proxy-hide.conf"):
            shutil.copy(NGINX_DIR / f, root / "snippets")
        site = (NGINX_DIR / "mcs-api.conf").read_text()
        for a, b in (("server 127.0.0.1:8080;", f"server 127.0.0.1:{api_port};"),
                     ("listen 80;", f"listen 127.0.0.1:{self.http_port};"),
                     ("listen [::]:80;", ""),
                     ("listen 443 ssl http2;", f"listen 127.0.0.1:{self.https_port} ssl http2;"),
                     ("listen [::]:443 ssl http2;", ""),
                     ("/etc/mcs/tls/server.crt", str(tls / "server.crt")),
                     ("/etc/mcs/tls/server.key", str(tls / "server.key")),
                     ("/etc/nginx/snippets/", f"{root}/snippets/"),
                     ("/opt/mcs/web/dist", str(web)),
                     ("/var/www/certbot", str(root / "certbot"))):
            assert a in site, f"deploy/nginx/mcs-api.conf no longer has {a!r}"
            site = site.replace(a, b)
        (root / "mcs.conf").write_text(site)
        temp = " ".join(f"{k}_temp_path {root}/{k};" for k in
                        ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (root / "nginx.conf").write_text(
            f"user root;\nworker_processes 1;\npid {root}/nginx.pid;\n"
            f"error_log {root}/error.log warn;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n"
            f"  access_log {root}/access.log;\n  {temp}\n  include {root}/mcs.conf;\n}}\n")
        self.cmd = [NGINX, "-p", str(root), "-c", str(root / "nginx.conf")]

    def test_config(self):
        return subprocess.run(self.cmd + ["-t"], capture_output=True, text=True, timeout=30)

    def start(self):
        subprocess.run(self.cmd, check=True, capture_output=True, timeout=30)
        wait_until(lambda: (self.root / "nginx.pid").exists(), 10, desc="nginx pid file")

    def stop(self):
        pid = self.root / "nginx.pid"
        if pid.exists():
            n = int(pid.read_text())
            subprocess.run(["kill", "-QUIT", str(n)], capture_output=True)
            wait_until(lambda: not pid.exists(), 10, desc="nginx stopped")

    def url(self, path):
        return f"https://localhost:{self.https_port}{path}"


@pytest.fixture
def stack(services, api_launcher, tmp_path):  # noqa: F811
    root = REPO / ".run" / f"nginx-{tmp_path.name}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    api = api_launcher.start(API_TRUSTED_PROXY="127.0.0.1")
    ng = Nginx(root, services, api.port)
    yield api, ng
    ng.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx not installed (scripts/deps.sh)")
def test_nginx_site_in_front_of_mcs_api(stack, pg):
    api, ng = stack
    t = ng.test_config()
    assert t.returncode == 0, t.stderr
    assert "syntax is ok" in t.stderr and "test is successful" in t.stderr
    ng.start()
    ca = ng.cafile

    # HTTP only redirects.
    r = requests.get(f"http://127.0.0.1:{ng.http_port}/devices?x=1", allow_redirects=False,
                     timeout=10)
    assert r.status_code == 301 and r.headers["Location"] == "https://127.0.0.1/devices?x=1"

    # The API through TLS, with the security headers once.
    r = requests.get(ng.url("/api/ping"), verify=ca, timeout=10)
    assert r.status_code == 200, r.text
    csp = r.headers["Content-Security-Policy"]
    # Once: requests joins repeated headers with ", ".
    assert "frame-ancestors 'none'" in csp and csp.count("default-src") == 1
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    assert r.headers["X-Frame-Options"] == "DENY"

    # The web app: index.html revalidated, hashed assets gzipped and cached
    # for a year, both with the headers.
    r = requests.get(ng.url("/alarms"), verify=ca, timeout=10)   # a client-side route
    assert r.status_code == 200 and "<title>MCS</title>" in r.text
    assert r.headers["Cache-Control"] == "no-cache" and "Content-Security-Policy" in r.headers
    raw = requests.get(ng.url("/assets/app-3f9a1c.js"), verify=ca, timeout=10, stream=True,
                       headers={"Accept-Encoding": "gzip"})
    assert raw.headers["Content-Encoding"] == "gzip"
    assert raw.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "nosniff" == raw.headers["X-Content-Type-Options"]
    body = raw.raw.read()
    assert len(body) < 8000 and gzip.decompress(body) == b"console.log('mcs');\n" * 400

    # Uploads above the limit stop at nginx.
    r = requests.post(ng.url("/api/floorplan"), data=b"x" * (10 * 1024 * 1024), verify=ca,
                      timeout=30)
    assert r.status_code == 413

    # The dashboard WebSocket is upgraded through the proxy.
    ws = websocket.create_connection(f"wss://localhost:{ng.https_port}/ws/dashboard",
                                     sslopt={"ca_certs": ca}, timeout=10)
    try:
        assert ws.getstatus() == 101
        ws.send(json.dumps({"type": "auth", "token": "not-a-token"}))
        frame = ws.recv()
        assert frame == "" or "type" in json.loads(frame)
    finally:
        ws.close()

    # The login throttle sees the real client (127.0.0.2 here), not nginx
    # and not a forged X-Forwarded-For: the row in login_throttle says so.
    ctx = ssl.create_default_context(cafile=ca)
    c = http.client.HTTPSConnection("localhost", ng.https_port, context=ctx, timeout=10,
                                    source_address=("127.0.0.2", 0))
    c.request("POST", "/api/auth/login", body=json.dumps({"username": "nobody-x",
                                                           "password": "wrong"}),
              headers={"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.7"})
    assert c.getresponse().status == 401
    c.close()
    with pg.cursor() as cur:
        cur.execute("SELECT key FROM login_throttle WHERE key LIKE 'ip:%%'")
        keys = {k for (k,) in cur.fetchall()}
    assert "ip:127.0.0.2" in keys and "ip:198.51.100.7" not in keys
    assert "ip:127.0.0.1" not in keys


def test_broker_config_with_the_plugin(services, tmp_path):
    """deploy/mosquitto/mosquitto.conf as installed (its paths pointed at
    this run): Mosquitto starts with the mcs_auth plugin, the TLS listener
    serves the certificate, the worker account logs in with its password and
    nobody logs in without one."""
    from mcshelpers import Publisher
    plugin = REPO / "build" / "mcs_auth.so"   # the release plugin (no ASan runtime)
    cli = REPO / "build" / "mcs"
    if not plugin.exists() or not cli.exists():
        pytest.fail("build/mcs_auth.so and build/mcs needed (release build)", pytrace=False)
    root = REPO / ".run" / f"broker-{tmp_path.name}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    tls = Path(services.run_dir) / "tls"
    port, tls_port = free_port(), free_port()
    worker_pass = "w-" + secrets.token_hex(8)
    env = root / "mcs.env"
    env.write_text("".join(f"{k}={services[k]}\n" for k in
                           ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "REDIS_HOST",
                            "REDIS_PORT")) + f"VENDOR_SECRET={secrets.token_hex(16)}\n")

    def hashed(pw):
        return subprocess.run([str(cli), "hash-password"], input=pw + "\n", capture_output=True,
                              text=True, timeout=30, check=True).stdout.strip()
    conf = (REPO / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    placeholder = "$argon2id$v=19$m=65536,t=2,p=1$REPLACE$REPLACE"
    for a, b in (("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1"),
                 ("listener 8883", f"listener {tls_port} 127.0.0.1"),
                 ("/etc/mcs/tls/server.crt", str(tls / "server.crt")),
                 ("/etc/mcs/tls/server.key", str(tls / "server.key")),
                 ("/opt/mcs/lib/mcs_auth.so", str(plugin)),
                 ("/etc/mcs/mcs.env", str(env)),
                 ("/var/lib/mosquitto/", f"{root}/"),
                 (f"plugin_opt_worker_hash {placeholder}",
                  f"plugin_opt_worker_hash {hashed(worker_pass)}"),
                 (f"plugin_opt_mcsd_hash {placeholder}", f"plugin_opt_mcsd_hash {hashed('m')}"),
                 (f"plugin_opt_admin_hash {placeholder}", f"plugin_opt_admin_hash {hashed('a')}"),
                 ("log_dest syslog", f"log_dest file {root}/mosquitto.log")):
        assert a in conf, f"deploy/mosquitto/mosquitto.conf no longer has {a!r}"
        conf = conf.replace(a, b)
    # As root here (the unit runs it as mosquitto from the start).
    (root / "mosquitto.conf").write_text("user root\n" + conf)
    proc = subprocess.Popen(["mosquitto", "-c", str(root / "mosquitto.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def up():
            try:
                socket.create_connection(("127.0.0.1", tls_port), 0.5).close()
                return True
            except OSError:
                return proc.poll() is not None
        wait_until(up, 15, desc="the broker listening")
        assert proc.poll() is None, proc.stderr.read().decode()
        ok = Publisher("localhost", tls_port, username="worker", password=worker_pass,
                       tls_ca=str(tls / "ca.crt"))
        ok.close()
        for user, pw in (("worker", "wrong"), (None, None)):
            with pytest.raises(AssertionError, match="rc=(134|135|5)"):
                Publisher("localhost", tls_port, username=user, password=pw,
                          tls_ca=str(tls / "ca.crt"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        shutil.rmtree(root, ignore_errors=True)
