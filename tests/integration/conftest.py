"""Shared fixtures of the integration suite: real Mosquitto, PostgreSQL 15 and
Redis started by scripts/svc.sh on free loopback ports for the session, the
schema applied by `mcsd --migrate`, and real mcsd processes per test.

Fixture names are a contract (tests/integration/test_cli.py uses them):
services, pg, rds, bin_path, base_env, fresh_sn, add_device, mcsd, mqtt_pub,
mqtt_client, wait_db. Helpers live in mcshelpers.py."""
import os
import shutil
import subprocess

import psycopg2
import pytest
import redis

from mcshelpers import (REPO, McsdLauncher, Publisher, build_dir, new_sn, parse_env,
                        wait_until)

SVC = REPO / "scripts" / "svc.sh"

DEVICE_COLS = {"name", "location", "pos_x", "pos_y", "calib_k", "calib_b", "calib_t_ref",
               "calib_t_comp", "unit", "range_max", "high_limit", "low_limit", "enabled"}


class Services(dict):
    """The services' env file as a dict (DB_HOST, DB_PORT, ..., RUN_DIR), plus
    helpers to stop and start each service mid-test."""

    def __init__(self, run_dir, env):
        super().__init__(env)
        self.run_dir = run_dir

    def _svc(self, cmd):
        r = subprocess.run(["bash", str(SVC), cmd, str(self.run_dir)], capture_output=True,
                           text=True, timeout=120, env=_svc_env())
        if r.returncode != 0:
            raise RuntimeError(f"svc.sh {cmd} failed ({r.returncode}): {r.stderr[-2000:]}")

    def pg_stop(self):
        self._svc("pg-stop")

    def pg_start(self):
        self._svc("pg-start")

    def redis_stop(self):
        self._svc("redis-stop")

    def redis_start(self):
        self._svc("redis-start")

    def mqtt_stop(self):
        self._svc("mqtt-stop")

    def mqtt_start(self):
        self._svc("mqtt-start")

    def pg_connect(self, **kw):
        c = psycopg2.connect(host=self["DB_HOST"], port=int(self["DB_PORT"]),
                             dbname=self["DB_NAME"], user=self["DB_USER"],
                             password=self.get("DB_PASS", ""), connect_timeout=5, **kw)
        c.autocommit = True
        return c

    def redis(self):
        return redis.Redis(host=self["REDIS_HOST"], port=int(self["REDIS_PORT"]),
                           decode_responses=True, socket_timeout=10)


def _svc_env():
    """svc.sh's environment: the suite's broker is anonymous (its publishers
    have no credentials) whatever the caller's shell says."""
    env = dict(os.environ)
    env.pop("MCS_BROKER_AUTH", None)
    return env


def _bin(name):
    return build_dir() / name


def _base_env(services):
    env = dict(os.environ)
    # The tests give mcsd its whole configuration: nothing from the caller's
    # shell may switch on an env file or TLS to the plain listener.
    env.pop("ENV_FILE", None)
    env.pop("MQTT_TLS_CAFILE", None)
    env.update(services)  # its MQTT_CAFILE is for TLS clients; mcsd ignores it
    env["VENDOR_SECRET"] = "test-vendor-secret"
    env["LOG_LEVEL"] = "INFO"
    # issue #10: the scheduler only where a test asks for it (test_archive_sched.py).
    env["SCHED_ENABLED"] = "0"
    return env


