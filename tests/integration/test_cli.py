"""test_cli.py - `mcs`, the admin command line, against the real PostgreSQL
and Redis of the session (fixtures in conftest.py).

Every test runs the built binary, then looks at what it really did: rows in
`devices`, keys in Redis, the NOTIFY that tells mcsd, the exit status and the
messages. Device passwords are recomputed here with hashlib (R-MQ-6)."""
import hashlib
import json
import secrets
import select
import socket
import subprocess
import time

import psycopg2
import pytest

SECRET = "test-vendor-secret"


def password(sn, secret=SECRET):
    return hashlib.sha256((sn + secret).encode()).hexdigest()[:16]


def closed_port():
    """A loopback port nobody listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return str(port)


@pytest.fixture
def mcs(bin_path, base_env, tmp_path):
    """mcs(*args, env={...}) runs the CLI in an empty directory (so no stray
    .env is read) and returns the CompletedProcess (text)."""
    def run(*args, env=None, timeout=60):
        e = dict(base_env)
        e.update(env or {})
        return subprocess.run([bin_path("mcs"), *args], env=e, cwd=str(tmp_path),
                              capture_output=True, text=True, timeout=timeout)
    return run


def device(pg, sn):
    """The devices row of sn as a dict, or None."""
    with pg.cursor() as cur:
        cur.execute("SELECT * FROM devices WHERE sn = %s", (sn,))
        r = cur.fetchone()
        if r is None:
            return None
        return {d[0]: v for d, v in zip(cur.description, r)}


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def one_line_error(r, code, *needles):
    """Asserts exit status code and a one-line "mcs: ..." message on stderr
    containing every needle."""
    assert r.returncode == code, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("mcs: "), r.stderr
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


# --- device add ---------------------------------------------------------------

def test_add_inserts_row_and_prints_credentials(mcs, pg, rds, fresh_sn):
    sn = fresh_sn()
    rds.set(f"device:{sn}", "stale")
    rds.set(f"calib:{sn}", "stale")
    r = ok(mcs("device", "add", sn, "--name", "Tank 1", "--location=北区 罐区",
               "--k", "1.5", "--b", "-10", "--t-ref", "20", "--t-comp", "0.1",
               "--high", "1000", "--low", "100", "--range-max", "20000", "--unit", "%LEL"))
    out = r.stdout.splitlines()
    assert f"mqtt username: device_{sn}" in out
    assert f"mqtt password: {password(sn)}" in out
    d = device(pg, sn)
    assert d is not None
    assert (d["name"], d["location"], d["unit"]) == ("Tank 1", "北区 罐区", "%LEL")
    assert (d["calib_k"], d["calib_b"], d["calib_t_ref"], d["calib_t_comp"]) == \
        (1.5, -10, 20, 0.1)
    assert (d["high_limit"], d["low_limit"], d["range_max"]) == (1000, 100, 20000)
    assert d["enabled"] is True
    # Cache-aside: whatever was cached for this SN is gone (R-ST-7).
    assert rds.exists(f"device:{sn}", f"calib:{sn}") == 0


def test_add_defaults(mcs, pg, fresh_sn):
    sn = fresh_sn()
    ok(mcs("device", "add", sn))
    d = device(pg, sn)
    assert (d["name"], d["location"], d["unit"]) == ("", "", "ppm")
    assert (d["calib_k"], d["calib_b"], d["calib_t_ref"], d["calib_t_comp"]) == (1, 0, 25, 0)
    assert d["high_limit"] is None and d["low_limit"] is None and d["range_max"] == 50000


def test_password_of_known_sn_and_secret(mcs, pg):
    # A fixed vector, so that C and Python cannot agree on the same mistake:
    # sha256("CLI-KNOWN-1" + "test-vendor-secret") starts with 614585a4f9ef32db.
    sn = "CLI-KNOWN-1"
    assert password(sn) == "614585a4f9ef32db"
    with pg.cursor() as cur:
        cur.execute("DELETE FROM devices WHERE sn = %s", (sn,))
    try:
        r = ok(mcs("device", "add", sn))
        assert "mqtt password: 614585a4f9ef32db" in r.stdout.splitlines()
        r = ok(mcs("device", "password", sn))
        assert r.stdout == "614585a4f9ef32db\n"
        r = ok(mcs("--set", "VENDOR_SECRET=another", "device", "password", sn))
        assert r.stdout == "322907a38597e74b\n" == password(sn, "another") + "\n"
    finally:
        with pg.cursor() as cur:
            cur.execute("DELETE FROM devices WHERE sn = %s", (sn,))


def test_add_duplicate_is_refused(mcs, pg, fresh_sn):
    sn = fresh_sn()
    ok(mcs("device", "add", sn, "--name", "first"))
    r = mcs("device", "add", sn, "--name", "second")
    one_line_error(r, 1, sn, "already exists")
    assert device(pg, sn)["name"] == "first"


def test_add_without_vendor_secret_adds_but_shows_no_password(mcs, pg, fresh_sn):
    sn = fresh_sn()
    r = mcs("device", "add", sn, env={"VENDOR_SECRET": ""})
    assert r.returncode == 0, r.stderr
    assert device(pg, sn) is not None
    assert f"device_{sn}" in r.stdout
    assert "password" not in r.stdout
    assert "VENDOR_SECRET" in r.stderr and "warning" in r.stderr
    # Asked for explicitly, it is an error.
    r = mcs("device", "password", sn, env={"VENDOR_SECRET": ""})
    assert r.returncode == 2 and r.stdout == "" and "VENDOR_SECRET" in r.stderr


def test_text_is_stored_verbatim_never_as_sql(mcs, pg, fresh_sn):
    sn = fresh_sn()
    evil = "x'); DROP TABLE devices; --"
    ok(mcs("device", "add", sn, "--name", evil, "--location", "$1 \\ \" %s"))
    d = device(pg, sn)
    assert d["name"] == evil and d["location"] == "$1 \\ \" %s"


def test_name_limit_counts_bytes(mcs, pg, fresh_sn):
    sn = fresh_sn()
    ok(mcs("device", "add", sn, "--name", "气" * 21))  # 63 bytes
    assert device(pg, sn)["name"] == "气" * 21
    sn2 = fresh_sn()
    one_line_error(mcs("device", "add", sn2, "--name", "气" * 22), 2, "--name", "64")
    assert device(pg, sn2) is None


# --- bad input ----------------------------------------------------------------

BAD_OPTIONS = [
    (["--k", "abc"], "--k"),
    (["--k", "nan"], "--k"),
    (["--k", "inf"], "--k"),
    (["--k", "1e999"], "--k"),
    (["--k", ""], "--k"),
    (["--k", "1 "], "--k"),
    (["--k", "0x10"], "--k"),
    (["--b", "1.5x"], "--b"),
    (["--t-ref", "--t-comp", "1"], "--t-ref"),
    (["--range-max", "0"], "--range-max"),
    (["--range-max", "-5"], "--range-max"),
    (["--high", "5", "--low", "10"], "--low"),
    (["--high", "5", "--low", "5"], "--low"),
    (["--high", "nonee"], "--high"),
    (["--name", "a" * 65], "--name"),
    (["--location", "l" * 129], "--location"),
    (["--unit", "u" * 17], "--unit"),
    (["--unit", ""], "--unit"),
    (["--name", "bell\x07"], "--name"),
    (["--name", "line\nbreak"], "--name"),
    (["--name"], "--name"),
    (["--k", "1", "--k", "2"], "--k"),
    (["--bogus", "1"], "--bogus"),
    (["--json"], "--json"),
    (["extra-positional"], "extra-positional"),
]


@pytest.mark.parametrize("opts,named", BAD_OPTIONS, ids=[" ".join(o)[:30] for o, _ in BAD_OPTIONS])
def test_add_rejects_bad_options(mcs, pg, fresh_sn, opts, named):
    sn = fresh_sn()
    r = mcs("device", "add", sn, *opts)
    one_line_error(r, 2, named)
    assert r.stdout == ""
    assert device(pg, sn) is None


BAD_COMMANDS = [
    (["device", "add", "bad sn!"], "serial number"),
    (["device", "add", "A" * 33], "serial number"),
    (["device", "add", "sn/with/slash"], "serial number"),
    (["device", "add"], "serial number"),
    (["device", "show"], "serial number"),
    (["device", "del", "X1", "X2"], "X2"),
    (["device", "enable", "X1", "--k", "1"], "--k"),
    (["device", "list", "--json=1"], "--json"),
    (["device", "list", "--set"], "--set"),
    (["device", "frobnicate", "X1"], "frobnicate"),
    (["device"], "subcommand"),
    (["frobnicate"], "frobnicate"),
    (["status", "--verbose"], "--verbose"),
]


@pytest.mark.parametrize("args,named", BAD_COMMANDS,
                         ids=[" ".join(a)[:30] for a, _ in BAD_COMMANDS])
def test_usage_errors(mcs, args, named):
    one_line_error(mcs(*args), 2, named)


def test_help(mcs):
    for args in (["--help"], ["help"], ["device", "add", "--help"]):
        r = ok(mcs(*args))
        assert r.stdout.startswith("usage: mcs") and "device add" in r.stdout
        assert "--range-max" in r.stdout
    r = mcs()
    assert r.returncode == 2 and "usage: mcs" in r.stderr


def test_bad_configuration_is_a_usage_error(mcs):
    r = mcs("--set", "DB_PORT=abc", "device", "list")
    assert r.returncode == 2 and "DB_PORT" in r.stderr


# --- device set / enable / disable / del ---------------------------------------

def test_set_changes_only_given_columns_and_notifies(mcs, pg, rds, services, fresh_sn):
    sn = fresh_sn()
    ok(mcs("device", "add", sn, "--name", "n", "--location", "loc", "--k", "1.5",
           "--high", "900", "--low", "100"))
    before = device(pg, sn)
    rds.set(f"device:{sn}", "stale")
    rds.set(f"calib:{sn}", "stale")
    listener = psycopg2.connect(host=services["DB_HOST"], port=int(services["DB_PORT"]),
                                dbname=services["DB_NAME"], user=services["DB_USER"],
                                password=services.get("DB_PASS", ""), connect_timeout=5)
    try:
        listener.autocommit = True
        with listener.cursor() as cur:
            cur.execute("LISTEN mcs_device")
        r = ok(mcs("device", "set", sn, "--k", "2.25", "--high", "none", "--name=renamed"))
        assert f"device {sn} updated" in r.stdout
        # mcsd learns of the change through the trigger's NOTIFY (R-PR-2).
        deadline = time.monotonic() + 5
        payloads = []
        while sn not in payloads and time.monotonic() < deadline:
            select.select([listener], [], [], 0.2)
            listener.poll()
            payloads += [n.payload for n in listener.notifies]
            listener.notifies.clear()
        assert sn in payloads
    finally:
        listener.close()
    after = device(pg, sn)
    assert after["calib_k"] == 2.25 and after["high_limit"] is None
    assert after["name"] == "renamed"
    for col in ("location", "calib_b", "calib_t_ref", "calib_t_comp", "low_limit", "unit",
                "range_max", "enabled", "created_at"):
        assert after[col] == before[col], col
    assert after["updated_at"] > before["updated_at"]
    assert rds.exists(f"device:{sn}", f"calib:{sn}") == 0


def test_set_refuses_low_above_stored_high(mcs, pg, fresh_sn):
    sn = fresh_sn()
    ok(mcs("device", "add", sn, "--high", "100", "--low", "10"))
    one_line_error(mcs("device", "set", sn, "--low", "500"), 2, "--low", "100")
    one_line_error(mcs("device", "set", sn, "--high", "5"), 2, "--high", "10")
    d = device(pg, sn)
    assert (d["low_limit"], d["high_limit"]) == (10, 100)
    ok(mcs("device", "set", sn, "--low", "none", "--high", "5"))
    d = device(pg, sn)
    assert (d["low_limit"], d["high_limit"]) == (None, 5)


def test_set_needs_options_and_an_existing_device(mcs, fresh_sn):
    sn = fresh_sn()
    one_line_error(mcs("device", "set", sn, "--k", "2"), 1, sn)
    ok(mcs("device", "add", sn))
    one_line_error(mcs("device", "set", sn), 2, "option")


def test_disable_enable(mcs, pg, rds, fresh_sn):
    sn = fresh_sn()
    ok(mcs("device", "add", sn))
    rds.set(f"device:{sn}", "stale")
    ok(mcs("device", "disable", sn))
    assert device(pg, sn)["enabled"] is False
    assert rds.exists(f"device:{sn}") == 0
    ok(mcs("device", "enable", sn))
    assert device(pg, sn)["enabled"] is True
    missing = fresh_sn()
    one_line_error(mcs("device", "disable", missing), 1, missing)
    one_line_error(mcs("device", "enable", missing), 1, missing)


def test_del_removes_row_and_cached_keys(mcs, pg, rds, fresh_sn):
    sn = fresh_sn()
    ok(mcs("device", "add", sn))
    for k in ("device", "calib", "online", "realtime"):
        rds.set(f"{k}:{sn}", "1")
    ok(mcs("device", "del", sn))
    assert device(pg, sn) is None
    assert rds.exists(f"device:{sn}", f"calib:{sn}", f"online:{sn}", f"realtime:{sn}") == 0
    one_line_error(mcs("device", "del", sn), 1, sn)


def test_writes_succeed_with_redis_down(mcs, pg, fresh_sn):
    sn = fresh_sn()
    down = {"REDIS_PORT": closed_port()}
    r = mcs("device", "add", sn, env=down)
    assert r.returncode == 0, r.stderr
    assert f"mqtt password: {password(sn)}" in r.stdout
    assert "warning" in r.stderr and "Redis" in r.stderr
    assert device(pg, sn) is not None
    r = mcs("device", "set", sn, "--k", "3", env=down)
    assert r.returncode == 0 and "warning" in r.stderr
    assert device(pg, sn)["calib_k"] == 3


def test_database_down_is_a_runtime_error(mcs, fresh_sn):
    down = {"DB_PORT": closed_port()}
    for args in (["device", "list"], ["device", "add", fresh_sn()], ["status"]):
        r = mcs(*args, env=down)
        assert r.returncode == 1, (args, r.stderr)
        assert "PostgreSQL" in r.stderr


def test_schema_missing(mcs, pg):
    db = "cli_empty_" + secrets.token_hex(4)
    with pg.cursor() as cur:
        cur.execute(f"CREATE DATABASE {db}")
    try:
        for args in (["device", "list"], ["device", "add", "X1"], ["device", "show", "X1"]):
            r = mcs(*args, env={"DB_NAME": db})
            one_line_error(r, 1, "schema missing", "mcsd --migrate")
    finally:
        with pg.cursor() as cur:
            cur.execute(f"DROP DATABASE {db}")


# --- device list / show / password --------------------------------------------

def test_list_text_and_json(mcs, pg, fresh_sn):
    sn = fresh_sn()
    ok(mcs("device", "add", sn, "--name", "泵房 2", "--k", "1.5", "--high", "300"))
    with pg.cursor() as cur:
        cur.execute("UPDATE devices SET pkt_recv = 41, pkt_lost = 2, last_seen = now() "
                    "WHERE sn = %s", (sn,))
    r = ok(mcs("device", "list"))
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["sn", "name", "location", "enabled", "status", "last_seen",
                                "k", "b", "t_comp", "high", "low", "pkt_recv", "pkt_lost"]
    mine = [l for l in lines if l.startswith(sn + " ")]
    assert len(mine) == 1 and "泵房 2" in mine[0] and " 300 " in mine[0]
    assert mine[0].split()[-2:] == ["41", "2"]

    r = ok(mcs("device", "list", "--json"))
    rows = json.loads(r.stdout)
    with pg.cursor() as cur:
        cur.execute("SELECT sn FROM devices ORDER BY sn")
        assert [x["sn"] for x in rows] == [s for (s,) in cur.fetchall()]
    d = next(x for x in rows if x["sn"] == sn)
    assert d["name"] == "泵房 2" and d["calib_k"] == 1.5 and d["high_limit"] == 300
    assert d["low_limit"] is None and d["enabled"] is True
    assert d["pkt_recv"] == 41 and d["pkt_lost"] == 2
    assert d["last_seen"].endswith("Z")


def test_show_with_live_state(mcs, pg, rds, fresh_sn):
    sn = fresh_sn()
    ok(mcs("device", "add", sn, "--location", "east"))
    with pg.cursor() as cur:
        cur.execute("UPDATE devices SET pkt_recv = 990, pkt_lost = 10, bat = 85 WHERE sn = %s",
                    (sn,))
    rt = {"sn": sn, "ts": 1734320000, "ppm": 3516.1, "seq": 7, "over_range": False}
    rds.set(f"online:{sn}", "1734320000", ex=90)
    rds.set(f"realtime:{sn}", json.dumps(rt), ex=30)
    r = ok(mcs("device", "show", sn, "--json"))
    d = json.loads(r.stdout)
    assert d["sn"] == sn and d["location"] == "east" and d["bat"] == 85
    assert d["online"] is True and 0 < d["online_ttl_s"] <= 90
    assert d["realtime"] == rt
    assert d["packet_loss_pct"] == pytest.approx(1.0)

    r = ok(mcs("device", "show", sn))
    assert "online          yes" in r.stdout and "1.00 %" in r.stdout and "3516.1" in r.stdout

    rds.delete(f"online:{sn}", f"realtime:{sn}")
    d = json.loads(ok(mcs("device", "show", sn, "--json")).stdout)
    assert d["online"] is False and d["online_ttl_s"] is None and d["realtime"] is None

    # Redis down: the registry part is still shown, the live part is unknown.
    r = mcs("device", "show", sn, "--json", env={"REDIS_PORT": closed_port()})
    assert r.returncode == 0 and "warning" in r.stderr
    d = json.loads(r.stdout)
    assert d["sn"] == sn and d["online"] is None

    missing = fresh_sn()
    one_line_error(mcs("device", "show", missing), 1, missing)


def test_password_prints_only_the_password(mcs, fresh_sn):
    sn = fresh_sn()
    ok(mcs("device", "add", sn))
    r = ok(mcs("device", "password", sn))
    assert r.stdout == password(sn) + "\n" and r.stderr == ""
    missing = fresh_sn()
    one_line_error(mcs("device", "password", missing), 1, missing)


# --- status --------------------------------------------------------------------

def online_keys(rds):
    return sum(1 for _ in rds.scan_iter(match="online:*", count=1000))


def readings_last_minute(pg):
    with pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM sensor_data WHERE time > now() - interval '1 minute'")
        return cur.fetchone()[0]


def test_status(mcs, pg, rds, fresh_sn):
    sn = fresh_sn()
    ok(mcs("device", "add", sn))
    ok(mcs("device", "disable", sn))
    rds.set(f"online:{sn}", "1", ex=90)
    try:  # readings of the last minute, where today's partition exists
        with pg.cursor() as cur:
            cur.execute("INSERT INTO sensor_data (time, sn, seq) VALUES (now(), %s, 1), "
                        "(now(), %s, 2), (now() - interval '5 minutes', %s, 3)", (sn, sn, sn))
    except psycopg2.Error:
        pass
    live, stale = "cli-live-" + secrets.token_hex(3), "cli-stale-" + secrets.token_hex(3)
    now_ms = int(time.time() * 1000)
    rds.hset(f"mcs:metrics:{live}", mapping={
        "received": 120, "accepted": 110, "rejected": 10, "rej_bad_json": 7,
        "rej_unknown_sn": 3, "rej_too_large": 0, "stored": 109, "duplicates": 1,
        "spool_bytes": 0, "spool_lost": 0, "db_up": 1, "mqtt_connected": 1,
        "lat_p50_ms": 2.5, "lat_p99_ms": 9.25, "updated_ms": now_ms})
    rds.hset(f"mcs:metrics:{stale}", mapping={"received": 5, "updated_ms": now_ms - 120000})
    rds.sadd("mcs:instances", live, stale)
    try:
        with pg.cursor() as cur:
            cur.execute("SELECT count(*), count(*) FILTER (WHERE enabled) FROM devices")
            total, enabled = cur.fetchone()
        online = online_keys(rds)
        before = readings_last_minute(pg)
        r = ok(mcs("status", "--json"))
        after = readings_last_minute(pg)
        s = json.loads(r.stdout)
        assert s["db"] == "ok" and s["redis"] == "ok"
        assert s["devices"] == {"total": total, "enabled": enabled, "online": online}
        assert total - enabled >= 1 and online >= 1
        # Rows only age out of the last minute between the two counts.
        assert before >= s["readings_last_minute"] >= after
        by_id = {i["id"]: i for i in s["instances"]}
        assert by_id[live]["stale"] is False and 0 <= by_id[live]["age_ms"] < 60000
        assert by_id[live]["metrics"]["rej_bad_json"] == 7
        assert by_id[live]["metrics"]["lat_p99_ms"] == 9.25
        assert by_id[stale]["stale"] is True and by_id[stale]["age_ms"] >= 120000

        r = ok(mcs("status"))
        out = r.stdout
        assert f"{total} total, {enabled} enabled, {online} online" in out
        block = out.split(f"instance {live}")[1].split("instance ")[0]
        assert "rej_bad_json" in block and "rej_unknown_sn" in block
        assert "rej_too_large" not in block  # zero reasons are left out
        for k in ("received", "accepted", "stored", "duplicates", "spool_bytes", "spool_lost",
                  "db_up", "mqtt_connected", "lat_p50_ms", "lat_p99_ms"):
            assert k in block
        assert "STALE" in out.split(f"instance {stale}")[1].split("\n")[0]
    finally:
        rds.srem("mcs:instances", live, stale)
        rds.delete(f"mcs:metrics:{live}", f"mcs:metrics:{stale}", f"online:{sn}")


def test_status_with_redis_down(mcs, pg):
    r = mcs("status", "--json", env={"REDIS_PORT": closed_port()})
    assert r.returncode == 1
    s = json.loads(r.stdout)
    assert s["db"] == "ok" and s["redis"] != "ok"
    with pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM devices")
        assert s["devices"]["total"] == cur.fetchone()[0]
    assert s["devices"]["online"] is None and s["instances"] is None


# --- reserved serial number (issue #6) -----------------------------------------


def test_broadcast_sn_is_reserved(mcs, pg):
    """{prefix}/broadcast/cmd is the fleet's command topic: a device named
    `broadcast` would take every broadcast as its own. The CLI refuses it and
    so does the database (migration 009), whoever writes the row."""
    one_line_error(mcs("device", "add", "broadcast"), 2, "broadcast", "reserved")
    assert device(pg, "broadcast") is None
    with pytest.raises(psycopg2.errors.CheckViolation):
        with pg.cursor() as cur:
            cur.execute("INSERT INTO devices (sn) VALUES ('broadcast')")
    pg.rollback() if not pg.autocommit else None
    # Only the exact name: others containing it stay valid.
    for sn in ("Broadcast", "broadcast1"):
        r = ok(mcs("device", "add", sn))
        assert device(pg, sn) is not None, r.stdout
        ok(mcs("device", "del", sn))
