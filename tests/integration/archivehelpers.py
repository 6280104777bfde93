"""archivehelpers.py - what the archive/scheduler tests (issue #10) share: the
S3 test server (@20minutes/s3rver, SigV4-checking, from tests/s3), buckets,
independent downloads with `curl --aws-sigv4`, seeding old local days into
sensor_data with psycopg2, and running `mcs job ...`.

Fixtures here are imported by the test_archive*.py modules."""
import csv
import datetime
import gzip
import io
import os
import secrets
import shutil
import socket
import subprocess
import time
import zoneinfo
from pathlib import Path

import pytest

from mcshelpers import REPO, build_dir, wait_until

TZ = "Asia/Shanghai"
ZONE = zoneinfo.ZoneInfo(TZ)
S3_DIR = REPO / "tests" / "s3"
EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
PGBIN = "/usr/lib/postgresql/15/bin"
COLS = "time, sn, v_raw, ppm, temp, humi, bat, rssi, seq"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class S3Server:
    """The S3 stand-in on a free loopback port; stop()/start() keep its data."""

    def __init__(self, root):
        self.root = Path(root)
        self.data = self.root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.key = "AK" + secrets.token_hex(6).upper()
        self.secret = secrets.token_hex(16)
        self.proc = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        if not (S3_DIR / "node_modules" / "@20minutes" / "s3rver").exists():
            pytest.fail("tests/s3/node_modules missing: run scripts/deps.sh (npm ci)",
                        pytrace=False)
        log = open(self.root / "s3rver.log", "ab")
        self.proc = subprocess.Popen(["node", str(S3_DIR / "server.js"), str(self.data),
                                      str(self.port), self.key, self.secret],
                                     stdout=subprocess.PIPE, stderr=log, cwd=str(S3_DIR))
        line = self.proc.stdout.readline().decode()
        if not line.startswith("ready"):
            pytest.fail(f"s3rver did not start: {line!r}", pytrace=False)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def curl(self, method, path, data_file=None, secret=None, check=True):
        """A request signed by curl's own SigV4 (independent of our client).
        Returns (status, body bytes)."""
        cmd = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--aws-sigv4", "aws:amz:auto:s3",
               "--user", f"{self.key}:{secret or self.secret}"]
        cmd += ["-I"] if method == "HEAD" else ["-X", method]
        if data_file:
            sha = subprocess.run(["sha256sum", str(data_file)], capture_output=True,
                                 text=True).stdout.split()[0]
            cmd += ["-H", f"x-amz-content-sha256: {sha}", "--data-binary", f"@{data_file}"]
        else:
            cmd += ["-H", f"x-amz-content-sha256: {EMPTY_SHA}"]
        r = subprocess.run(cmd + [f"{self.endpoint}/{path}"], capture_output=True, timeout=60)
        body, _, code = r.stdout.rpartition(b"\n")
        status = int(code or b"0")
        if check and not 200 <= status < 300:
            raise AssertionError(f"curl {method} {path}: HTTP {status}: {body[:300]!r}")
        return status, body

    def make_bucket(self):
        name = "b-" + secrets.token_hex(4)
        self.curl("PUT", name)
        return name

    def get(self, bucket, key):
        return self.curl("GET", f"{bucket}/{key}")[1]

    def exists(self, bucket, key):
        return self.curl("HEAD", f"{bucket}/{key}", check=False)[0] == 200


@pytest.fixture(scope="session")
def s3server(services):
    srv = S3Server(Path(services.run_dir) / "s3")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def s3(s3server):
    """The running S3 server, restarted if a test stopped it."""
    if s3server.proc is None or s3server.proc.poll() is not None:
        s3server.start()
    yield s3server
    if s3server.proc is None or s3server.proc.poll() is not None:
        s3server.start()


def local_day(back):
    """The plant's calendar date `back` days before today."""
    return datetime.datetime.now(ZONE).date() - datetime.timedelta(days=back)


def day_bounds(d):
    lo = datetime.datetime.combine(d, datetime.time(0, 0), ZONE)
    hi = datetime.datetime.combine(d + datetime.timedelta(days=1), datetime.time(0, 0), ZONE)
    return lo, hi


def archive_key(d):
    return f"archive/{d:%Y}/{d:%m}/sensor_data_{d:%Y%m%d}.csv.gz"


def partition(d):
    """Day d's partition (native) or chunk (TimescaleDB, in
    _timescaledb_internal): both are named so by mcsd."""
    return f"sensor_data_{d:%Y%m%d}"


def is_timescale(pg):
    """Whether sensor_data is a TimescaleDB hypertable (MCS_PG_DIALECT=timescaledb)."""
    return one(pg, "SELECT NOT EXISTS (SELECT 1 FROM pg_partitioned_table "
                   "WHERE partrelid = 'sensor_data'::regclass)")[0]


def ensure_day(pg, d):
    """Makes day d's partition or chunk as mcsd does ahead of time."""
    fn = "mcs_ts_ensure_day" if is_timescale(pg) else "mcs_create_day_partition"
    with pg.cursor() as cur:
        cur.execute(f"SELECT {fn}(%s, %s)", (d, TZ))


