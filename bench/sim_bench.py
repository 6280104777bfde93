#!/usr/bin/env python3
"""sim_bench.py - figures of the device firmware core and the simulator
(issue #11), `make bench ONLY=sim` (group `sim` of bench/run.sh).

  fw_flash_kb, fw_ram_kb   the core for Cortex-M4 (firmware/arm/build.sh:
                           -Os, newlib-nano; budget 64 KB / 16 KB)
  traffic_mb_month         bytes per device per month at the default 10 s
                           interval, MQTT + TLS + keep-alive, counted on the
                           simulator's sockets (TCP_INFO bytes acked and
                           received) over a steady window, plus one
                           reconnect (TLS handshake, CONNECT, SUBSCRIBE) per
                           day; R-MQ-8 asks < 60
  traffic_ip_mb_month      the same with 52 bytes of IP+TCP header (with
                           timestamps, no header compression) for every TCP
                           segment both ways: an upper bound for the radio
  sim_devices_10s          devices one mcs-sim process kept reporting on time
                           (>= 97 % of the expected readings, all connected)
                           at 10 s over TLS; sim_cpu_pct_10s its CPU (% of
                           one core)
  sim_devices_1s           the same at 1 s (debug rate); sim_cpu_pct its CPU
Each run is a measurement at a fixed fleet size (SIM_BENCH_DEVICES_10S,
default 5000; SIM_BENCH_DEVICES_1S, default 2000), not a search for the
breaking point: "0" means that size was not sustained. One process is
bounded by open files (3 per device: its socket and libmosquitto's socket
pair; 20000 here, so about 6600 devices). Bounded to about 2 minutes.

Usage: sim_bench.py --build DIR [--run RUNDIR] [--quick]
With --run the broker of that scripts/svc.sh run directory is used (as
bench/run.sh does); without it one is started in .run/simbench-<pid>."""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchlib import parse_env

ROOT = Path(__file__).resolve().parents[1]
SVC = ROOT / "scripts" / "svc.sh"
HDR = 52          # IPv4 20 + TCP 20 + timestamps 12, per segment
MONTH_S = 30 * 86400


def log(msg):
    print(f"sim_bench: {msg}", file=sys.stderr, flush=True)


