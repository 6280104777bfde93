#!/usr/bin/python3
"""ingest_bench.py - the ingest benchmark of `make bench` (run by bench/run.sh).

Owns the processes it starts (mcs-nullsub, mcs-copysub, mcs-loadgen, mcsd, a
plugin broker in RUN/tls-broker) and stops them before it returns; it does
not start or stop the services of RUN (run.sh does, with scripts/svc.sh),
except one PostgreSQL restart to turn on track_commit_timestamp. Figures go
to stdout as `name: value` lines, diagnostics to stderr. Every rows-stored
figure is counted in PostgreSQL by commit time (bench/README.md, "Ground
truth"). Phases, each bounded in time:

  broker   loadgen (QoS 0, rate 0) -> Mosquitto -> mcs-nullsub: broker_rate
  limit    the same load -> mcs-copysub -> binary COPY: pipeline_limit_rate
  e2e      loadgen -> Mosquitto -> mcsd -> PostgreSQL + Redis, 10k devices:
           e2e_rate, e2e_ratio, e2e_vs_limit, rows_*, rss_mb, cpu_pct
  tls      devices on TLS with the mcs_auth plugin broker: e2e_rate_tls
  latency  fresh mcsd, loadgen at broker_rate/2 with --trace-file:
           commit_p50_ms, commit_p99_ms, lat_count vs lat_sent
  light    the same at e2e_rate/2 (commit_*_light)
  rss100k  90k more devices, fresh mcsd, moderate load: rss_mb_100k

Usage: ingest_bench.py --build DIR --run DIR [--quick]
Needs only the standard library and psql; Redis is read with the minimal
RESP client below.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchlib import forget_devices_sql, parse_env

ROOT = Path(__file__).resolve().parents[1]
INSTANCE = "mcsd-bench-1"  # the plugin reserves mcsd-* client ids for user mcsd
CLK_TCK = os.sysconf("SC_CLK_TCK")


T0 = time.monotonic()


def log(*a):
    print(f"bench: [{time.monotonic() - T0:5.1f}s]", *a, file=sys.stderr, flush=True)


def fig(name, value):
    print(f"{name}: {value}", flush=True)


class BenchError(Exception):
    """A phase could not produce its figures; the message becomes `error: …`."""


class Redis:
    """A minimal RESP client: the sampler polls several times a second and
    spawning redis-cli that often would cost the CPU being measured."""

    def __init__(self, host, port):
        self.addr = (host, int(port))
        self.sock = None
        self.f = None

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = self.f = None

    def cmd(self, *args):
        if self.sock is None:
            self.sock = socket.create_connection(self.addr, timeout=5)
            self.f = self.sock.makefile("rb")
        parts = [str(a).encode() for a in args]
        req = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in parts)
        try:
            self.sock.sendall(req)
            return self._read()
        except OSError:
            self.close()
            raise

    def _read(self):
        line = self.f.readline()
        if not line:
            raise OSError("redis closed the connection")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise OSError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2].decode()
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise OSError(f"bad RESP reply {line!r}")


class Ctx:
    def __init__(self, build, run, quick):
        self.build = Path(build)
        self.run = Path(run)
        self.env = parse_env(self.run / "env")
        self.quick = quick
        self.procs = []          # every child we started, to stop on exit
        self.mcsd = None
        self.mcsd_log = None
        self.brokers = []        # run directories of extra brokers we started

    # -- clients -----------------------------------------------------------
    def redis_client(self):
        return Redis(self.env["REDIS_HOST"], self.env["REDIS_PORT"])

    def metrics(self, client=None):
        """The metrics hash of our instance ({} when absent). One client per
        thread: the sampler passes its own."""
        if client is None:
            client = self._redis = getattr(self, "_redis", None) or self.redis_client()
        out = client.cmd("HGETALL", f"mcs:metrics:{INSTANCE}") or []
        return dict(zip(out[0::2], out[1::2]))

    def psql(self, sql, timeout=300, script=False):
        """Runs sql (one statement with -c, or a script with psql
        meta-commands such as \\copy on stdin); returns the output."""
        e = self.env
        argv = ["psql", "-h", e["DB_HOST"], "-p", e["DB_PORT"], "-U", e["DB_USER"],
                "-d", e["DB_NAME"], "-At", "-q", "-v", "ON_ERROR_STOP=1"]
        r = subprocess.run(argv + ([] if script else ["-c", sql]), input=sql if script else None,
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise BenchError(f"psql failed: {r.stderr.strip()[:300]}")
        return r.stdout.strip()

    # -- ground truth from PostgreSQL ---------------------------------------
    def enable_commit_ts(self):
        """Every figure of rows stored comes from PostgreSQL itself: the
        commit time of the transaction that inserted each row
        (track_commit_timestamp, a server setting of this benchmark's own
        cluster; the schema and mcsd are untouched). Needs a restart."""
        if self.psql("SHOW track_commit_timestamp") == "on":
            return
        self.psql("ALTER SYSTEM SET track_commit_timestamp = on")
        for cmd in ("pg-stop", "pg-start"):
            self.svc(cmd, self.run)
        if self.psql("SHOW track_commit_timestamp") != "on":
            raise BenchError("track_commit_timestamp could not be enabled")

    def xid(self):
        """A transaction id: rows inserted after this call have a larger
        xmin (a fresh cluster, so 32-bit xmin = 64-bit xid)."""
        return int(self.psql("SELECT pg_current_xact_id()::text::bigint"))

    def commits(self, since_xid):
        """[(commit time, unix s; rows)] of every transaction after
        since_xid that inserted into sensor_data, in commit order."""
        out = self.psql("SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin)), count(*) "
                        f"FROM sensor_data WHERE xmin::text::bigint > {int(since_xid)} "
                        "GROUP BY xmin")
        rows = []
        for line in out.splitlines():
            t, n = line.split("|")
            if t:  # NULL: committed before track_commit_timestamp was on
                rows.append((float(t), int(n)))
        rows.sort()
        return rows

    def trace_latency(self, trace_csv):
        """Publish -> commit latency of the readings loadgen sampled
        (--trace-file: sn, ts, seq, publish time): each is looked up in
        sensor_data by its unique key and its row's commit time taken.
        Returns (samples, found, p50_ms, p99_ms, max_ms)."""
        lat = ("(extract(epoch FROM pg_xact_commit_timestamp(d.xmin)) * 1e6 - t.pub_us) "
               "/ 1000.0")
        out = self.psql(
            "CREATE TEMP TABLE tr (sn text, ts bigint, seq int, pub_us bigint);\n"
            f"\\copy tr FROM '{trace_csv}' WITH (FORMAT csv)\n"
            "SELECT count(*), count(d.sn), "
            f"round(percentile_cont(0.5) WITHIN GROUP (ORDER BY {lat})::numeric, 1), "
            f"round(percentile_cont(0.99) WITHIN GROUP (ORDER BY {lat})::numeric, 1), "
            f"round(max({lat})::numeric, 1) "
            "FROM tr t LEFT JOIN sensor_data d ON d.sn = t.sn AND d.time = to_timestamp(t.ts) "
            "AND d.seq = t.seq;\n", script=True)
        n, found, p50, p99, mx = out.splitlines()[-1].split("|")
        return int(n), int(found), p50 or "n/a", p99 or "n/a", mx or "n/a"

    def reset_data(self):
        """Empties sensor_data (so that each throughput phase writes into the
        same empty table and index) and makes sure the day partitions around
        now exist, named and bounded as mcsd's native dialect makes them
        (src/mcsd/dialect.c), so that a subscriber other than mcsd can COPY
        into them; mcsd's own CREATE ... IF NOT EXISTS then finds them."""
        import datetime
        import zoneinfo
        # Local calendar days of the plant's TZ since migration 030: named
        # by the local date, from local midnight to the next one.
        tz = zoneinfo.ZoneInfo(os.environ.get("TZ") or self.env.get("TZ") or "Asia/Shanghai")
        utc = datetime.timezone.utc
        today = datetime.datetime.now(tz).date()
        sql = ["TRUNCATE sensor_data;"]
        for k in range(-1, 3):
            d = today + datetime.timedelta(days=k)
            lo = datetime.datetime.combine(d, datetime.time(), tz).astimezone(utc)
            hi = datetime.datetime.combine(d + datetime.timedelta(days=1), datetime.time(),
                                           tz).astimezone(utc)
            name = "sensor_data_" + d.strftime("%Y%m%d")
            sql.append(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF sensor_data "
                       f"FOR VALUES FROM ('{lo:%Y-%m-%d %H:%M:%S}+00') "
                       f"TO ('{hi:%Y-%m-%d %H:%M:%S}+00');")
        self.psql("\n".join(sql) + "\n", script=True)

    # -- child processes ---------------------------------------------------
    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, timeout=15):
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"pid {p.pid} did not stop in {timeout}s; killing it")
            p.kill()
            p.wait(5)

    def stop_all(self):
        self.stop_mcsd()
        for p in self.procs:
            self.stop(p, 5)
        for d in self.brokers:
            self.svc("mqtt-stop", d, check=False)
        self.brokers = []

    def svc(self, cmd, d, env=None, check=True):
        r = subprocess.run(["bash", str(ROOT / "scripts" / "svc.sh"), cmd, str(d)],
                           env=env, capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise BenchError(f"svc.sh {cmd} {d} failed: {r.stderr.strip()[-300:]}")

    def loadgen(self, *args, timeout=120, port=None, env=None, procs=1):
        """Runs mcs-loadgen to completion; returns its `name: value` dict.
        With procs > 1, that many run at once, each with its own share of
        --devices (and --conns) from --sn-start on: one process has room for
        ~6,000 TLS connections only (libmosquitto takes 3 descriptors per
        client, the limit is 20,000). Their figures are summed, rates and
        the publishing window taken over the span they all published."""
        e = self.env
        args = [str(a) for a in args]
        runs = [args]
        if procs > 1:
            opt = dict(zip(args[0::2], args[1::2]))
            ndev, start = int(opt["--devices"]), int(opt.get("--sn-start", "0"))
            runs = []
            for i in range(procs):
                part = dict(opt, **{"--devices": str(ndev // procs),
                                    "--sn-start": str(start + i * (ndev // procs))})
                if "--conns" in opt:
                    part["--conns"] = str(int(opt["--conns"]) // procs)
                if "--rate" in opt:
                    part["--rate"] = str(float(opt["--rate"]) / procs)
                runs.append([x for kvp in part.items() for x in kvp])
        ps = []
        for r in runs:
            argv = [str(self.build / "mcs-loadgen"), "--host", e["MQTT_HOST"], "--port",
                    str(port or e["MQTT_PORT"]), "--quiet", *r]
            log("run", " ".join(argv[1:]))
            ps.append(self.spawn(argv, stdout=subprocess.PIPE, text=True, env=env))
        outs = []
        try:
            for p in ps:
                out, _ = p.communicate(timeout=timeout)
                outs.append((p, kv(out)))
        except subprocess.TimeoutExpired:
            for p in ps:
                self.stop(p)
            raise BenchError("mcs-loadgen did not finish in time")
        for p, res in outs:
            if p.returncode != 0 or "sent" not in res:
                raise BenchError(f"mcs-loadgen failed (exit {p.returncode})")
        res = outs[0][1]
        if len(outs) > 1:
            all_ = [r for _, r in outs]
            res = {k: str(sum(int(r.get(k, "0")) for r in all_))
                   for k in ("sent", "conns", "conn_failed")}
            res["start_unix_ms"] = str(max(int(r["start_unix_ms"]) for r in all_))
            res["end_unix_ms"] = str(min(int(r["end_unix_ms"]) for r in all_))
            res["elapsed_s"] = max(r["elapsed_s"] for r in all_)
            res["rate"] = f"{sum(float(r['rate']) for r in all_):.1f}"
        if int(res.get("conn_failed", "0")):
            log(f"loadgen: {res['conn_failed']} connections failed")
        return res

    # -- mcsd ----------------------------------------------------------------
    def mcsd_env(self, extra=None):
        env = dict(os.environ)
        env.update(self.env)
        env.update({"INSTANCE_ID": INSTANCE, "SPOOL_DIR": str(self.run / "spool"),
                    "LOG_LEVEL": "WARN"})
        env.update(extra or {})
        env.pop("ENV_FILE", None)
        return env

    def migrate(self):
        exe = self.build / "mcsd"
        if not exe.exists():
            raise BenchError(f"{exe} is not built")
        (self.run / "spool").mkdir(exist_ok=True)
        r = subprocess.run([str(exe), "--migrate"], env=self.mcsd_env(), capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise BenchError(f"mcsd --migrate failed (exit {r.returncode}): "
                             f"{r.stderr.strip()[-300:]}")

    def start_mcsd(self, tag, extra_env=None):
        """Starts a fresh mcsd (same instance id, so the broker session and
        the metrics key carry over) and waits until it is subscribed.
        extra_env overrides settings (another broker)."""
        self.stop_mcsd()
        self._redis = getattr(self, "_redis", None) or self.redis_client()
        self._redis.cmd("DEL", f"mcs:metrics:{INSTANCE}")
        logpath = self.run / f"mcsd-{tag}.log"
        self.mcsd_log = logpath
        f = open(logpath, "wb")
        self.mcsd = self.spawn([str(self.build / "mcsd")], env=self.mcsd_env(extra_env),
                               stdout=f, stderr=subprocess.STDOUT)
        f.close()
        (self.run / "mcsd.pid").write_text(str(self.mcsd.pid))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.mcsd.poll() is not None:
                raise BenchError(f"mcsd exited with {self.mcsd.returncode} at start "
                                 f"(log: {logpath}): {tail(logpath)}")
            if b'"msg":"ready"' in logpath.read_bytes():
                break
            if self.metrics().get("mqtt_connected") == "1":
                time.sleep(1.0)  # the subscription follows the CONNACK
                break
            time.sleep(0.1)
        else:
            raise BenchError(f"mcsd not ready after 30 s (log: {logpath})")
        log(f"mcsd pid {self.mcsd.pid} ready ({tag})")

    def stop_mcsd(self):
        if self.mcsd is not None:
            self.stop(self.mcsd, 20)
            if self.mcsd.returncode not in (0, None):
                log(f"mcsd exited with {self.mcsd.returncode} (log: {self.mcsd_log})")
            self.mcsd = None
            try:
                (self.run / "mcsd.pid").unlink()
            except FileNotFoundError:
                pass

    def proc_sample(self):
        """(cpu seconds, rss kB) of mcsd, or None when it is gone."""
        try:
            stat = Path(f"/proc/{self.mcsd.pid}/stat").read_text()
            status = Path(f"/proc/{self.mcsd.pid}/status").read_text()
        except (OSError, AttributeError):
            return None
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
        rss = 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        return cpu, rss


def free_port():
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


def kv(text):
    d = {}
    for line in (text or "").splitlines():
        if ": " in line:
            k, v = line.split(": ", 1)
            d[k.strip()] = v.strip()
    return d


def tail(path, n=300):
    try:
        return Path(path).read_text(errors="replace")[-n:].strip()
    except OSError:
        return ""


class Sampler(threading.Thread):
    """Samples mcsd's metrics hash (stored, received, updated_ms) and its
    /proc figures every 250 ms until stopped."""

    def __init__(self, ctx):
        super().__init__(daemon=True)
        self.ctx = ctx
        self.points = []       # (t_s, stored, received), one per metrics refresh
        self.rss_peak = 0
        self.last = {}
        self.halt = threading.Event()

    def run(self):
        seen = None
        client = self.ctx.redis_client()
        while not self.halt.is_set():
            try:
                m = self.ctx.metrics(client)
            except OSError as e:  # a slow redis must not kill the sampler
                log(f"sampler: {e!r}")
                m = {}
            ps = self.ctx.proc_sample()
            if ps:
                self.rss_peak = max(self.rss_peak, ps[1])
            if "stored" in m:
                self.last = m
                upd = m.get("updated_ms")
                if upd != seen:
                    seen = upd
                    t = int(upd) / 1000.0 if upd else time.time()
                    self.points.append((t, int(m["stored"]), int(m.get("received", 0))))
            self.halt.wait(0.25)
        client.close()

    def stored_now(self):
        return self.points[-1][1] if self.points else 0

    def wait_drained(self, expect, quiet_s=3.0, limit_s=90.0):
        """Waits until `stored` reached `expect` or stopped growing for
        quiet_s, at most limit_s. Returns the final stored count."""
        deadline = time.monotonic() + limit_s
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if self.ctx.mcsd is None or self.ctx.mcsd.poll() is not None:
                raise BenchError(f"mcsd died during the run (log: {self.ctx.mcsd_log}): "
                                 f"{tail(self.ctx.mcsd_log)}")
            cur = self.stored_now()
            if cur >= expect:
                return cur
            if cur != last:
                last, since = cur, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                break
            time.sleep(0.25)
        return self.stored_now()

    def rate(self, t0, t1, col=1):
        """Rate of column col (1 stored, 2 received) per second over the
        middle half of the wall-clock window [t0, t1]: the steady state
        without start-up and tail."""
        pts = self.points
        if len(pts) < 2:
            return 0.0
        a, b = t0 + (t1 - t0) * 0.25, t0 + (t1 - t0) * 0.75
        if b - a < 0.5:
            a, b = t0, t1
        return (interp(pts, b, col) - interp(pts, a, col)) / (b - a)


def interp(pts, t, col=1):
    """Value of column col at time t, linear between samples."""
    if t <= pts[0][0]:
        return pts[0][col]
    for i in range(1, len(pts)):
        if pts[i][0] >= t:
            ta, va = pts[i - 1][0], pts[i - 1][col]
            tb, vb = pts[i][0], pts[i][col]
            return va if tb == ta else va + (vb - va) * (t - ta) / (tb - ta)
    return pts[-1][col]


def window_rate(commits, t0, t1, middle=True):
    """Rows/s committed in [t0, t1] (unix s), from PostgreSQL's commit times
    (Ctx.commits); with middle, over the middle half of it: the steady state
    without start-up and tail."""
    a, b = t0, t1
    if middle and (t1 - t0) * 0.5 >= 0.5:
        a, b = t0 + (t1 - t0) * 0.25, t0 + (t1 - t0) * 0.75
    if b <= a:
        return 0.0
    return sum(n for t, n in commits if a < t <= b) / (b - a)


def pub_window(lg):
    """Wall-clock span (unix s) in which loadgen published, after its
    connections were up; falls back to the caller's clock."""
    return int(lg["start_unix_ms"]) / 1000.0, int(lg["end_unix_ms"]) / 1000.0


# -- phases -------------------------------------------------------------------
def phase_broker(ctx, secs):
    e = ctx.env
    ready = ctx.run / "nullsub.ready"
    argv = [str(ctx.build / "mcs-nullsub"), "--host", e["MQTT_HOST"], "--port", e["MQTT_PORT"],
            "--topic", "mcs/+/up", "--qos", "0", "--idle", "3", "--duration",
            str(secs + 40), "--ready-file", str(ready), "--quiet"]
    ns = ctx.spawn(argv, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not ready.exists():
        if ns.poll() is not None or time.monotonic() > deadline:
            ctx.stop(ns)
            raise BenchError("mcs-nullsub could not subscribe")
        time.sleep(0.05)
    try:
        lg = ctx.loadgen("--devices", 10000, "--conns", 100, "--qos", 0, "--rate", 0,
                         "--duration", secs, timeout=secs + 60)
        out, _ = ns.communicate(timeout=60)
    finally:
        ctx.stop(ns)
    res = kv(out)
    if "rate_mid" not in res:
        raise BenchError("mcs-nullsub printed no figures")
    rate = float(res["rate_mid"])
    log(f"broker: published {lg['sent']} at {lg['rate']}/s; nullsub received "
        f"{res['received']} (overall {res['rate']}/s, steady {rate:.0f}/s)")
    fig("broker_rate", f"{rate:.0f}")
    fig("broker_published", lg["sent"])
    fig("broker_received", res["received"])
    return rate


def phase_limit(ctx, secs):
    """The pipeline limit: the same load as the e2e phase through the same
    broker into the same empty table and index, stored by mcs-copysub
    (subscribe, parse, binary COPY; no validation, journal or Redis)."""
    e = ctx.env
    ctx.reset_data()
    x0 = ctx.xid()
    ready = ctx.run / "copysub.ready"
    conninfo = (f"host={e['DB_HOST']} port={e['DB_PORT']} user={e['DB_USER']} "
                f"dbname={e['DB_NAME']}" + (f" password={e['DB_PASS']}" if e.get("DB_PASS") else ""))
    # Its own share group, subscribed at QoS 1 as mcsd's (deliveries are QoS 0,
    # as published); the same devices' calibration (register_devices).
    argv = [str(ctx.build / "mcs-copysub"), "--host", e["MQTT_HOST"], "--port", e["MQTT_PORT"],
            "--topic", "$share/limit/mcs/+/up", "--qos", "1", "--db", conninfo, "--k", "1.5",
            "--b", "-10", "--idle", "3", "--duration", str(secs + 60), "--ready-file",
            str(ready), "--quiet"]
    cs = ctx.spawn(argv, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not ready.exists():
        if cs.poll() is not None or time.monotonic() > deadline:
            ctx.stop(cs)
            raise BenchError("mcs-copysub could not start (database or subscription)")
        time.sleep(0.05)
    try:
        lg = ctx.loadgen("--devices", 10000, "--conns", 100, "--qos", 0, "--rate", 0,
                         "--duration", secs, timeout=secs + 60)
        out, _ = cs.communicate(timeout=90)
    finally:
        ctx.stop(cs)
    res = kv(out)
    w0, w1 = pub_window(lg)
    commits = ctx.commits(x0)
    rows = sum(n for _, n in commits)
    rate = window_rate(commits, w0, w1)
    log(f"limit: loadgen {lg['rate']}/s for {lg['elapsed_s']} s; copysub received "
        f"{res.get('received')} stored {res.get('stored')} in {res.get('batches')} COPYs "
        f"({res.get('copy_failed')} failed); {rows} rows committed")
    fig("pipeline_limit_rate", f"{rate:.0f}")
    # What the generator offered: when it is no higher than the rate, the
    # generator (sharing the cores) was the limit, not the pipeline.
    fig("limit_offered_rate", f"{float(lg['rate']):.0f}")
    fig("limit_rows_published", lg["sent"])
    fig("limit_rows_stored", rows)
    return rate


def start_plugin_broker(ctx):
    """A second Mosquitto as in production (scripts/svc.sh plugin mode: the
    mcs_auth plugin, TLS listener for devices, plain internal listener for
    mcsd), sharing this run's PostgreSQL and Redis. Returns its env dict."""
    d = ctx.run / "tls-broker"
    (d / "mosquitto").mkdir(parents=True, exist_ok=True)
    keep = ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASS", "REDIS_HOST", "REDIS_PORT")
    lines = [f"RUN_DIR={d}"] + [f"{k}={ctx.env.get(k, '')}" for k in keep]
    lines += ["MQTT_HOST=127.0.0.1", f"MQTT_PORT={free_port()}", f"MQTT_TLS_PORT={free_port()}",
              f"MQTT_CAFILE={d}/tls/ca.crt"]
    (d / "env").write_text("\n".join(lines) + "\n")
    env = dict(os.environ, MCS_BROKER_AUTH="plugin",
               MCS_AUTH_PLUGIN=str(ctx.build / "mcs_auth.so"), MCS_CLI=str(ctx.build / "mcs"))
    for k in ("MCS_AUTH_PLUGIN_OPTS", "MCS_BROKER_PRELOAD"):
        env.pop(k, None)
    ctx.brokers.append(d)
    ctx.svc("mqtt-start", d, env)
    return parse_env(d / "env")


def phase_tls(ctx, ndev, secs):
    """e2e as in production: every device its own TLS connection to the
    plugin broker, logged in as device_{sn} with its R-MQ-6 password; mcsd
    on the internal listener as the worker."""
    b = start_plugin_broker(ctx)
    lenv = dict(os.environ, VENDOR_SECRET=b["VENDOR_SECRET"])
    tls = ("--cafile", b["MQTT_CAFILE"], "--vendor-secret", "@env")
    # The plugin loads the registry from PostgreSQL after it starts: wait
    # until it accepts the last device.
    deadline = time.monotonic() + 30
    while True:
        probe = ctx.loadgen("--devices", 1, "--conns", 1, "--sn-start", ndev - 1, "--count", 1,
                            "--client-prefix", "probe-", *tls, port=b["MQTT_TLS_PORT"],
                            env=lenv, timeout=30)
        if probe.get("conn_failed") == "0":
            break
        if time.monotonic() > deadline:
            raise BenchError("the plugin broker does not accept the bench devices")
        time.sleep(0.5)
    ctx.reset_data()
    x0 = ctx.xid()
    ctx.start_mcsd("tls", {"MQTT_PORT": b["MQTT_PORT"], "MQTT_USER": "mcsd",
                           "MQTT_PASS": b["MCSD_PASS"]})
    s = Sampler(ctx)
    s.start()
    try:
        time.sleep(1.2)
        t_conn = time.time()
        lg = ctx.loadgen("--devices", ndev, "--conns", ndev, "--qos", 0, "--rate", 0,
                         "--duration", secs, *tls, port=b["MQTT_TLS_PORT"], env=lenv,
                         timeout=secs + 90, procs=(ndev + 4999) // 5000)
        w0, w1 = pub_window(lg)
        log(f"tls: connected in {w0 - t_conn:.1f} s, published until {w1 - t_conn:.1f} s, "
            f"loadgen done at {time.time() - t_conn:.1f} s")
        s.wait_drained(int(lg["sent"]))
    finally:
        s.halt.set()
        s.join(5)
        ctx.stop_mcsd()
        # Idle brokers cost nothing much, but the later phases get the box
        # as before this one.
        for d in ctx.brokers:
            ctx.svc("mqtt-stop", d, check=False)
        ctx.brokers = []
    w0, w1 = pub_window(lg)
    commits = ctx.commits(x0)
    rows = sum(n for _, n in commits)
    rate = window_rate(commits, w0, w1)
    log(f"tls: {lg['conns']} TLS device connections ({lg['conn_failed']} failed), loadgen "
        f"{lg['rate']}/s for {lg['elapsed_s']} s; {rows} rows committed; mcsd received "
        f"{s.last.get('received')}")
    fig("e2e_rate_tls", f"{rate:.0f}")
    fig("tls_devices", ndev)
    fig("tls_rows_published", lg["sent"])
    fig("tls_rows_stored", rows)
    return rate


def register_devices(ctx, first, last):
    ctx.psql("INSERT INTO devices (sn, calib_k, calib_b) "
             f"SELECT 'BENCH'||lpad(i::text,6,'0'), 1.5, -10 FROM generate_series({first},{last}) i "
             "ON CONFLICT (sn) DO NOTHING")


def phase_e2e(ctx, broker_rate, limit_rate, secs):
    ndev = ctx.psql("SELECT count(*) FROM devices")
    ctx.reset_data()
    x0 = ctx.xid()
    log(f"e2e: {ndev} devices registered, sensor_data emptied")
    ctx.start_mcsd("e2e")
    s = Sampler(ctx)
    s.start()
    try:
        time.sleep(1.2)
        p0, t0 = ctx.proc_sample(), time.monotonic()
        lg = ctx.loadgen("--devices", 10000, "--conns", 100, "--qos", 0, "--rate", 0,
                         "--duration", secs, timeout=secs + 60)
        p1, t1 = ctx.proc_sample(), time.monotonic()
        sent = int(lg["sent"])
        # Only to know when mcsd is done; no figure comes from its counter.
        s.wait_drained(sent)
    finally:
        s.halt.set()
        s.join(5)
    w0, w1 = pub_window(lg)
    commits = ctx.commits(x0)
    rows = sum(n for _, n in commits)
    # The sustained rate is what gets committed while the load is on; after
    # it mcsd may still work off a backlog (drain_s) with the CPU to itself.
    rate = window_rate(commits, w0, w1)
    last = commits[-1][0] if commits else w1
    drain_s = max(0.0, last - w1)
    drain_rate = window_rate(commits, w1, last) if drain_s >= 4 else None
    m = s.last
    fig("e2e_rate", f"{rate:.0f}")
    fig("e2e_ratio", f"{rate / broker_rate:.3f}" if broker_rate else "n/a")
    fig("e2e_vs_limit", f"{rate / limit_rate:.3f}" if limit_rate else "n/a")
    fig("e2e_offered_rate", f"{float(lg['rate']):.0f}")
    fig("e2e_received_rate", f"{s.rate(w0, w1, 2):.0f}")
    fig("e2e_drain_s", f"{drain_s:.1f}")
    if drain_rate is not None:
        fig("e2e_drain_rate", f"{drain_rate:.0f}")
    fig("rows_published", sent)
    fig("rows_stored", rows)
    fig("mcsd_received", m.get("received", "n/a"))
    # Published but never delivered to mcsd: the broker drops QoS 0 messages
    # for a subscriber whose queue is full (max_queued_messages).
    if m.get("received", "").isdigit():
        fig("lost_before_mcsd", sent - int(m["received"]))
    fig("rejected", m.get("rejected", "n/a"))
    if p0 and p1:
        fig("cpu_pct", f"{(p1[0] - p0[0]) / (t1 - t0) * 100:.0f}")
    fig("rss_mb", f"{s.rss_peak / 1024:.1f}")
    log(f"e2e: loadgen {lg['rate']}/s for {lg['elapsed_s']} s; {len(commits)} transactions "
        f"committed {rows} rows; mcsd's own counters: stored={m.get('stored')} "
        f"(rate {s.rate(w0, w1, 1):.0f}/s by them) received={m.get('received')} "
        f"duplicates={m.get('duplicates')} batches={m.get('batches')} "
        f"spool_bytes={m.get('spool_bytes')}")
    if m.get("stored", "").isdigit() and rows != int(m["stored"]):
        log(f"e2e: sensor_data has {rows} new rows but mcsd's counter says stored={m['stored']}")
    return rate


def phase_latency(ctx, rate, secs, suffix=""):
    ctx.start_mcsd("latency" + suffix)
    trace = ctx.run / f"trace{suffix}.csv"
    # About 20,000 sampled readings, whatever the rate.
    every = max(1, int(rate * secs / 20000))
    s = Sampler(ctx)
    s.start()
    try:
        time.sleep(1.2)
        lg = ctx.loadgen("--devices", 10000, "--conns", 100, "--qos", 0, "--rate", int(rate),
                         "--trace", "--trace-file", trace, "--trace-every", every,
                         "--duration", secs, timeout=secs + 60)
        s.wait_drained(int(lg["sent"]), limit_s=60)
        time.sleep(1.5)  # one more metrics refresh after the last commit
        m = ctx.metrics()
    finally:
        s.halt.set()
        s.join(5)
    n, found, p50, p99, mx = ctx.trace_latency(trace)
    log(f"latency{suffix}: loadgen {lg['rate']}/s for {lg['elapsed_s']} s; {found} of {n} "
        f"sampled readings in sensor_data: p50 {p50} ms, p99 {p99} ms, max {mx} ms; mcsd's "
        f"own histogram: lat_count={m.get('lat_count')} p50 {m.get('lat_p50_ms')} ms "
        f"p99 {m.get('lat_p99_ms')} ms; stored={m.get('stored')} of {lg['sent']}")
    fig(f"commit_load_rate{suffix}", f"{float(lg['rate']):.0f}")
    fig(f"commit_p50_ms{suffix}", p50)
    fig(f"commit_p99_ms{suffix}", p99)
    fig(f"commit_samples{suffix}", n)
    fig(f"commit_samples_stored{suffix}", found)
    # mcsd's own latency count against what was sent: every traced message
    # should have been measured once.
    fig(f"lat_sent{suffix}", lg["sent"])
    fig(f"lat_count{suffix}", m.get("lat_count", "n/a"))


def phase_rss100k(ctx, secs):
    register_devices(ctx, 10000, 99999)
    log(f"rss100k: {ctx.psql('SELECT count(*) FROM devices')} devices registered")
    ctx.start_mcsd("rss100k")
    s = Sampler(ctx)
    s.start()
    try:
        time.sleep(1.2)
        lg = ctx.loadgen("--devices", 100000, "--conns", 100, "--qos", 0, "--rate", 20000,
                         "--duration", secs, timeout=secs + 60)
        s.wait_drained(int(lg["sent"]), limit_s=30)
        time.sleep(1.0)
        ps = ctx.proc_sample()
        if ps:
            s.rss_peak = max(s.rss_peak, ps[1])
    finally:
        s.halt.set()
        s.join(5)
    log(f"rss100k: devices in metrics={s.last.get('devices')} stored={s.stored_now()} "
        f"of {lg['sent']}")
    fig("rss_mb_100k", f"{s.rss_peak / 1024:.1f}")


PHASES = ("broker", "limit", "e2e", "tls", "latency", "light", "rss100k")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--quick", action="store_true", help="shorter phases (smoke test)")
    ap.add_argument("--skip", default="",
                    help="comma-separated phases to leave out (while working on one): "
                         + ",".join(PHASES))
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    if skip - set(PHASES):
        ap.error(f"unknown phase in --skip: {','.join(sorted(skip - set(PHASES)))}")
    ctx = Ctx(a.build, a.run, a.quick)

    def on_term(sig, frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_term)

    k = 0.4 if a.quick else 1.0
    rc = 0
    try:
        ctx.enable_commit_ts()
        ctx.migrate()
        register_devices(ctx, 0, 9999)
        ctx.reset_data()
        # The later phases need the rates of the earlier ones; a skipped
        # phase leaves 0 (then a default load is used).
        broker = phase_broker(ctx, int(16 * k)) if "broker" not in skip else 0
        limit = phase_limit(ctx, int(25 * k)) if "limit" not in skip else 0
        e2e = phase_e2e(ctx, broker, limit, int(25 * k)) if "e2e" not in skip else 0
        if "tls" not in skip:
            phase_tls(ctx, int(os.environ.get("BENCH_TLS_DEVICES", "2000")), int(15 * k))
        if "latency" not in skip:
            phase_latency(ctx, broker / 2 if broker else 50000, int(15 * k))
        if "light" not in skip:
            # The same at a load mcsd sustains (half its e2e rate): latency
            # without queueing, whatever the broker could do.
            phase_latency(ctx, max(e2e / 2, 1000) if e2e else 20000, int(10 * k), "_light")
        if "rss100k" not in skip:
            phase_rss100k(ctx, int(10 * k))
    except BenchError as e:
        fig("error", str(e))
        rc = 1
    except subprocess.TimeoutExpired as e:
        fig("error", f"timeout: {e}")
        rc = 1
    finally:
        ctx.stop_all()
        # The groups after this one share the services: leave no devices
        # (a dashboard frame of every registered device would carry our
        # 100,000) and no readings behind.
        try:
            ctx.psql("TRUNCATE sensor_data; " + forget_devices_sql(["BENCH"]))
        except (BenchError, subprocess.TimeoutExpired) as e:
            log(f"cleanup: {e}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
