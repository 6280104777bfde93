"""test_timescaledb.py - the TimescaleDB dialect for real (issue #18), against
TimescaleDB 2.28.3 built from the upstream source by scripts/timescaledb.sh
into a machine-local PostgreSQL tree. Runs when the suite's PostgreSQL is that
one (MCS_PG_DIALECT=timescaledb: scripts/test.sh runs this file and the
storage, archive and history files so); the same storage/archive/history
tests run on native partitions in the normal pass."""
import datetime
import os
import shutil
import subprocess
import threading

import psycopg2
import pytest

from archivehelpers import (TZ, ZONE, archive_key, count_day, day_bounds, day_rows,  # noqa: F401
                            gunzip_csv, job_env, local_day, mcs_run, one, partition,
                            reset_archive_state, rows, s3, s3_env, s3server, seed_day,
                            table_exists)
from mcshelpers import REPO, parse_env, wait_until

pytestmark = pytest.mark.skipif(os.environ.get("MCS_PG_DIALECT") != "timescaledb",
                                reason="TimescaleDB pass only (MCS_PG_DIALECT=timescaledb)")


@pytest.fixture(autouse=True)
def clean(pg):
    reset_archive_state(pg)
    yield


def chunks(pg):
    return rows(pg, "SELECT chunk_name, range_start, range_end, is_compressed "
                    "FROM timescaledb_information.chunks WHERE hypertable_name = 'sensor_data' "
                    "ORDER BY range_start")


