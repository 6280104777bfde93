"""test_archive.py - the daily archive (issue #10, R-ST-4) against a real
S3-compatible server that checks SigV4 (@20minutes/s3rver) and the local
directory sink. Every archive file is checked independently: downloaded with
`curl --aws-sigv4`, gunzipped and compared line by line with what the
database held before the run; the partitions are gone only when that holds."""
import hashlib
import json
import os
import subprocess

import pytest

from archivehelpers import (archive_key, count_day, day_bounds, day_rows, ensure_day,  # noqa: F401
                            gunzip_csv, job_env, local_day, mcs_run, one, partition,
                            reset_archive_state, rows, s3, s3_env, s3server, seed_day,
                            table_exists)

HEADER = "time,sn,v_raw,ppm,temp,humi,bat,rssi,seq"


@pytest.fixture(autouse=True)
def clean(pg):
    reset_archive_state(pg)
    yield


def active_alarms(pg, kind="ARCHIVE_FAILED"):
    return rows(pg, "SELECT message, count FROM alarm_logs WHERE sn = 'SYSTEM' "
                    "AND alarm_type = %s AND cleared_at IS NULL", (kind,))


def test_archive_several_days_verified_then_dropped(pg, s3, s3_env, mcs_run):
    old = [local_day(b) for b in (7, 6, 5)]
    hot = local_day(1)
    for i, d in enumerate(old):
        seed_day(pg, d, n=400 + 100 * i, start_seq=65400)  # seq wraps past 65535
    seed_day(pg, hot, n=50)
    before = {d: day_rows(pg, d) for d in old}
    hot_rows = count_day(pg, hot)

    r = mcs_run("job", "run", "archive", env=s3_env)
    assert r.returncode == 0, r.stdout + r.stderr
    detail = json.loads(r.stdout.splitlines()[1])
    assert detail["archived"] == 3 and detail["rows"] == 400 + 500 + 600

    bucket = s3_env["R2_BUCKET"]
    for d in old:
        blob = s3.get(bucket, archive_key(d))
        header, lines = gunzip_csv(blob)
        assert header == HEADER
        assert (header, lines) == before[d], f"archive of {d} differs from the database"
        log = one(pg, "SELECT status, row_count, size_bytes, md5, file_name, sink "
                      "FROM archive_logs WHERE day = %s", (d,))
        assert log == ("archived", len(lines), len(blob), hashlib.md5(blob).hexdigest(),
                       archive_key(d), "s3")
        assert not table_exists(pg, partition(d)) and count_day(pg, d) == 0
    # The API's streamed download (archive_download) as `mcs archive get`.
    got = subprocess.run([mcs_run.binary, "archive", "get", str(old[0])], env=s3_env,
                         capture_output=True, timeout=60)
    assert got.returncode == 0 and got.stdout == s3.get(bucket, archive_key(old[0]))
    assert mcs_run("archive", "get", str(hot), env=s3_env).returncode == 1
    # The hot day is untouched.
    assert count_day(pg, hot) == hot_rows
    assert one(pg, "SELECT count(*) FROM archive_logs WHERE day = %s", (hot,))[0] == 0
    run = one(pg, "SELECT outcome, trigger, ended_at IS NOT NULL FROM job_runs "
                  "WHERE job = 'archive' ORDER BY id DESC LIMIT 1")
    assert run == ("ok", "manual", True)


