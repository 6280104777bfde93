"""test_archive_history.py - one history across hot and cold data (issue #10):
`mcs history SN START END` after some days went to the bucket returns exactly
the rows the database held before the archive, in time order, reading the
archived days through a local cache (a second read works with the bucket
server down)."""
import datetime
import io
import json

import pytest

from archivehelpers import (TZ, ZONE, day_bounds, ensure_day, job_env, local_day,  # noqa: F401
                            mcs_run, reset_archive_state, s3, s3_env, s3server, seed_day)

HEADER = "time,sn,v_raw,ppm,temp,humi,bat,rssi,seq"


@pytest.fixture(autouse=True)
def clean(pg):
    reset_archive_state(pg)
    yield


def expected(pg, sn, lo, hi):
    buf = io.StringIO()
    with pg.cursor() as cur:
        cur.execute("SET TimeZone = %s", (TZ,))
        cur.copy_expert(cur.mogrify(
            "COPY (SELECT time, sn, v_raw, ppm, temp, humi, bat, rssi, seq FROM sensor_data "
            "WHERE sn = %s AND time >= %s AND time < %s ORDER BY time, seq) TO STDOUT "
            "WITH (FORMAT csv)", (sn, lo, hi)).decode(), buf)
        cur.execute("RESET TimeZone")
    return buf.getvalue().splitlines()


def history(mcs_run, env, sn, lo, hi):
    r = mcs_run("history", sn, lo.isoformat(), hi.isoformat(), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == HEADER
    return lines[1:], json.loads(r.stderr.strip().splitlines()[-1])


def test_history_across_hot_and_cold(pg, s3, s3_env, mcs_run):
    sns = ("HIST1", "HIST2")
    for b in (6, 5, 1, 0):
        ensure_day(pg, local_day(b))
    for b in (6, 5):
        seed_day(pg, local_day(b), n=480, sns=sns)
    seed_day(pg, local_day(1), n=96, sns=sns)
    lo = day_bounds(local_day(7))[0]
    hi = datetime.datetime.now(ZONE) + datetime.timedelta(hours=1)
    want = expected(pg, "HIST1", lo, hi)
    assert len(want) == 240 + 240 + 48
    r = mcs_run("job", "run", "archive", env=s3_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert expected(pg, "HIST1", lo, hi) != want  # the old days left the database

    got, st = history(mcs_run, s3_env, "HIST1", lo, hi)
    assert got == want
    assert st["cold_days"] == 2 and st["cache_misses"] == 2

    # A range inside the cold days, by local wall time with an offset.
    mid_lo = day_bounds(local_day(6))[0] + datetime.timedelta(hours=12)
    mid_hi = day_bounds(local_day(5))[0] + datetime.timedelta(hours=6)
    sub, st = history(mcs_run, s3_env, "HIST1", mid_lo, mid_hi)
    assert st["cache_hits"] == 2 and st["cache_misses"] == 0
    assert sub and sub == [line for line in want
                           if mid_lo <= datetime.datetime.fromisoformat(
                               line.split(",")[0]) < mid_hi]

    # Cached: the bucket is not needed again.
    s3.stop()
    again, st = history(mcs_run, s3_env, "HIST1", lo, hi)
    assert again == want and st["cache_hits"] == 2


def test_history_cache_is_bounded(pg, s3, s3_env, mcs_run, tmp_path):
    for b in (7, 6, 5):
        seed_day(pg, local_day(b), n=30000, sns=("BIG1",), random_values=True)
    r = mcs_run("job", "run", "archive", env=s3_env)
    assert r.returncode == 0, r.stdout + r.stderr
    env = dict(s3_env, HISTORY_CACHE_MB="1")
    lo, hi = day_bounds(local_day(8))[0], day_bounds(local_day(4))[0]
    got, st = history(mcs_run, env, "BIG1", lo, hi)
    assert len(got) == 90000 and st["cold_days"] == 3
    # One entry per cached day (a directory of per-device files, complete).
    days = [p.parent for p in (tmp_path / "hcache").rglob(".complete")]
    total = sum(f.stat().st_size for d in days for f in d.iterdir())
    assert total <= 1 << 20 or len(days) == 1, [(d.name, total) for d in days]
    assert len(days) < 3
    assert not [p for p in (tmp_path / "hcache").rglob("*tmp*")]
    # An evicted day is fetched again and still right.
    again, st = history(mcs_run, env, "BIG1", lo, hi)
    assert again == got
