"""test_archive_sched.py - the scheduler and the other jobs of issue #10
(R-OP-2, R-ST-5, R-ST-6): weekly backup restored into an empty database,
leader takeover when the leader is killed, a missed 02:00 archive caught up
at start, hourly packet loss from the stored rows, the license stub."""
import datetime
import re
import secrets
import time

import psycopg2
import pytest

from archivehelpers import (ZONE, archive_key, count_day, ensure_day, job_env,  # noqa: F401
                            local_day, mcs_run, one, partition, reset_archive_state, rows, s3, s3_env,
                            s3server, seed_day, table_counts, table_exists)
from mcshelpers import wait_until

TABLES = ["sensor_data", "devices", "alarm_logs", "archive_logs", "job_runs", "audit_logs",
          "users", "device_stats_hourly", "schema_migrations", "system_config"]


@pytest.fixture(autouse=True)
def clean(pg):
    reset_archive_state(pg)
    yield


def counts(conn):
    return table_counts(conn, TABLES)


def test_backup_is_verified_and_restores_into_an_empty_db(pg, services, s3, s3_env, mcs_run,
                                                          add_device):
    add_device()
    seed_day(pg, local_day(1), n=300)
    bucket = s3_env["R2_BUCKET"]
    # Three older backups; with BACKUP_KEEP=2 only the newest of them stays.
    old = ["backup/2026/01/mcs_20260104.dump", "backup/2026/01/mcs_20260111.dump",
           "backup/2026/01/mcs_20260118.dump"]
    blob = services.run_dir / "fake.dump"
    blob.write_bytes(b"old")
    for k in old:
        s3.curl("PUT", f"{bucket}/{k}", data_file=blob)
    before = counts(pg)
    env = dict(s3_env, BACKUP_KEEP="2")
    r = mcs_run("job", "run", "backup", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    today = datetime.datetime.now(ZONE).date()
    key = f"backup/{today:%Y}/{today:%m}/mcs_{today:%Y%m%d}.dump"
    assert s3.exists(bucket, key)
    assert [s3.exists(bucket, k) for k in old] == [False, False, True]
    assert one(pg, "SELECT status, key, size_bytes > 0 FROM backup_logs ORDER BY id DESC "
                   "LIMIT 1") == ("ok", key, True)

    db = "restore_" + secrets.token_hex(4)
    with pg.cursor() as cur:
        cur.execute(f"CREATE DATABASE {db}")
    try:
        r = mcs_run("backup", "restore", "latest", "--dbname", db, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        c = psycopg2.connect(host=services["DB_HOST"], port=int(services["DB_PORT"]), dbname=db,
                             user=services["DB_USER"], password=services.get("DB_PASS", ""))
        try:
            # The dump holds the backup's own job_runs row, then 'running'.
            before["job_runs"] += 1
            got = counts(c)
            assert got == before, (got, before)
            with c.cursor() as cur:
                cur.execute("SELECT job, outcome FROM job_runs ORDER BY id DESC LIMIT 1")
                assert cur.fetchone() == ("backup", "running")
        finally:
            c.close()
    finally:
        with pg.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {db}")


def test_backup_failure_raises_a_system_alarm(pg, s3_env, mcs_run):
    env = dict(s3_env, R2_SECRET_KEY="wrong")
    r = mcs_run("job", "run", "backup", env=env)
    assert r.returncode == 1
    assert one(pg, "SELECT count(*) FROM alarm_logs WHERE sn = 'SYSTEM' AND "
                   "alarm_type = 'BACKUP_FAILED' AND cleared_at IS NULL")[0] == 1
    assert one(pg, "SELECT status FROM backup_logs ORDER BY id DESC LIMIT 1") == ("failed",)


def leader(pg):
    return one(pg, "SELECT instance, heartbeat FROM sched_leader WHERE id = 1")


def test_leader_takeover_when_the_leader_is_killed(pg, mcsd, job_env):
    env = {k: job_env[k] for k in ("PG_BIN_DIR", "ARCHIVE_DIR", "HISTORY_CACHE_DIR")}
    a = mcsd(SCHED_ENABLED="1", ARCHIVE_SINK="dir", **env)
    wait_until(lambda: (leader(pg) or ("",))[0] == a.instance_id, 20, 0.2,
               "first instance leads")
    b = mcsd(SCHED_ENABLED="1", ARCHIVE_SINK="dir", **env)
    time.sleep(6)  # b tries the lock at least once and must not get it
    assert leader(pg)[0] == a.instance_id
    assert one(pg, "SELECT count(*) FROM job_runs WHERE instance = %s AND trigger <> 'manual'",
               (b.instance_id,))[0] == 0
    a.kill()
    t0 = time.monotonic()
    wait_until(lambda: leader(pg)[0] == b.instance_id, 60, 0.2, "second instance takes over")
    took = time.monotonic() - t0
    assert took < 60
    hb = leader(pg)[1]
    wait_until(lambda: leader(pg)[1] > hb, 15, 0.2, "new leader's heartbeat")
    # Its waits end on stop: no sleeping out a poll period.
    t0 = time.monotonic()
    b.stop()
    assert time.monotonic() - t0 < 5


def test_missed_archive_run_is_caught_up_at_start(pg, mcsd, job_env):
    now = datetime.datetime.now(ZONE)
    slot = now.replace(hour=2, minute=0, second=0, microsecond=0)
    if slot > now:
        slot -= datetime.timedelta(days=1)
    d = local_day(6)
    seed_day(pg, d, n=200)
    with pg.cursor() as cur:
        cur.execute("DELETE FROM job_runs WHERE job = 'archive' AND due IS NOT NULL")
        # The run before the missed one happened; the host was off at `slot`.
        cur.execute("INSERT INTO job_runs (job, due, trigger, instance, outcome, ended_at) "
                    "VALUES ('archive', %s, 'schedule', 'earlier', 'ok', %s)",
                    (slot - datetime.timedelta(days=1), slot - datetime.timedelta(days=1)))
    env = {k: job_env[k] for k in ("PG_BIN_DIR", "ARCHIVE_DIR", "HISTORY_CACHE_DIR")}
    m = mcsd(SCHED_ENABLED="1", ARCHIVE_SINK="dir", **env)

    def done():
        r = one(pg, "SELECT outcome, trigger, instance FROM job_runs WHERE job = 'archive' "
                    "AND due = %s AND outcome <> 'running'", (slot,))
        return r
    r = wait_until(done, 30, 0.2, "archive slot run at start")
    assert r[0] == "ok" and r[2] == m.instance_id
    assert r[1] == ("catchup" if (now - slot).total_seconds() > 120 else "schedule")
    assert not table_exists(pg, partition(d))
    assert one(pg, "SELECT status FROM archive_logs WHERE day = %s", (d,)) == ("archived",)
    m.stop()
    # Started again, it does not run the same slot twice.
    m2 = mcsd(SCHED_ENABLED="1", ARCHIVE_SINK="dir", **env)
    time.sleep(3)
    assert one(pg, "SELECT count(*) FROM job_runs WHERE job = 'archive' AND due = %s",
               (slot,))[0] == 1
    m2.stop()


def test_hourly_packet_loss_from_stored_rows(pg, job_env, mcs_run):
    now = time.time()
    hour = (int(now) // 3600) * 3600 - 3600
    h0 = datetime.datetime.fromtimestamp(hour, datetime.timezone.utc)
    for t in (h0 - datetime.timedelta(minutes=10), h0, h0 + datetime.timedelta(minutes=59)):
        ensure_day(pg, t.astimezone(ZONE).date())
    sn, sn2 = "LOSS" + secrets.token_hex(3), "LOSS" + secrets.token_hex(3)
    # As if two instances stored alternate readings: the loss is in the union.
    prev = [(h0 - datetime.timedelta(minutes=10), 65532)]
    seqs = [65533, 65534, 65535, 0, 1, 3, 4, 10, 10, 11]  # lost: 2, 5..9; 10 repeated
    inside = [(h0 + datetime.timedelta(minutes=5 * i), s) for i, s in enumerate(seqs)]
    with pg.cursor() as cur:
        for t, s in prev + inside:
            cur.execute("INSERT INTO sensor_data (time, sn, seq) VALUES (%s, %s, %s)", (t, sn, s))
        for i in range(5):
            cur.execute("INSERT INTO sensor_data (time, sn, seq) VALUES (%s, %s, %s)",
                        (h0 + datetime.timedelta(minutes=i), sn2, 100 + 2 * i))
    r = mcs_run("job", "run", "stats", env=job_env)
    assert r.returncode == 0, r.stdout + r.stderr
    got = one(pg, "SELECT received, lost, round(loss_rate::numeric, 4) FROM device_stats_hourly "
                  "WHERE sn = %s AND hour = %s", (sn, h0))
    assert got[:2] == (9, 6)
    assert float(got[2]) == round(6 / 15, 4)
    # The second device's first reading has no predecessor: not a loss.
    assert one(pg, "SELECT received, lost FROM device_stats_hourly WHERE sn = %s AND hour = %s",
               (sn2, h0)) == (5, 4)


def test_license_job_reports_not_built(pg, job_env, mcs_run):
    r = mcs_run("job", "run", "license", env=job_env)
    assert r.returncode == 1
    assert "not_built" in r.stdout
    assert one(pg, "SELECT outcome FROM job_runs WHERE job = 'license' ORDER BY id DESC "
                   "LIMIT 1") == ("not_built",)
    assert one(pg, "SELECT count(*) FROM alarm_logs WHERE alarm_type = 'LICENSE_FAILED' "
                   "AND cleared_at IS NULL")[0] == 0


@pytest.mark.parametrize("job", ["offline", "health", "vacuum"])
def test_small_jobs_run_by_hand(pg, job_env, mcs_run, job):
    r = mcs_run("job", "run", job, env=job_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert one(pg, "SELECT outcome, ended_at >= started_at FROM job_runs WHERE job = %s "
                   "ORDER BY id DESC LIMIT 1", (job,)) == ("ok", True)


def test_offline_scan_across_instances(pg, job_env, mcs_run, add_device):
    """The minute job marks offline what no instance heard from for
    OFFLINE_AFTER_S, whichever instance saw it last (R-PR-3, R-OP-2)."""
    stale, fresh = add_device(), add_device()
    with pg.cursor() as cur:
        cur.execute("UPDATE devices SET status = 'online', last_seen = now() - interval '5 min' "
                    "WHERE sn = %s", (stale,))
        cur.execute("UPDATE devices SET status = 'online', last_seen = now() WHERE sn = %s",
                    (fresh,))
    r = mcs_run("job", "run", "offline", env=job_env)
    assert r.returncode == 0, r.stdout + r.stderr
    st = dict(rows(pg, "SELECT sn, status FROM devices WHERE sn IN (%s, %s)", (stale, fresh)))
    assert st == {stale: "offline", fresh: "online"}
    health = mcs_run("job", "run", "health", env=job_env)
    assert health.returncode == 0 and '"redis":"ok"' in health.stdout