def test_day_without_data(pg, s3, s3_env, mcs_run):
    empty, full = local_day(8), local_day(6)
    ensure_day(pg, empty)
    seed_day(pg, full, n=100)
    r = mcs_run("job", "run", "archive", env=s3_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert one(pg, "SELECT status, row_count FROM archive_logs WHERE day = %s",
               (empty,)) == ("empty", 0)
    assert not table_exists(pg, partition(empty))
    assert not s3.exists(s3_env["R2_BUCKET"], archive_key(empty))
    assert s3.exists(s3_env["R2_BUCKET"], archive_key(full))


@pytest.mark.parametrize("failure", ["server_down", "wrong_key", "bucket_missing"])
def test_upload_failure_deletes_nothing_and_alarms(pg, s3, s3_env, mcs_run, failure):
    days = [local_day(6), local_day(5)]
    for d in days:
        seed_day(pg, d, n=300)
    before = {d: day_rows(pg, d) for d in days}
    env = dict(s3_env)
    if failure == "server_down":
        s3.stop()
    elif failure == "wrong_key":
        env["R2_SECRET_KEY"] = "not-the-secret"
    else:
        env["R2_BUCKET"] = "no-such-bucket"

    r = mcs_run("job", "run", "archive", env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "failed" in r.stdout
    for d in days:
        assert day_rows(pg, d) == before[d], "a failed run deleted rows"
        assert table_exists(pg, partition(d))
        # One day's failure does not hold the next back (issue #18): both
        # were tried, both failed, both keep every row.
        assert one(pg, "SELECT status FROM archive_logs WHERE day = %s", (d,)) == ("failed",)
    alarms = active_alarms(pg)
    assert len(alarms) == 1 and "archive" in alarms[0][0]
    assert one(pg, "SELECT outcome FROM job_runs WHERE job = 'archive' ORDER BY id DESC "
                   "LIMIT 1") == ("failed",)

    # Fixed: the next run archives both days and clears the alarm.
    if failure == "server_down":
        s3.start()
    r = mcs_run("job", "run", "archive", env=s3_env)
    assert r.returncode == 0, r.stdout + r.stderr
    for d in days:
        assert gunzip_csv(s3.get(s3_env["R2_BUCKET"], archive_key(d))) == before[d]
        assert not table_exists(pg, partition(d))
    assert active_alarms(pg) == []


def test_crash_between_upload_and_drop_reruns_cleanly(pg, s3, s3_env, mcs_run):
    d = local_day(6)
    seed_day(pg, d, n=700)
    before = day_rows(pg, d)
    env = dict(s3_env, MCS_TEST_ARCHIVE_CRASH="1")
    r = mcs_run("job", "run", "archive", env=env)
    assert r.returncode == 99, r.stdout + r.stderr
    # Uploaded, verified, but not dropped: the database still has every row.
    assert s3.exists(s3_env["R2_BUCKET"], archive_key(d))
    assert day_rows(pg, d) == before
    assert one(pg, "SELECT status FROM archive_logs WHERE day = %s", (d,)) == ("running",)
    crashed = one(pg, "SELECT id, outcome FROM job_runs WHERE job = 'archive' ORDER BY id DESC "
                      "LIMIT 1")
    assert crashed[1] == "running"

    r = mcs_run("job", "run", "archive", env=s3_env)
    assert r.returncode == 0, r.stdout + r.stderr
    # The dead run's row is closed by the next run of the job.
    assert one(pg, "SELECT outcome FROM job_runs WHERE id = %s", (crashed[0],)) == ("abandoned",)
    assert gunzip_csv(s3.get(s3_env["R2_BUCKET"], archive_key(d))) == before
    assert one(pg, "SELECT status, row_count FROM archive_logs WHERE day = %s",
               (d,)) == ("archived", 700)
    assert not table_exists(pg, partition(d))


def test_rerun_never_duplicates_or_loses(pg, s3, s3_env, mcs_run):
    d = local_day(6)
    seed_day(pg, d, n=250)
    before = day_rows(pg, d)
    assert mcs_run("job", "run", "archive", env=s3_env).returncode == 0
    blob = s3.get(s3_env["R2_BUCKET"], archive_key(d))
    log = one(pg, "SELECT status, row_count, md5, updated_at FROM archive_logs WHERE day = %s", (d,))

    # The store thread makes empty partitions ahead of time: one reappears.
    ensure_day(pg, d)
    r = mcs_run("job", "run", "archive", env=s3_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert s3.get(s3_env["R2_BUCKET"], archive_key(d)) == blob
    assert gunzip_csv(blob) == before
    assert one(pg, "SELECT status, row_count, md5 FROM archive_logs WHERE day = %s",
               (d,)) == log[:3]
    assert one(pg, "SELECT count(*) FROM archive_logs WHERE day = %s", (d,))[0] == 1

    # Rows that reach an archived day again: test_late_rows_*.


def test_multipart_upload_of_a_large_day(pg, s3, s3_env, mcs_run):
    d = local_day(6)
    seed_day(pg, d, n=120000, random_values=True)
    before = day_rows(pg, d)
    env = dict(s3_env, ARCHIVE_PART_MB="1")
    r = mcs_run("job", "run", "archive", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    parts = [json.loads(line)["parts"] for line in r.stderr.splitlines()
             if '"day uploaded and verified"' in line]
    assert parts and parts[0] >= 2, r.stderr
    blob = s3.get(s3_env["R2_BUCKET"], archive_key(d))
    assert gunzip_csv(blob) == before
    assert one(pg, "SELECT md5, size_bytes FROM archive_logs WHERE day = %s",
               (d,)) == (hashlib.md5(blob).hexdigest(), len(blob))


def test_directory_sink(pg, job_env, mcs_run):
    days = [local_day(7), local_day(6)]
    for d in days:
        seed_day(pg, d, n=321)
    before = {d: day_rows(pg, d) for d in days}
    env = dict(job_env, ARCHIVE_SINK="dir")
    r = mcs_run("job", "run", "archive", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    for d in days:
        path = os.path.join(env["ARCHIVE_DIR"], archive_key(d))
        blob = open(path, "rb").read()
        assert gunzip_csv(blob) == before[d]
        assert one(pg, "SELECT status, sink, md5 FROM archive_logs WHERE day = %s",
                   (d,)) == ("archived", "dir", hashlib.md5(blob).hexdigest())
        assert not table_exists(pg, partition(d))
    leftovers = [f for _, _, fs in os.walk(env["ARCHIVE_DIR"]) for f in fs if ".tmp." in f]
    assert leftovers == []


def test_multipart_failure_midway_deletes_nothing(pg, s3, s3_env, mcs_run):
    """The first part fails while COPY is still streaming: the export is
    cancelled, the run is recorded as failed on the same connection, and the
    day stays whole."""
    d = local_day(6)
    seed_day(pg, d, n=120000, random_values=True)
    before = count_day(pg, d)
    env = dict(s3_env, ARCHIVE_PART_MB="1", R2_SECRET_KEY="wrong-secret")
    r = mcs_run("job", "run", "archive", env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "SignatureDoesNotMatch" in r.stdout or "403" in r.stdout
    assert count_day(pg, d) == before and table_exists(pg, partition(d))
    assert one(pg, "SELECT status FROM archive_logs WHERE day = %s", (d,)) == ("failed",)
    assert one(pg, "SELECT outcome FROM job_runs WHERE job = 'archive' ORDER BY id DESC "
                   "LIMIT 1") == ("failed",)
    assert not s3.exists(s3_env["R2_BUCKET"], archive_key(d))


def v2_key(d, n=2):
    return f"archive/{d:%Y}/{d:%m}/sensor_data_{d:%Y%m%d}.v{n}.csv.gz"


def test_late_rows_into_an_archived_day_are_merged(pg, s3, s3_env, mcs_run):
    """A journal replayed after an outage that spanned 02:00 re-creates an
    archived day's partition with rows: they go into a verified new version
    of the day's file, the old version goes, history reads them (issue #18)."""
    d, newer = local_day(7), local_day(6)
    seed_day(pg, d, n=250)
    bucket = s3_env["R2_BUCKET"]
    assert mcs_run("job", "run", "archive", env=s3_env).returncode == 0
    header, first = gunzip_csv(s3.get(bucket, archive_key(d)))

    seed_day(pg, d, n=12, sns=("LATE1",), start_seq=900)
    late = day_rows(pg, d)[1]
    # History shows the late rows at once, beside the day's file.
    lo, hi = day_bounds(d)
    h = mcs_run("history", "LATE1", lo.isoformat(), hi.isoformat(), env=s3_env)
    assert h.returncode == 0, h.stderr
    assert sorted(h.stdout.splitlines()[1:]) == late
    h = mcs_run("history", "ARC1", lo.isoformat(), hi.isoformat(), env=s3_env)
    assert len(h.stdout.splitlines()) == 1 + 84  # ARC1's rows of 250, from the file
    seed_day(pg, newer, n=40)
    newer_rows = day_rows(pg, newer)
    r = mcs_run("job", "run", "archive", env=s3_env)
    assert r.returncode == 0, r.stdout + r.stderr
    detail = json.loads(r.stdout.splitlines()[1])
    assert detail["archived"] == 2 and detail["merged"] == 1 and detail["failed"] == []

    blob = s3.get(bucket, v2_key(d))
    assert gunzip_csv(blob) == (header, sorted(first + late))
    assert not s3.exists(bucket, archive_key(d))
    assert one(pg, "SELECT status, row_count, file_name, md5, size_bytes FROM archive_logs "
                   "WHERE day = %s", (d,)) == ("archived", 262, v2_key(d),
                                               hashlib.md5(blob).hexdigest(), len(blob))
    assert count_day(pg, d) == 0 and not table_exists(pg, partition(d))
    assert gunzip_csv(s3.get(bucket, archive_key(newer))) == newer_rows
    h = mcs_run("history", "LATE1", lo.isoformat(), hi.isoformat(), env=s3_env)
    assert h.returncode == 0, h.stderr
    assert sorted(h.stdout.splitlines()[1:]) == late

    # A third version replaces the second the same way.
    seed_day(pg, d, n=3, sns=("LATE2",), start_seq=950)
    assert mcs_run("job", "run", "archive", env=s3_env).returncode == 0
    assert len(gunzip_csv(s3.get(bucket, v2_key(d, 3)))[1]) == 265
    assert not s3.exists(bucket, v2_key(d))


def test_one_failed_day_does_not_hold_back_newer_days(pg, s3, s3_env, mcs_run):
    """An archived day whose late rows cannot be merged (its file is gone
    from the bucket) fails alone: it keeps its rows and its record, newer
    days are archived and dropped, the job fails and alarms."""
    d, newer = local_day(8), local_day(6)
    seed_day(pg, d, n=100)
    bucket = s3_env["R2_BUCKET"]
    assert mcs_run("job", "run", "archive", env=s3_env).returncode == 0
    s3.curl("DELETE", f"{bucket}/{archive_key(d)}")
    seed_day(pg, d, n=5, sns=("LATE1",))
    seed_day(pg, newer, n=60)
    newer_rows = day_rows(pg, newer)

    r = mcs_run("job", "run", "archive", env=s3_env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"day {d}" in r.stdout
    assert count_day(pg, d) == 5
    log = one(pg, "SELECT status, row_count, file_name, error IS NOT NULL FROM archive_logs "
                  "WHERE day = %s", (d,))
    assert log == ("archived", 100, archive_key(d), True)
    assert gunzip_csv(s3.get(bucket, archive_key(newer))) == newer_rows
    assert count_day(pg, newer) == 0 and not table_exists(pg, partition(newer))
    assert active_alarms(pg)
    run = one(pg, "SELECT outcome, detail->'failed' FROM job_runs WHERE job = 'archive' "
                  "ORDER BY id DESC LIMIT 1")
    assert run == ("failed", [str(d)])


def test_late_reading_stored_by_mcsd_is_merged(pg, s3, s3_env, mcs_run, mcsd, add_device,
                                               mqtt_pub, wait_db):
    """The path of a real late row: mcsd stores a reading of a day already
    archived (it accepts readings as old as its own DATA_RETENTION_DAYS; a
    journal replayed after an outage stores them the same way), which makes
    the day's partition or chunk again; the next archive merges it."""
    d = local_day(6)
    seed_day(pg, d, n=50)
    assert mcs_run("job", "run", "archive", env=s3_env).returncode == 0
    before = gunzip_csv(s3.get(s3_env["R2_BUCKET"], archive_key(d)))

    sn = add_device(sn="LATE" + os.urandom(3).hex().upper())
    mcsd(DATA_RETENTION_DAYS="30")
    ts = int(day_bounds(d)[0].timestamp()) + 12 * 3600
    mqtt_pub.reading(sn, ts=ts, seq=7, v_raw=1234.5)
    wait_db("SELECT 1 FROM sensor_data WHERE sn = %s", (sn,), desc="the late reading stored")
    late = day_rows(pg, d)[1]
    assert len(late) == 1 and sn in late[0]

    r = mcs_run("job", "run", "archive", env=s3_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert gunzip_csv(s3.get(s3_env["R2_BUCKET"], v2_key(d))) == (before[0],
                                                                  sorted(before[1] + late))
    assert count_day(pg, d) == 0
    assert one(pg, "SELECT row_count FROM archive_logs WHERE day = %s", (d,)) == (51,)