@pytest.fixture(scope="session")
def services():
    run_dir = REPO / ".run" / f"it-{os.getpid()}"
    if run_dir.exists():
        shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    started = False
    try:
        r = subprocess.run(["bash", str(SVC), "start", str(run_dir)], capture_output=True,
                           text=True, timeout=180, env=_svc_env())
        started = True
        if r.returncode != 0:
            pytest.fail(f"svc.sh start failed ({r.returncode}):\n{r.stdout}\n{r.stderr}",
                        pytrace=False)
        svc = Services(run_dir, parse_env(run_dir / "env"))
        mcsd_bin = _bin("mcsd")
        if not mcsd_bin.exists():
            pytest.fail(f"{mcsd_bin} not built: cannot apply the schema", pytrace=False)
        m = subprocess.run([str(mcsd_bin), "--migrate"], env=_base_env(svc), cwd=str(run_dir),
                           capture_output=True, text=True, timeout=120)
        if m.returncode != 0:
            pytest.fail(f"mcsd --migrate exited {m.returncode}:\n{m.stdout}\n{m.stderr}",
                        pytrace=False)
        if os.environ.get("MCS_PG_DIALECT") == "timescaledb":
            # The TimescaleDB pass must not quietly run on native partitions.
            c = svc.pg_connect()
            try:
                with c.cursor() as cur:
                    cur.execute("SELECT count(*) FROM timescaledb_information.hypertables "
                                "WHERE hypertable_name = 'sensor_data'")
                    hyper = cur.fetchone()[0] == 1
            finally:
                c.close()
            if not hyper:
                pytest.fail("MCS_PG_DIALECT=timescaledb but sensor_data is no hypertable",
                            pytrace=False)
        yield svc
    finally:
        if started:
            subprocess.run(["bash", str(SVC), "stop", str(run_dir)], capture_output=True,
                           timeout=180, env=_svc_env())
        if not os.environ.get("MCS_KEEP_RUN"):
            shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def pg(services):
    """A psycopg2 connection in autocommit mode (new for each test, so a
    PostgreSQL restart in one test does not break the next)."""
    c = services.pg_connect()
    yield c
    try:
        c.close()
    except Exception:
        pass


@pytest.fixture
def rds(services):
    r = services.redis()
    yield r
    r.close()


@pytest.fixture(scope="session")
def bin_path():
    """bin_path(name) -> path of a binary in MCS_BUILD_DIR (default build/)."""
    return lambda name: str(_bin(name))


@pytest.fixture(scope="session")
def base_env(services):
    return _base_env(services)


@pytest.fixture
def fresh_sn():
    return new_sn


@pytest.fixture
def add_device(pg):
    """add_device(sn=None, **cols) inserts a devices row and returns its sn."""
    def add(sn=None, **cols):
        sn = sn or new_sn()
        bad = set(cols) - DEVICE_COLS
        assert not bad, f"add_device: unknown columns {bad}"
        names = ["sn", *cols]
        with pg.cursor() as cur:
            cur.execute(f"INSERT INTO devices ({', '.join(names)}) VALUES "
                        f"({', '.join(['%s'] * len(names))})", [sn, *cols.values()])
        return sn
    return add


@pytest.fixture
def mcsd(services, base_env, tmp_path):
    """mcsd(**env_overrides) starts build/mcsd and waits for "ready".
    Handles: .stop() .kill() .metrics() .wait_metric() .log_lines().
    At teardown every process still running gets SIGTERM and must exit 0."""
    launcher = McsdLauncher(_bin("mcsd"), base_env, tmp_path, services.redis)
    yield launcher.start
    problems = launcher.cleanup()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def mqtt_client(services):
    """mqtt_client(**kw) -> a connected Publisher (see mcshelpers.Publisher);
    closed at teardown unless closed already."""
    clients = []

    def make(**kw):
        p = Publisher(services["MQTT_HOST"], services["MQTT_PORT"], **kw)
        clients.append(p)
        return p
    yield make
    for p in clients:
        try:
            p.close()
        except Exception:
            pass


@pytest.fixture
def mqtt_pub(mqtt_client):
    """A connected MQTT v5 publisher: .reading(sn, seq=…, v_raw=…, qos=1),
    .publish(topic, payload, qos), .publish_many([(topic, payload)])."""
    return mqtt_client()


@pytest.fixture
def wait_db(pg):
    """wait_db(sql, params=(), pred=bool, timeout=10, desc=None) polls
    PostgreSQL until pred(rows) holds and returns the rows."""
    def wait(sql, params=(), pred=bool, timeout=10.0, desc=None):
        last = {}

        def check():
            with pg.cursor() as cur:
                cur.execute(sql, params)
                rows = cur.fetchall()
            last["rows"] = rows
            return (True, rows) if pred(rows) else None
        r = wait_until(check, timeout, 0.1, desc or f"SQL condition on {sql!r} {params!r}",
                       lambda: f"last rows: {last.get('rows')!r}"[:2000])
        return r[1]
    return wait


def count_rows(conn, sn):
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM sensor_data WHERE sn = %s", (sn,))
        return cur.fetchone()[0]


@pytest.fixture
def db_count(pg):
    """db_count(sn) -> number of sensor_data rows of sn."""
    return lambda sn: count_rows(pg, sn)


def pytest_report_header(config):
    return (f"mcsd build dir: {build_dir()}; PostgreSQL: "
            f"{os.environ.get('MCS_PG_DIALECT', 'native')} (MCS_PG_DIALECT)")