def test_sensor_data_is_a_compressed_hypertable(pg):
    assert one(pg, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'") == \
        ("2.28.3",)
    assert one(pg, "SELECT compression_enabled FROM timescaledb_information.hypertables "
                   "WHERE hypertable_name = 'sensor_data'") == (True,)
    # Every column of the unique index (sn, time DESC, seq) is a segment or
    # order column, as compression with a unique index requires.
    got = rows(pg, "SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc "
                   "FROM timescaledb_information.compression_settings "
                   "WHERE hypertable_name = 'sensor_data' ORDER BY attname")
    assert got == [("seq", None, 2, True), ("sn", 1, None, None), ("time", None, 1, False)]
    assert one(pg, "SELECT config->>'compress_after' FROM timescaledb_information.jobs "
                   "WHERE hypertable_name = 'sensor_data' AND proc_name = 'policy_compression'"
               ) == ("1 day",)


def test_chunks_are_the_plants_local_days(pg, mcsd, add_device, mqtt_pub, wait_db):
    """mcsd makes the chunk of a reading's local day (Asia/Shanghai: 16:00
    UTC to 16:00 UTC), not the UTC day TimescaleDB would cut."""
    sn = add_device()
    mcsd(DATA_RETENTION_DAYS="30")
    d = local_day(2)
    ts = int(day_bounds(d)[0].timestamp()) + 60  # 00:01 local = 16:01 UTC the day before
    mqtt_pub.reading(sn, ts=ts, seq=1)
    wait_db("SELECT 1 FROM sensor_data WHERE sn = %s", (sn,), desc="the reading stored")
    lo, hi = day_bounds(d)
    got = [c for c in chunks(pg) if c[1] <= lo.astimezone(datetime.timezone.utc) < c[2]]
    assert len(got) == 1
    assert (got[0][0], got[0][1], got[0][2]) == (partition(d), lo, hi)


def test_archive_of_a_compressed_day_drops_its_chunk(pg, s3, s3_env, mcs_run):
    d = local_day(6)
    seed_day(pg, d, n=600)
    with pg.cursor() as cur:
        cur.execute("SELECT compress_chunk(format('%%I.%%I', chunk_schema, chunk_name)) "
                    "FROM timescaledb_information.chunks WHERE chunk_name = %s", (partition(d),))
    assert [c[3] for c in chunks(pg) if c[0] == partition(d)] == [True]
    before = day_rows(pg, d)
    # A late duplicate of a stored row is refused by the unique index even in
    # a compressed chunk (mcsd then drops it as a resend).
    with pytest.raises(psycopg2.errors.UniqueViolation):
        with pg.cursor() as cur:
            cur.execute("INSERT INTO sensor_data (time, sn, seq) SELECT time, sn, seq "
                        "FROM sensor_data WHERE time >= %s LIMIT 1", (day_bounds(d)[0],))
    r = mcs_run("job", "run", "archive", env=s3_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert gunzip_csv(s3.get(s3_env["R2_BUCKET"], archive_key(d))) == before
    assert not table_exists(pg, partition(d)) and count_day(pg, d) == 0


def test_archive_counts_and_drops_under_one_lock(services, pg, s3, s3_env, mcs_run):
    """A row written into the day while the archive counts must be either in
    the file or still in the database: the archive waits for the writer's
    transaction, then finds one row more than its file and keeps the day."""
    d = local_day(6)
    seed_day(pg, d, n=200)
    writer = services.pg_connect()
    writer.autocommit = False
    with writer.cursor() as cur:
        cur.execute("INSERT INTO sensor_data (time, sn, seq) VALUES (%s, 'LATE1', 1)",
                    (day_bounds(d)[0] + datetime.timedelta(hours=3),))
    out = {}
    t = threading.Thread(target=lambda: out.update(r=mcs_run("job", "run", "archive",
                                                             env=s3_env)))
    t.start()
    try:
        wait_until(lambda: one(pg, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a "
                                   "USING (pid) WHERE NOT l.granted "
                                   "AND a.application_name LIKE 'mcs%%'")[0] > 0,
                   30, desc="the archive waiting for the writer's lock")
    finally:
        writer.commit()
        writer.close()
    t.join(60)
    assert out["r"].returncode == 1 and "holds 201 rows, the file 200" in out["r"].stdout
    assert count_day(pg, d) == 201


def test_installed_but_not_preloaded_falls_back_to_native(bin_path, base_env):
    """The extension available but not in shared_preload_libraries:
    CREATE EXTENSION would fail ('must be preloaded'); the migration gives
    native partitions and mcsd says why."""
    # Beside the suite's run directory: the postgres user must reach it.
    run = REPO / ".run" / f"nopreload-{os.getpid()}"
    shutil.rmtree(run, ignore_errors=True)
    env = dict(os.environ, MCS_PG_DIALECT="timescaledb-nopreload")
    env.pop("MCS_BROKER_AUTH", None)
    svc = REPO / "scripts" / "svc.sh"
    subprocess.run(["bash", str(svc), "start", str(run)], check=True, env=env, timeout=180,
                   capture_output=True)
    try:
        e = dict(base_env)
        e.update({k: v for k, v in parse_env(run / "env").items()
                  if k.startswith(("DB_", "REDIS_", "MQTT_"))})
        m = subprocess.run([bin_path("mcsd"), "--migrate"], env=e, capture_output=True,
                           text=True, timeout=120)
        assert m.returncode == 0, m.stdout + m.stderr
        assert "not in shared_preload_libraries" in m.stdout + m.stderr
        c = psycopg2.connect(host=e["DB_HOST"], port=int(e["DB_PORT"]), dbname=e["DB_NAME"],
                             user=e["DB_USER"])
        c.autocommit = True
        try:
            with c.cursor() as cur:
                cur.execute("SELECT name FROM pg_available_extensions WHERE name = 'timescaledb'")
                assert cur.fetchall() == [("timescaledb",)]
                cur.execute("SELECT count(*) FROM pg_partitioned_table "
                            "WHERE partrelid = 'sensor_data'::regclass")
                assert cur.fetchone() == (1,)
        finally:
            c.close()
    finally:
        subprocess.run(["bash", str(svc), "stop", str(run)], env=env, timeout=180,
                       capture_output=True)
        shutil.rmtree(run, ignore_errors=True)
