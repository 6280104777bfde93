#!/usr/bin/env python3
"""archive_bench.py - the `archive` group of `make bench` (issue #10).

One old local day of ARCHIVE_BENCH_ROWS readings (default 2,000,000 from
1,000 devices: a smaller day than the 8.64 M of 1,000 devices at 10 s, to
keep the group near one minute on 2 cores) is archived by mcsd's scheduler
(the missed 02:00 slot caught up at start) to the directory sink, timed by
its job_runs row, and
beside it, in the same run, `psql \\copy (same SELECT) to stdout | gzip -6`
writes the same day to a file: the practical limit.

Figures (stdout, `name: value`):
  archive_rows             rows in the day
  archive_rows_per_s       rows/s of the whole job (export, gzip, write,
                           verify by reading back, drop)
  archive_baseline_rows_per_s  rows/s of psql | gzip -6 > file
  archive_ratio            archive_rows_per_s / baseline (target >= 0.8)
  archive_rss_mb           peak RSS (VmHWM) of mcsd while its scheduler runs the
                           archive (a caught-up 02:00 slot at start), MiB
  archive_gz_mb            size of the archive file
  history_cold_first_ms    `mcs history` of one device over the cold day,
                           cache empty (fetch + read)
  history_cold_cached_p99_ms   the same, cached, p99 of 20 runs
Standard library only; needs psql, gzip and PostgreSQL 15 tools."""
import argparse
import datetime
import os
import subprocess
import sys
import time
import zoneinfo
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import parse_env  # noqa: E402