def reset_archive_state(pg, retention=3):
    """Drops every partition older than the retention, forgets archive_logs
    and clears system alarms, so that each test sees only its own days."""
    cutoff = datetime.datetime.now(ZONE) - datetime.timedelta(days=retention)
    ts = is_timescale(pg)
    with pg.cursor() as cur:
        if ts:
            cur.execute("SELECT count(*) FROM drop_chunks('sensor_data', older_than => %s)",
                        (cutoff,))
        else:
            cur.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c "
                        "ON c.oid = i.inhrelid WHERE i.inhparent = 'sensor_data'::regclass")
            for (name,) in cur.fetchall():
                d = datetime.datetime.strptime(name[-8:], "%Y%m%d").date()
                if day_bounds(d)[1] <= cutoff:
                    cur.execute(f'DROP TABLE "{name}"')
        # Hot-day rows that earlier archive tests seeded (their own SNs only).
        cur.execute("DELETE FROM sensor_data WHERE sn LIKE ANY "
                    "(ARRAY['ARC%%', 'HIST%%', 'BIG%%', 'LATE%%'])")
        cur.execute("DELETE FROM archive_logs")
        cur.execute("UPDATE alarm_logs SET state = 'cleared', cleared_at = now() "
                    "WHERE sn = 'SYSTEM' AND cleared_at IS NULL")


def seed_day(pg, d, n=500, sns=("ARC1", "ARC2", "ARC3"), start_seq=0, random_values=False):
    """Creates day d's partition (the plant's local day) and COPYs n readings
    spread over it. Returns the number of rows."""
    import random
    lo, _ = day_bounds(d)
    step = 86400.0 / n
    buf = io.StringIO()
    for i in range(n):
        t = lo + datetime.timedelta(seconds=i * step)
        sn = sns[i % len(sns)]
        if random_values:
            v = (random.random() * 5000, random.random() * 9000, random.random() * 40,
                 random.random() * 100)
        else:
            v = (1000 + i * 0.5, 12.25 + i, 24.5, 55.0)
        buf.write(f"{t.isoformat()}\t{sn}\t{v[0]}\t{v[1]}\t{v[2]}\t{v[3]}\t{80 + i % 20}\t"
                  f"{-60 - i % 30}\t{(start_seq + i) % 65536}\n")
    buf.seek(0)
    ensure_day(pg, d)
    with pg.cursor() as cur:
        cur.copy_expert(f"COPY sensor_data ({COLS}) FROM STDIN", buf)
    return n


def day_rows(pg, d):
    """The day's rows as the archive must hold them: CSV lines as PostgreSQL
    renders them in the plant's zone (header first), taken now."""
    lo, hi = day_bounds(d)
    buf = io.StringIO()
    with pg.cursor() as cur:
        cur.execute("SET TimeZone = %s", (TZ,))
        cur.copy_expert(cur.mogrify(f"COPY (SELECT {COLS} FROM sensor_data WHERE time >= %s "
                                    f"AND time < %s) TO STDOUT WITH (FORMAT csv, HEADER)",
                                    (lo, hi)).decode(), buf)
        cur.execute("RESET TimeZone")
    lines = buf.getvalue().splitlines()
    return lines[0], sorted(lines[1:])


def count_day(pg, d):
    lo, hi = day_bounds(d)
    with pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM sensor_data WHERE time >= %s AND time < %s", (lo, hi))
        return cur.fetchone()[0]


def gunzip_csv(blob):
    lines = gzip.decompress(blob).decode().splitlines()
    return lines[0], sorted(lines[1:])


def table_exists(pg, name):
    """A table by name; a day's partition name also finds its TimescaleDB chunk."""
    with pg.cursor() as cur:
        cur.execute("SELECT coalesce(to_regclass(%s), to_regclass('_timescaledb_internal.' || %s))",
                    (name, name))
        return cur.fetchone()[0] is not None


def table_counts(conn, tables):
    """{table: row count} of the given tables."""
    out = {}
    with conn.cursor() as cur:
        for t in tables:
            cur.execute(f"SELECT count(*) FROM {t}")
            out[t] = cur.fetchone()[0]
    return out


def one(pg, sql, params=()):
    with pg.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def rows(pg, sql, params=()):
    with pg.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


@pytest.fixture
def job_env(base_env, tmp_path, pg):
    """The environment of `mcs job ...` and scheduler tests: scheduler off
    unless asked, pg_dump/pg_restore of PostgreSQL 15. Storage settings that
    an API test saved (system_config 'storage') are removed: the jobs prefer
    them to the .env R2_* values (src/mcsd/storage_cfg.h)."""
    with pg.cursor() as cur:
        cur.execute("DELETE FROM system_config WHERE key = 'storage'")
    e = dict(base_env)
    e.update({"SCHED_ENABLED": "0", "PG_BIN_DIR": PGBIN, "TZ": TZ,
              "DATA_RETENTION_DAYS": "3", "ARCHIVE_DIR": str(tmp_path / "archive-dir"),
              "HISTORY_CACHE_DIR": str(tmp_path / "hcache")})
    return e


@pytest.fixture
def s3_env(job_env, s3):
    """job_env pointing at a fresh bucket of the S3 test server."""
    e = dict(job_env)
    e.update({"ARCHIVE_SINK": "s3", "R2_ENDPOINT": s3.endpoint, "R2_ACCESS_KEY": s3.key,
              "R2_SECRET_KEY": s3.secret, "R2_BUCKET": s3.make_bucket(), "R2_REGION": "auto"})
    return e


@pytest.fixture
def mcs_run(bin_path, tmp_path):
    """mcs_run(*args, env=...) runs build/mcs in an empty directory."""
    cwd = tmp_path / "cli"
    cwd.mkdir(exist_ok=True)

    def run(*args, env, timeout=120):
        return subprocess.run([bin_path("mcs"), *args], env=env, cwd=str(cwd),
                              capture_output=True, text=True, timeout=timeout)
    run.binary = bin_path("mcs")
    return run
