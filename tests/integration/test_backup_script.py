"""test_backup_script.py - scripts/backup.sh (issue #18, R-OP-5): a plant's
database, configuration and secrets in one file; backup, wipe everything,
restore, and every table holds the same rows and every file the same bytes.
Runs on the suite's PostgreSQL (native, and TimescaleDB in its pass)."""
import os
import secrets
import subprocess

import psycopg2
import pytest

from archivehelpers import day_rows, local_day, seed_day, table_counts
from mcshelpers import REPO

SCRIPT = REPO / "scripts" / "backup.sh"
TABLES = ("devices", "sensor_data", "alarm_logs", "system_config", "users", "archive_logs",
          "job_runs", "schema_migrations")


def connect(services, db):
    c = psycopg2.connect(host=services["DB_HOST"], port=int(services["DB_PORT"]), dbname=db,
                         user=services["DB_USER"], password=services.get("DB_PASS", ""))
    c.autocommit = True
    return c


def counts(c):
    return table_counts(c, TABLES)


def files(root):
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode & 0o777)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("passphrase", ["", "correct horse battery staple"])
def test_backup_wipe_restore(services, pg, bin_path, base_env, tmp_path, passphrase):
    db = "bk_" + secrets.token_hex(4)
    with pg.cursor() as cur:
        cur.execute(f"CREATE DATABASE {db}")
    etc = tmp_path / "etc"
    (etc / "tls").mkdir(parents=True)
    env_file = etc / "mcs.env"
    env_file.write_text(f"DB_HOST={services['DB_HOST']}\nDB_PORT={services['DB_PORT']}\n"
                        f"DB_NAME={db}\nDB_USER={services['DB_USER']}\n"
                        f"JWT_SECRET={secrets.token_hex(32)}\nVENDOR_SECRET='{secrets.token_hex(8)}'\n"
                        f"MCS_SECRET_KEY_FILE={etc}/secret.key\n")
    (etc / "secret.key").write_bytes(os.urandom(32))
    (etc / "tls" / "server.key").write_text("-----BEGIN PRIVATE KEY-----\nxyz\n")
    for p in (env_file, etc / "secret.key", etc / "tls" / "server.key"):
        p.chmod(0o640)
    mq = tmp_path / "mosquitto.conf"
    mq.write_text("listener 1883 127.0.0.1\n")
    opts = ["--env-file", str(env_file), "--etc", str(etc), "--mosquitto-conf", str(mq)]

    env = dict(base_env, DB_NAME=db)
    m = subprocess.run([bin_path("mcsd"), "--migrate"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert m.returncode == 0, m.stderr
    src = connect(services, db)
    try:
        seed_day(src, local_day(1), n=500)
        with src.cursor() as cur:
            cur.execute("INSERT INTO devices (sn, name) VALUES ('BK1', '一号探头')")
            cur.execute("INSERT INTO alarm_logs (sn, alarm_type, value) VALUES ('BK1', 'HIGH', 9)")
        before, rows_before = counts(src), day_rows(src, local_day(1))
    finally:
        src.close()
    files_before = files(etc)

    run_env = dict(os.environ, BACKUP_PASSPHRASE=passphrase)
    b = subprocess.run(["bash", str(SCRIPT), "backup", *opts, "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=120, env=run_env)
    assert b.returncode == 0, b.stderr
    backup = b.stdout.strip().splitlines()[-1]
    assert backup.endswith(".tar.enc" if passphrase else ".tar")
    assert os.stat(backup).st_mode & 0o777 == 0o600
    if passphrase:
        with open(backup, "rb") as f:
            blob = f.read()
        assert b"JWT_SECRET" not in blob and b"PGDMP" not in blob

    # Wipe: the database and every file.
    with pg.cursor() as cur:
        cur.execute(f"DROP DATABASE {db}")
    subprocess.run(["rm", "-rf", str(etc), str(mq)], check=True)

    r = subprocess.run(["bash", str(SCRIPT), "restore", backup, *opts], capture_output=True,
                       text=True, timeout=180, env=run_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert files(etc) == files_before
    assert mq.read_text() == "listener 1883 127.0.0.1\n"
    dst = connect(services, db)
    try:
        assert counts(dst) == before
        assert day_rows(dst, local_day(1)) == rows_before
        with dst.cursor() as cur:
            cur.execute("SELECT name FROM devices WHERE sn = 'BK1'")
            assert cur.fetchone() == ("一号探头",)
    finally:
        dst.close()

    # A second restore over a database that holds tables is refused.
    r2 = subprocess.run(["bash", str(SCRIPT), "restore", backup, *opts], capture_output=True,
                        text=True, timeout=120, env=run_env)
    assert r2.returncode == 1 and "already holds tables" in r2.stderr
    # A damaged file is refused before anything is written.
    if not passphrase:
        bad = tmp_path / "bad.tar"
        data = bytearray(open(backup, "rb").read())
        i = data.find(b"PGDMP")
        data[i + 200] ^= 0xFF
        bad.write_bytes(bytes(data))
        r3 = subprocess.run(["bash", str(SCRIPT), "restore", str(bad), *opts,
                             "--dbname", db + "_x"], capture_output=True, text=True,
                            timeout=120, env=run_env)
        assert r3.returncode == 1 and "SHA-256" in r3.stderr
    with pg.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {db}")
