"""test_archive_migration.py - migration 030 re-cuts sensor_data partitions
made by earlier versions (UTC days) into the plant's local days (TZ passed
as mcs.tz), keeping every row (issue #10)."""
import secrets
import subprocess

import psycopg2

from mcshelpers import REPO


def test_utc_partitions_recut_into_local_days(services, pg, base_env, bin_path):
    db = "mig_" + secrets.token_hex(4)
    with pg.cursor() as cur:
        cur.execute(f"CREATE DATABASE {db}")
    c = psycopg2.connect(host=services["DB_HOST"], port=int(services["DB_PORT"]), dbname=db,
                         user=services["DB_USER"], password=services.get("DB_PASS", ""))
    c.autocommit = True
    try:
        with c.cursor() as cur:
            # The schema as version 001 left it, with UTC-day partitions.
            cur.execute((REPO / "db" / "migrations" / "001_init.sql").read_text())
            cur.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                        " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());"
                        " INSERT INTO schema_migrations VALUES (1, '001_init.sql')")
            for d in ("2026-11-27", "2026-11-28", "2026-11-29"):
                cur.execute(f"CREATE TABLE sensor_data_{d.replace('-', '')} PARTITION OF "
                            f"sensor_data FOR VALUES FROM ('{d} 00:00+00') TO "
                            f"('{d} 00:00+00'::timestamptz + interval '1 day')")
            cur.execute("INSERT INTO sensor_data (time, sn, seq) SELECT '2026-11-27 00:00+00'"
                        "::timestamptz + i * interval '1 minute', 'M' || (i % 7), i "
                        "FROM generate_series(0, 3 * 1440 - 1) i")
        env = dict(base_env, DB_NAME=db, TZ="America/New_York")
        r = subprocess.run([bin_path("mcsd"), "--migrate"], env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        with c.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT (sn, time, seq)) FROM sensor_data")
            assert cur.fetchone() == (3 * 1440, 3 * 1440)
            cur.execute("SET TimeZone = 'UTC'")
            cur.execute("SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = "
                        "'sensor_data'::regclass ORDER BY 1")
            parts = cur.fetchall()
            # New York is UTC-5 in late November: local days start at 05:00 UTC.
            assert [p[0] for p in parts] == ["sensor_data_20261126", "sensor_data_20261127",
                                             "sensor_data_20261128", "sensor_data_20261129"]
            assert "2026-11-27 05:00:00+00" in parts[1][1] and "2026-11-28 05:00:00+00" in parts[1][1]
            cur.execute("SELECT tableoid::regclass::text, count(*) FROM sensor_data GROUP BY 1 "
                        "ORDER BY 1")
            assert cur.fetchall() == [("sensor_data_20261126", 300), ("sensor_data_20261127", 1440),
                                      ("sensor_data_20261128", 1440), ("sensor_data_20261129", 1140)]
    finally:
        c.close()
        with pg.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {db}")