TZ = "Asia/Shanghai"
ZONE = zoneinfo.ZoneInfo(TZ)
COLS = "time, sn, v_raw, ppm, temp, humi, bat, rssi, seq"


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def fig(name, value):
    print(f"{name}: {value}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    build, run = Path(a.build), Path(a.run)
    rows = int(os.environ.get("ARCHIVE_BENCH_ROWS", "200000" if a.quick else "2000000"))
    svc = parse_env(run / "env")
    env = dict(os.environ)
    env.update(svc)
    env.update({"SCHED_ENABLED": "0", "TZ": TZ, "PGTZ": TZ, "ARCHIVE_SINK": "dir",
                "ARCHIVE_DIR": str(run / "archive"), "HISTORY_CACHE_DIR": str(run / "hcache"),
                "INSTANCE_ID": "bench-archive", "SPOOL_DIR": str(run / "spool-archive"),
                "PG_BIN_DIR": "/usr/lib/postgresql/15/bin", "PGPASSWORD": svc.get("DB_PASS", "")})
    env.pop("ENV_FILE", None)
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", svc["DB_HOST"], "-p",
            svc["DB_PORT"], "-U", svc["DB_USER"], "-d", svc["DB_NAME"]]
    r = subprocess.run([str(build / "mcsd"), "--migrate"], env=env, capture_output=True,
                       text=True, timeout=120)
    if r.returncode:
        print(f"error: mcsd --migrate: {r.stderr[-300:]}")
        return 1

    day = datetime.datetime.now(ZONE).date() - datetime.timedelta(days=10)
    lo = datetime.datetime.combine(day, datetime.time(0, 0), ZONE)
    hi = lo + datetime.timedelta(days=1)
    per = rows // 1000
    step = 86400.0 / per
    log(f"archive: seeding {rows} rows on {day}")
    t0 = time.monotonic()
    subprocess.run(psql + ["-c", f"SELECT mcs_create_day_partition('{day}', '{TZ}')",
                           "-c", f"INSERT INTO sensor_data ({COLS}) SELECT "
                           f"'{lo.isoformat()}'::timestamptz + (i * {step}) * interval '1 second', "
                           "'AB' || lpad(d::text, 4, '0'), 1000 + random() * 3000, "
                           "random() * 5000, 15 + random() * 20, 30 + random() * 50, "
                           "50 + (random() * 50)::int, -40 - (random() * 50)::int, i % 65536 "
                           f"FROM generate_series(0, 999) d, generate_series(0, {per - 1}) i"],
                   env=env, check=True, capture_output=True, timeout=600)
    subprocess.run(psql + ["-c", "VACUUM ANALYZE sensor_data"], env=env, check=True,
                   capture_output=True, timeout=600)
    log(f"archive: seeded in {time.monotonic() - t0:.1f} s")

    out = run / "baseline.csv.gz"
    sel = (f"SELECT {COLS} FROM sensor_data WHERE time >= '{lo.isoformat()}' "
           f"AND time < '{hi.isoformat()}'")
    t0 = time.monotonic()
    p = subprocess.run(" ".join(["'" + x + "'" for x in psql]) +
                       f" -c \"\\copy ({sel}) to stdout with (format csv, header)\""
                       f" | gzip -6 > '{out}'", shell=True, env=env, timeout=600)
    base_s = time.monotonic() - t0
    if p.returncode:
        print("error: baseline psql | gzip failed")
        return 1

    # The archive runs where it runs in production: in mcsd's scheduler, as
    # the catch-up of a missed 02:00 slot at start (the slot before it done).
    now = datetime.datetime.now(ZONE)
    slot = now.replace(hour=2, minute=0, second=0, microsecond=0)
    if slot > now:
        slot -= datetime.timedelta(days=1)
    subprocess.run(psql + ["-c", "DELETE FROM job_runs WHERE job = 'archive'", "-c",
                           "INSERT INTO job_runs (job, due, trigger, instance, outcome, ended_at)"
                           f" VALUES ('archive', '{(slot - datetime.timedelta(days=1)).isoformat()}',"
                           " 'schedule', 'bench', 'ok', now())"],
                   env=env, check=True, capture_output=True, timeout=60)
    (run / "spool-archive").mkdir(exist_ok=True)
    menv = dict(env, SCHED_ENABLED="1")
    logf = open(run / "mcsd-archive.log", "wb")
    proc = subprocess.Popen([str(build / "mcsd")], env=menv, stdout=logf, stderr=subprocess.STDOUT,
                            cwd=str(run))
    hwm = 0
    deadline = time.monotonic() + 240
    res = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            for line in open(f"/proc/{proc.pid}/status"):
                if line.startswith("VmHWM:"):
                    hwm = max(hwm, int(line.split()[1]))
        except OSError:
            pass
        got = subprocess.run(psql + ["-At", "-c", "SELECT outcome, extract(epoch FROM ended_at - "
                                     f"started_at) FROM job_runs WHERE job = 'archive' AND due = "
                                     f"'{slot.isoformat()}' AND outcome <> 'running'"],
                             env=env, capture_output=True, text=True, timeout=30).stdout.strip()
        if got:
            res = got.split("|")
            break
        time.sleep(0.5)  # VmHWM is the kernel's peak: sampling need not be fast
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    if not res or res[0] != "ok":
        print(f"error: scheduled archive did not succeed: {res}")
        return 1
    arch_s = float(res[1])
    gz = run / "archive" / f"archive/{day:%Y}/{day:%m}/sensor_data_{day:%Y%m%d}.csv.gz"
    fig("archive_rows", rows)
    fig("archive_rows_per_s", int(rows / arch_s))
    fig("archive_baseline_rows_per_s", int(rows / base_s))
    fig("archive_ratio", f"{base_s / arch_s:.3f}")
    fig("archive_rss_mb", f"{hwm / 1024:.1f}")
    fig("archive_gz_mb", f"{gz.stat().st_size / 1048576:.1f}")
    log(f"archive: job {arch_s:.2f} s, baseline {base_s:.2f} s, "
        f"baseline file {out.stat().st_size / 1048576:.1f} MiB")

    def hist():
        t = time.monotonic()
        r = subprocess.run([str(build / "mcs"), "history", "AB0042", lo.isoformat(),
                            hi.isoformat()], env=env, capture_output=True, text=True,
                           timeout=120)
        if r.returncode:
            raise RuntimeError(r.stderr[-300:])
        return (time.monotonic() - t) * 1000, r.stdout.count("\n") - 1
    first, n = hist()
    cached = sorted(hist()[0] for _ in range(20))
    fig("history_cold_first_ms", f"{first:.1f}")
    fig("history_cold_cached_p99_ms", f"{cached[-1]:.1f}")
    log(f"history: {n} rows of one device from the cold day")
    return 0


if __name__ == "__main__":
    sys.exit(main())
