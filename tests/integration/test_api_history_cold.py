"""test_api_history_cold.py - device history across hot and cold data over
the API (issue #19): GET /api/devices/{sn}/history of a day the archive job
moved to the bucket (the real S3 test server) answers the same points as
before the day left the database, read as `mcs history` reads it (its local
cache), at the same resolution as hot data, and says so in `source`
(hot / archive / mixed)."""
import datetime
import json
import secrets

import pytest

from apihelpers import add_user, api_launcher, error_of  # noqa: F401
from archivehelpers import (ZONE, count_day, day_bounds, ensure_day, job_env,  # noqa: F401
                            local_day, mcs_run, reset_archive_state, s3, s3_env, s3server,
                            seed_day)

SNS = ("HCOLD1", "HCOLD2")


@pytest.fixture
def cold_api(api_launcher, s3_env, pg):
    reset_archive_state(pg)
    keys = ("ARCHIVE_SINK", "R2_ENDPOINT", "R2_ACCESS_KEY", "R2_SECRET_KEY", "R2_BUCKET",
            "R2_REGION", "TZ", "DATA_RETENTION_DAYS", "HISTORY_CACHE_DIR", "SCHED_ENABLED")
    a = api_launcher.start(**{k: s3_env[k] for k in keys})
    user, pw = "adm_" + secrets.token_hex(3), "admin-pass-" + secrets.token_hex(4)
    add_user(a.env, user, pw, "admin")
    a.token = a.login(user, pw)
    for sn in SNS:
        a.delete(f"/api/devices/{sn}", a.token)
        r = a.post("/api/devices", a.token, json={"sn": sn, "name": "冷数据 " + sn})
        assert r.status_code in (200, 201), r.text
    yield a
    for sn in SNS:
        a.delete(f"/api/devices/{sn}", a.token)
    reset_archive_state(pg)


def utc(t):
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def history(api, sn, lo, hi, interval, size=10000, page=1):
    r = api.get(f"/api/devices/{sn}/history?start={utc(lo)}&end={utc(hi)}"
                f"&interval={interval}&size={size}&page={page}", api.token, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_archived_day_served_like_hot_data(cold_api, pg, s3_env, mcs_run):
    api = cold_api
    d = local_day(5)
    seed_day(pg, d, n=480, sns=SNS)          # 240 readings of HCOLD1 that day
    ensure_day(pg, local_day(0))
    lo, hi = day_bounds(d)
    hot = {iv: history(api, SNS[0], lo, hi, iv) for iv in ("raw", "1h")}
    assert hot["raw"]["source"] == "hot" and hot["raw"]["total"] == 240
    assert hot["1h"]["total"] == 24 and sum(p["count"] for p in hot["1h"]["points"]) == 240

    r = mcs_run("job", "run", "archive", env=s3_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert count_day(pg, d) == 0  # the day left the database

    # Raw: the same points as before, and as `mcs history` reads them.
    cold = history(api, SNS[0], lo, hi, "raw")
    assert cold["source"] == "archive"
    assert cold["total"] == 240 and cold["points"] == hot["raw"]["points"]
    cli = mcs_run("history", SNS[0], lo.isoformat(), hi.isoformat(), env=s3_env)
    assert cli.returncode == 0, cli.stderr
    rows = [line.split(",") for line in cli.stdout.splitlines()[1:]]
    assert json.loads(cli.stderr.strip().splitlines()[-1])["cache_hits"] == 1  # API's cache
    assert [(utc(datetime.datetime.fromisoformat(row[0])), float(row[3]), float(row[4]))
            for row in rows] == [(p["ts"], p["ppm"], p["temp"]) for p in cold["points"]]

    # Aggregated: the hot resolution, the same buckets and figures.
    agg = history(api, SNS[0], lo, hi, "1h")
    assert agg["source"] == "archive" and agg["total"] == 24
    assert [p["ts"] for p in agg["points"]] == [p["ts"] for p in hot["1h"]["points"]]
    for a, b in zip(agg["points"], hot["1h"]["points"]):
        assert a["count"] == b["count"]
        for k in ("ppm", "temp", "ppm_min", "ppm_max"):
            assert a[k] == pytest.approx(b[k], abs=1e-3), (k, a, b)

    # Paged like hot data.
    p2 = history(api, SNS[0], lo, hi, "raw", size=100, page=2)
    assert p2["total"] == 240 and p2["points"] == hot["raw"]["points"][100:200]

    # A range from the archived day into today: mixed.
    seed_day(pg, local_day(0), n=2, sns=(SNS[0],))
    now = datetime.datetime.now(ZONE)
    mixed = history(api, SNS[0], lo + datetime.timedelta(hours=20), now, "raw")
    assert mixed["source"] == "mixed"
    assert mixed["points"][:40] == hot["raw"]["points"][200:]
    t0 = day_bounds(local_day(0))[0]
    assert len([p for p in mixed["points"] if p["ts"] >= utc(t0)]) == \
        len([1 for i in range(2) if t0 + datetime.timedelta(seconds=i * 43200) < now])



def test_archived_day_unreachable_is_an_error_not_an_empty_chart(cold_api, pg, s3, s3_env,
                                                                 mcs_run):
    api = cold_api
    d = local_day(6)
    seed_day(pg, d, n=48, sns=SNS)
    r = mcs_run("job", "run", "archive", env=s3_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert count_day(pg, d) == 0
    s3.stop()  # the bucket unreachable, the day never cached
    lo, hi = day_bounds(d)
    r = api.get(f"/api/devices/{SNS[0]}/history?start={utc(lo)}&end={utc(hi)}&interval=raw",
                api.token, timeout=60)
    assert r.status_code == 503, r.text
    assert error_of(r)["detail"].startswith("archive: "), r.text
    s3.start()
    assert history(api, SNS[0], lo, hi, "raw")["total"] == 24
