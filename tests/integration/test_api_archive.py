"""test_api_archive.py - the archive endpoints of mcs-api (issue #8 with
#10, R-ST-4, R-API-8): POST /api/system/archives/run runs the archive job
(job_execute, trigger manual) on the API's job worker; GET
/api/system/archives/{date}/download streams the stored file. Real mcs-api,
PostgreSQL and the directory sink (ARCHIVE_SINK=dir); the file is checked
against the rows the database held before the run."""
import gzip
import secrets

import pytest

from apihelpers import add_user, api_launcher, error_of  # noqa: F401
from archivehelpers import (TZ, count_day, day_rows, local_day, one, partition,
                            reset_archive_state, seed_day, table_exists)

HEADER = "time,sn,v_raw,ppm,temp,humi,bat,rssi,seq"


@pytest.fixture
def arch_api(api_launcher, pg, tmp_path):
    reset_archive_state(pg)
    # Storage settings another test saved (through the API, with its own
    # secret key) would take precedence over ARCHIVE_SINK=dir here.
    with pg.cursor() as cur:
        cur.execute("DELETE FROM system_config WHERE key = 'storage'")
    a = api_launcher.start(ARCHIVE_SINK="dir", ARCHIVE_DIR=str(tmp_path / "archive-dir"),
                           TZ=TZ, DATA_RETENTION_DAYS="3", SCHED_ENABLED="0")
    a.admin, a.viewer = "adm_" + secrets.token_hex(3), "view_" + secrets.token_hex(3)
    pw = {a.admin: "admin-pass-" + secrets.token_hex(4),
          a.viewer: "viewer-pass-" + secrets.token_hex(4)}
    add_user(a.env, a.admin, pw[a.admin], "admin")
    add_user(a.env, a.viewer, pw[a.viewer], "viewer")
    a.admin_token = a.login(a.admin, pw[a.admin])
    a.viewer_token = a.login(a.viewer, pw[a.viewer])
    a.archive_dir = tmp_path / "archive-dir"
    yield a
    reset_archive_state(pg)


def test_run_then_download_over_http(arch_api, pg):
    api, tok = arch_api, arch_api.admin_token
    d = local_day(6)
    seed_day(pg, d, n=300)
    header, before = day_rows(pg, d)
    assert header == HEADER and len(before) == 300
    last = one(pg, "SELECT coalesce(max(id), 0) FROM job_runs")[0]

    r = api.post("/api/system/archives/run", tok, timeout=120)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["outcome"] == "ok" and j["run_id"] > last
    run = one(pg, "SELECT job, outcome, trigger, ended_at IS NOT NULL FROM job_runs "
                  "WHERE id = %s", (j["run_id"],))
    assert run == ("archive", "ok", "manual", True)
    # The day is gone from the hot store.
    assert not table_exists(pg, partition(d)) and count_day(pg, d) == 0
    assert one(pg, "SELECT status, row_count FROM archive_logs WHERE day = %s",
               (d,)) == ("archived", 300)
    # Audited like other admin changes.
    assert one(pg, "SELECT count(*) FROM audit_logs WHERE username = %s "
                   "AND action = 'system.archive.run' AND after->>'outcome' = 'ok' "
                   "AND (after->>'run_id')::bigint = %s", (api.admin, j["run_id"]))[0] == 1

    # The list shows the day and the last archive run.
    lst = api.get("/api/system/archives", api.viewer_token).json()
    assert any(row["date"] == str(d) and row["status"] == "archived" for row in lst["data"])
    lr = lst["last_run"]
    assert lr["id"] == j["run_id"] and lr["outcome"] == "ok" and lr["error"] is None
    assert lr["started_at"].endswith("Z") and lr["ended_at"].endswith("Z")

    # The download: the stored gzip, as is.
    r = api.get(f"/api/system/archives/{d}/download", tok, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/gzip"
    name = f"sensor_data_{d:%Y%m%d}.csv.gz"
    assert r.headers["Content-Disposition"] == f'attachment; filename="{name}"'
    assert int(r.headers["Content-Length"]) == len(r.content)
    lines = gzip.decompress(r.content).decode().splitlines()
    assert lines[0] == HEADER
    assert sorted(lines[1:]) == before
    stored = one(pg, "SELECT size_bytes FROM archive_logs WHERE day = %s", (d,))[0]
    assert len(r.content) == stored
    # The web app asks by POST: the same bytes.
    p = api.post(f"/api/system/archives/{d}/download", tok, timeout=60)
    assert p.status_code == 200 and p.content == r.content

    # The sink lost the file: a sink error, not a 404 and not a hang.
    for f in api.archive_dir.rglob(name):
        f.unlink()
    r = api.get(f"/api/system/archives/{d}/download", tok, timeout=60)
    assert r.status_code in (502, 503) and error_of(r)["code"] in (60001, 60002), r.text


def test_failed_run_answers_502_and_records_it(arch_api, api_launcher, pg, tmp_path):
    tok = arch_api.admin_token
    d = local_day(6)
    seed_day(pg, d, n=50)
    # The directory sink cannot write below a regular file.
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    b = api_launcher.start(ARCHIVE_SINK="dir", ARCHIVE_DIR=str(blocker / "sub"), TZ=TZ,
                           DATA_RETENTION_DAYS="3", SCHED_ENABLED="0")
    r = b.post("/api/system/archives/run", tok, timeout=120)
    assert r.status_code == 502 and error_of(r)["code"] == 60002, r.text
    assert one(pg, "SELECT outcome FROM job_runs WHERE job = 'archive' "
                   "ORDER BY id DESC LIMIT 1") == ("failed",)
    assert table_exists(pg, partition(d)) and count_day(pg, d) == 50
    lr = b.get("/api/system/archives", tok).json()["last_run"]
    assert lr["outcome"] == "failed" and lr["error"]


def test_day_without_archive_is_404(arch_api):
    r = arch_api.get("/api/system/archives/2001-01-01/download", arch_api.admin_token)
    assert r.status_code == 404 and error_of(r)["code"] == 60003
    assert error_of(r)["detail"] == "2001-01-01"
    r = arch_api.get("/api/system/archives/2001-13-01/download", arch_api.admin_token)
    assert r.status_code == 400 and error_of(r)["code"] == 90001


def test_roles_and_tokens(arch_api, pg):
    r = arch_api.post("/api/system/archives/run", arch_api.viewer_token)
    assert r.status_code == 403 and error_of(r)["code"] == 10003
    r = arch_api.post("/api/system/archives/run")
    assert r.status_code == 401 and error_of(r)["code"] == 10002
    r = arch_api.get("/api/system/archives/2001-01-01/download")
    assert r.status_code == 401
    assert one(pg, "SELECT count(*) FROM job_runs WHERE trigger = 'manual' "
                   "AND instance = %s", (arch_api.env["INSTANCE_ID"],))[0] == 0