def cpu_s(pid):
    """utime + stime of pid in seconds."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


class SimRun:
    def __init__(self, build, svc, devices, interval, run_dir, tag):
        self.stats = run_dir / f"simbench-{tag}.json"
        self.stats.unlink(missing_ok=True)
        env = dict(os.environ)
        env["VENDOR_SECRET"] = "bench-vendor-secret"
        args = [str(build / "mcs-sim"), "--host", "localhost", "--port", svc["MQTT_TLS_PORT"],
                "--cafile", svc["MQTT_CAFILE"], "--vendor-secret", "@env",
                "--devices", str(devices), "--interval", str(interval),
                "--sn-prefix", f"SB{tag}", "--connect-rate", "500", "--leaks-per-hour", "0",
                "--quiet", "--stats", str(self.stats)]
        self.log = open(run_dir / f"simbench-{tag}.log", "wb")
        self.p = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.devices = devices

    def snapshot(self, timeout=10):
        # The first file is written once SIGUSR1 is handled (it would kill
        # the process before).
        deadline = time.monotonic() + timeout
        while not self.stats.exists():
            if time.monotonic() > deadline or self.p.poll() is not None:
                raise RuntimeError("mcs-sim did not start (see its log)")
            time.sleep(0.05)
        before = self.stats.stat().st_mtime_ns
        self.p.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stats.exists() and self.stats.stat().st_mtime_ns != before:
                try:
                    return json.loads(self.stats.read_text()), cpu_s(self.p.pid)
                except ValueError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("mcs-sim wrote no counters")

    def wait_connected(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s, _ = self.snapshot()
            if s["total"]["connected"] >= self.devices:
                return True
            time.sleep(1)
        return False

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def measure(build, svc, run_dir, devices, interval, window, tag):
    """Returns (sustained, cpu_pct, a, b, elapsed) over a steady window."""
    r = SimRun(build, svc, devices, interval, run_dir, tag)
    try:
        up = r.wait_connected(devices / 500 + 30)
        time.sleep(min(interval, 5))
        a, ca = r.snapshot()
        time.sleep(window)
        b, cb = r.snapshot()
    finally:
        r.stop()
    el = b["t"] - a["t"]
    sent = lambda s: s["total"]["sent_live"] + s["total"]["acked_backlog"]
    expected = devices * el / interval
    ratio = (sent(b) - sent(a)) / expected if expected else 0
    cpu = 100.0 * (cb - ca) / el if el > 0 else 0
    log(f"{devices} devices at {interval} s: connected={up} "
        f"delivered {sent(b) - sent(a)} of ~{expected:.0f} ({ratio:.1%}), cpu {cpu:.1f} %")
    return up and ratio >= 0.97, cpu, a, b, el


def traffic(a, b, el):
    """MB per device per month: (sockets, sockets + IP/TCP headers)."""
    n = len(b["devs"])
    dbytes = sum(y["bytes_tx"] + y["bytes_rx"] - x["bytes_tx"] - x["bytes_rx"]
                 for x, y in zip(a["devs"], b["devs"]))
    dsegs = sum(y["segments"] - x["segments"] for x, y in zip(a["devs"], b["devs"]))
    conn = sum(d["connect_bytes"] for d in b["devs"]) / n
    per_s = dbytes / n / el
    per_s_ip = (dbytes + HDR * dsegs) / n / el
    reconnects = 30 * (conn + 10 * HDR)  # one a day
    log(f"per device: {per_s:.1f} B/s on the sockets, {per_s_ip:.1f} B/s with headers, "
        f"{conn:.0f} B per connect")
    return ((per_s * MONTH_S + 30 * conn) / 1e6, (per_s_ip * MONTH_S + reconnects) / 1e6)


def fw_size():
    r = subprocess.run(["bash", str(ROOT / "firmware" / "arm" / "build.sh")], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        log(r.stderr.strip()[-500:])
    for line in r.stdout.splitlines():
        if line.startswith("fw_"):
            print(line, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--run")
    ap.add_argument("--quick", action="store_true")
    o = ap.parse_args()
    build = Path(o.build)
    n10 = int(os.environ.get("SIM_BENCH_DEVICES_10S", "200" if o.quick else "5000"))
    n1 = int(os.environ.get("SIM_BENCH_DEVICES_1S", "100" if o.quick else "2000"))
    window10 = 20 if o.quick else 40
    window1 = 10 if o.quick else 20

    fw_size()
    own = not o.run
    run_dir = Path(o.run) if o.run else ROOT / ".run" / f"simbench-{os.getpid()}"
    rc = 0
    try:
        if own:
            run_dir.mkdir(parents=True, exist_ok=True)
            subprocess.run(["bash", str(SVC), "start", str(run_dir)], check=True,
                           capture_output=True, timeout=180)
        svc = parse_env(run_dir / "env")
        ok, cpu, a, b, el = measure(build, svc, run_dir, n10, 10, window10, "t")
        mb, mb_ip = traffic(a, b, el)
        print(f"traffic_mb_month: {mb:.1f}", flush=True)
        print(f"traffic_ip_mb_month: {mb_ip:.1f}", flush=True)
        print(f"sim_devices_10s: {n10 if ok else 0}", flush=True)
        print(f"sim_cpu_pct_10s: {cpu:.1f}", flush=True)
        ok, cpu, _, _, _ = measure(build, svc, run_dir, n1, 1, window1, "f")
        print(f"sim_devices_1s: {n1 if ok else 0}", flush=True)
        print(f"sim_cpu_pct: {cpu:.1f}", flush=True)
    except Exception as e:  # a figure missing is reported, not a traceback
        print(f"error: sim benchmark: {e}", flush=True)
        rc = 1
    finally:
        if own:
            subprocess.run(["bash", str(SVC), "stop", str(run_dir)], capture_output=True,
                           timeout=180)
            if not os.environ.get("KEEP_RUN"):
                shutil.rmtree(run_dir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
