"""test_archive_settings.py - archive and backup take the bucket from the
storage settings the admin saves through mcs-api (system_config 'storage',
keys encrypted at rest) over the .env R2_*/ARCHIVE_SINK values (issue #10,
R-ST-4; src/mcsd/storage_cfg.h). The settings are written through the real
`PUT /api/config/storage`; where each file landed is checked in the S3 test
server (curl --aws-sigv4) and in the directory of the .env dir sink."""
import json
import os

import pytest

from apihelpers import api  # noqa: F401
from archivehelpers import (archive_key, count_day, day_rows, gunzip_csv, job_env,  # noqa: F401
                            local_day, mcs_run, one, partition, reset_archive_state, rows,
                            s3, s3server, seed_day, table_exists)


@pytest.fixture(autouse=True)
def clean(pg):
    reset_archive_state(pg)
    yield
    with pg.cursor() as cur:
        cur.execute("DELETE FROM system_config WHERE key = 'storage'")


def put_storage(api, body):
    r = api.put("/api/config/storage", api.admin_token, json=body)
    assert r.status_code == 200, r.text


def stored_storage(pg):
    got = one(pg, "SELECT value FROM system_config WHERE key = 'storage'")
    return got[0] if got else None


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, fs in os.walk(root) for f in fs)


def dir_env(job_env, api):
    """.env: the directory sink at ARCHIVE_DIR (directory A), no bucket, and
    the same MCS_SECRET_KEY as mcs-api."""
    return dict(job_env, ARCHIVE_SINK="dir", R2_ENDPOINT="", R2_ACCESS_KEY="", R2_SECRET_KEY="",
                MCS_SECRET_KEY=api.env["MCS_SECRET_KEY"])


def test_settings_from_the_api_win_over_env(pg, api, s3, job_env, mcs_run):
    env = dir_env(job_env, api)
    bucket = s3.make_bucket()
    put_storage(api, {"endpoint": s3.endpoint, "bucket": bucket, "region": "auto",
                      "access_key": s3.key, "secret_key": s3.secret})
    st = stored_storage(pg)
    assert st["secret_key"].startswith("enc:v1:") and s3.secret not in json.dumps(st)
    assert st["access_key"].startswith("enc:v1:")
    d = local_day(6)
    seed_day(pg, d, n=240)
    before = day_rows(pg, d)

    r = mcs_run("job", "run", "archive", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    # In the bucket of the settings, byte for byte what the database held...
    assert gunzip_csv(s3.get(bucket, archive_key(d))) == before
    assert one(pg, "SELECT status, sink FROM archive_logs WHERE day = %s",
               (d,)) == ("archived", "s3")
    assert not table_exists(pg, partition(d))
    # ... and not in the .env directory.
    assert not os.path.exists(env["ARCHIVE_DIR"]) or files_under(env["ARCHIVE_DIR"]) == []
    out = r.stdout + r.stderr
    assert "endpoint=system_config" in out and "secret_key=system_config" in out
    assert s3.secret not in out and st["secret_key"] not in out

    # The weekly backup goes to the same place.
    r = mcs_run("job", "run", "backup", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    key = one(pg, "SELECT key FROM backup_logs ORDER BY id DESC LIMIT 1")[0]
    assert s3.exists(bucket, key)
    assert not os.path.exists(os.path.join(env["ARCHIVE_DIR"], key))


def test_without_settings_env_decides(pg, api, s3, job_env, mcs_run):
    env = dir_env(job_env, api)
    assert stored_storage(pg) is None
    d = local_day(6)
    seed_day(pg, d, n=120)
    before = day_rows(pg, d)
    r = mcs_run("job", "run", "archive", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    blob = open(os.path.join(env["ARCHIVE_DIR"], archive_key(d)), "rb").read()
    assert gunzip_csv(blob) == before
    assert one(pg, "SELECT sink FROM archive_logs WHERE day = %s", (d,)) == ("dir",)
    assert "endpoint=env" in r.stdout + r.stderr


def test_each_field_falls_back_to_env(pg, api, s3, job_env, mcs_run):
    """.env names the server and a bucket with a wrong secret; the settings
    give only another bucket and the right keys: the file lands in the
    settings' bucket through the .env endpoint."""
    env_bucket, cfg_bucket = s3.make_bucket(), s3.make_bucket()
    env = dict(job_env, ARCHIVE_SINK="s3", R2_ENDPOINT=s3.endpoint, R2_BUCKET=env_bucket,
               R2_REGION="auto", R2_ACCESS_KEY=s3.key, R2_SECRET_KEY="not-the-secret",
               MCS_SECRET_KEY=api.env["MCS_SECRET_KEY"])
    put_storage(api, {"endpoint": "", "bucket": cfg_bucket, "secret_key": s3.secret})
    d = local_day(5)
    seed_day(pg, d, n=90)
    r = mcs_run("job", "run", "archive", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert s3.exists(cfg_bucket, archive_key(d))
    assert not s3.exists(env_bucket, archive_key(d))
    out = r.stdout + r.stderr
    assert "endpoint=env" in out and "bucket=system_config" in out


@pytest.mark.parametrize("key", ["other", "none"])
def test_undecryptable_secret_fails_loudly(pg, api, s3, job_env, mcs_run, key):
    """A stored secret that cannot be decrypted is a failed job with a system
    alarm; it never falls back to the .env key (which here would work)."""
    bucket = s3.make_bucket()
    env = dict(job_env, ARCHIVE_SINK="s3", R2_ENDPOINT=s3.endpoint, R2_BUCKET=bucket,
               R2_REGION="auto", R2_ACCESS_KEY=s3.key, R2_SECRET_KEY=s3.secret)
    env["MCS_SECRET_KEY"] = "ab" * 32 if key == "other" else ""
    env.pop("MCS_SECRET_KEY_FILE", None)
    put_storage(api, {"secret_key": s3.secret})
    d = local_day(6)
    seed_day(pg, d, n=60)
    before = day_rows(pg, d)
    r = mcs_run("job", "run", "archive", env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "secret_key" in r.stdout + r.stderr
    assert day_rows(pg, d) == before and table_exists(pg, partition(d))
    assert not s3.exists(bucket, archive_key(d))
    alarms = rows(pg, "SELECT message FROM alarm_logs WHERE sn = 'SYSTEM' "
                      "AND alarm_type = 'ARCHIVE_FAILED' AND cleared_at IS NULL")
    assert len(alarms) == 1 and "secret_key" in alarms[0][0]
    assert one(pg, "SELECT outcome FROM job_runs WHERE job = 'archive' ORDER BY id DESC "
                   "LIMIT 1") == ("failed",)
