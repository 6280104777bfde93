"""mcs-api under attack, issue #16 defects 8-13 and 15: secrets that follow
their destination, addresses that are addresses, strict JSON bodies,
case-insensitive identities, common passwords, browser security headers and
who may export alarms. Real mcs-api, PostgreSQL and SMTP servers; the
ground truth is read from PostgreSQL rows and from what the SMTP servers
received."""
import json
import secrets
import subprocess
import threading
from pathlib import Path

import psycopg2
import pytest

from apihelpers import api, error_of, free_port  # noqa: F401
from mcshelpers import build_dir, new_sn, wait_until

REPO = Path(__file__).resolve().parents[2]


def cfg_row(pg, key):
    with pg.cursor() as cur:
        cur.execute("SELECT value FROM system_config WHERE key = %s", (key,))
        row = cur.fetchone()
        return row[0] if row else None


def count(pg, sql, *args):
    with pg.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


class AuthRecorder:
    """A plain SMTP server (aiosmtpd, AUTH allowed without TLS, as a server
    an attacker runs would) that records every AUTH attempt and accepts
    it. .auths: [(login, password)]."""

    def __init__(self):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.auths, self.mails = [], []
        self.port = free_port()
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.mails.append(envelope.content)
                return "250 OK"

        def auth(server, session, envelope, mechanism, data):
            outer.auths.append((data.login.decode(errors="replace"),
                                data.password.decode(errors="replace")))
            return AuthResult(success=True)

        self.ctrl = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                               server_kwargs=dict(authenticator=auth, auth_require_tls=False))
        self.ctrl.start()

    def close(self):
        self.ctrl.stop()


# ---------------------------------------------------------------- defect 8


def test_changing_the_smtp_server_needs_the_password_again(api, pg, mcsd):
    """The stored password must not follow a new host/port: PUT with the
    mask and a new server is 400, the stored row is unchanged, and a test
    send reaches only the server it was entered for. Test sends go out
    through mcsd (issue #15), with the key mcs-api encrypted the secret with."""
    tok = api.admin_token
    mcsd(MCS_SECRET_KEY=api.launcher.secret_key)
    legit, evil = AuthRecorder(), AuthRecorder()
    try:
        r = api.put("/api/config/alarm", tok, json={"email": {
            "enabled": True, "smtp_host": "127.0.0.1", "smtp_port": legit.port, "ssl": "none",
            "sender": "alarm@example.com", "smtp_user": "alarm@example.com",
            "smtp_pass": "the-real-secret-9", "recipients": ["safety@example.com"]}})
        assert r.status_code == 200, r.text
        stored = cfg_row(pg, "alarm.channel.email")
        got = api.get("/api/config/alarm", tok).json()["email"]
        assert got["smtp_pass"] == "******"
        # The attack: point the channel elsewhere, send the mask back, test.
        for change in ({"smtp_port": evil.port}, {"smtp_host": "localhost"},
                       {"smtp_user": "x@evil.example"}, {"ssl": "starttls"}):
            r = api.put("/api/config/alarm", tok,
                        json={"email": {**got, **change, "smtp_pass": "******"}})
            assert r.status_code == 400 and error_of(r)["code"] == 50001, (change, r.text)
            assert "smtp_pass" in error_of(r)["detail"]
            # Leaving smtp_pass out is the same as sending the mask.
            body = {k: v for k, v in {**got, **change}.items() if k != "smtp_pass"}
            assert api.put("/api/config/alarm", tok, json={"email": body}).status_code == 400
        assert cfg_row(pg, "alarm.channel.email") == stored
        r = api.post("/api/config/alarm/test", tok, json={"channel": "email"})
        assert r.status_code == 200, r.text
        assert evil.auths == [] and legit.auths == [("alarm@example.com", "the-real-secret-9")]
        # Unchanged destination with the mask: still fine (other fields change).
        r = api.put("/api/config/alarm", tok, json={"email": {**got, "recipients": [
            "safety@example.com", "ops@example.com"]}})
        assert r.status_code == 200, r.text
        assert cfg_row(pg, "alarm.channel.email")["password"] == stored["password"]
        # Re-entering the secret lets the destination change.
        r = api.put("/api/config/alarm", tok, json={"email": {
            **got, "smtp_port": evil.port, "smtp_pass": "a-new-secret-for-b"}})
        assert r.status_code == 200, r.text
        assert api.post("/api/config/alarm/test", tok, json={"channel": "email"}).status_code == 200
        assert evil.auths == [("alarm@example.com", "a-new-secret-for-b")]
    finally:
        legit.close()
        evil.close()
        with pg.cursor() as cur:
            cur.execute("DELETE FROM system_config WHERE key = 'alarm.channel.email'")


def test_robot_url_tokens_masked_and_follow_their_host(api, pg):
    tok = api.admin_token
    url = "https://oapi.dingtalk.com/robot/send?access_token=tok-" + secrets.token_hex(8)
    try:
        r = api.put("/api/config/alarm", tok, json={"webhook": {
            "enabled": True, "platform": "dingtalk", "url": url, "secret": "SEC-signing-1"}})
        assert r.status_code == 200, r.text
        got = api.get("/api/config/alarm", tok).json()
        assert got["webhook"]["url"] == "https://oapi.dingtalk.com/robot/send?access_token=******"
        assert url.split("=")[1] not in json.dumps(got)
        # Sent back unchanged: the stored URL (with its token) stays.
        assert api.put("/api/config/alarm", tok, json=got).status_code == 200
        assert cfg_row(pg, "alarm.channel.dingtalk")["url"] == url
        # The masked URL moved to another host, or its path changed: refused.
        for moved in ("https://evil.example/robot/send?access_token=******",
                      "https://oapi.dingtalk.com/robot/other?access_token=******"):
            r = api.put("/api/config/alarm", tok, json={"webhook": {**got["webhook"],
                                                                   "url": moved}})
            assert r.status_code == 400 and error_of(r)["code"] == 50001, moved
        # A whole new URL on another host keeps the signing secret only if
        # it is typed again.
        other = "https://evil.example/robot/send?access_token=theirs"
        r = api.put("/api/config/alarm", tok, json={"webhook": {**got["webhook"], "url": other}})
        assert r.status_code == 400 and "secret" in error_of(r)["detail"]
        assert cfg_row(pg, "alarm.channel.dingtalk")["url"] == url
        r = api.put("/api/config/alarm", tok, json={"webhook": {
            **got["webhook"], "url": other, "secret": "SEC-other-2"}})
        assert r.status_code == 200, r.text
        assert cfg_row(pg, "alarm.channel.dingtalk")["url"] == other
        # WeCom's key and Feishu's hook path are masked the same way; the
        # audit rows hold no token either.
        wecom = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wk-" + secrets.token_hex(6)
        assert api.put("/api/config/alarm", tok, json={"webhook": {
            "enabled": True, "platform": "wecom", "url": wecom}}).status_code == 200
        assert api.get("/api/config/alarm", tok).json()["webhook"]["url"].endswith("key=******")
        with pg.cursor() as cur:
            cur.execute("SELECT coalesce(before::text, '') || coalesce(after::text, '') "
                        "FROM audit_logs WHERE action = 'config.alarm'")
            audits = " ".join(r[0] for r in cur.fetchall())
        assert url.split("=")[1] not in audits and wecom.split("=")[1] not in audits
    finally:
        with pg.cursor() as cur:
            cur.execute("DELETE FROM system_config WHERE key IN ('alarm.channel.dingtalk', "
                        "'alarm.channel.wecom')")


def test_storage_endpoint_change_needs_the_secret_again(api, pg):
    tok = api.admin_token
    try:
        assert api.put("/api/config/storage", tok, json={
            "endpoint": "https://s3.example.com", "bucket": "plant-1", "access_key": "AK1",
            "secret_key": "SK-secret-1"}).status_code == 200
        stored = cfg_row(pg, "storage")
        r = api.put("/api/config/storage", tok, json={"endpoint": "https://evil.example",
                                                      "secret_key": "******"})
        assert r.status_code == 400 and error_of(r)["code"] == 60001
        assert cfg_row(pg, "storage") == stored
        assert api.put("/api/config/storage", tok, json={
            "endpoint": "https://s3.example.com", "bucket": "plant-2"}).status_code == 200
        assert api.put("/api/config/storage", tok, json={
            "endpoint": "https://s3b.example.com", "secret_key": "SK-2"}).status_code == 200
    finally:
        with pg.cursor() as cur:
            cur.execute("DELETE FROM system_config WHERE key = 'storage'")


# ---------------------------------------------------------------- defect 9


def test_sender_and_recipients_must_be_addresses(api, pg):
    tok = api.admin_token
    before = cfg_row(pg, "alarm.channel.email")
    for bad in [{"sender": "alarm@example.com\r\nBcc: spy@evil.example"},
                {"sender": "alarm@example.com\nX-Injected: 1"},
                {"sender": "Alarm <alarm@example.com>"},
                {"sender": "not-an-address"},
                {"recipients": ["ok@example.com", "a@b.cn\r\nBcc: spy@evil.example"]},
                {"recipients": ["two@example.com two@example.org"]}]:
        r = api.put("/api/config/alarm", tok, json={"email": bad})
        assert r.status_code == 400 and error_of(r)["code"] == 50001, bad
        assert "e-mail" in error_of(r)["detail"], error_of(r)
    assert cfg_row(pg, "alarm.channel.email") == before
    # `mcs config alarm set/set-field` apply the same rules (and strict JSON).
    mcs = str(build_dir() / "mcs")
    for args in (["set", "email", json.dumps({"from": "a@b.cn\r\nBcc: spy@evil.example",
                                              "to": "s@example.com"})],
                 ["set", "email", json.dumps({"from": "a@b.cn",
                                              "to": "s@example.com\nBcc: spy@evil.example"})],
                 ["set", "email", '{"from": "a@b.cn", "from": "x@y.cn"}'],
                 ["set-field", "email", "from", "Alarm <a@b.cn>"]):
        r = subprocess.run([mcs, "config", "alarm", *args], env=api.env, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode != 0, (args, r.stdout, r.stderr)
        assert cfg_row(pg, "alarm.channel.email") == before, args
    r = api.put("/api/config/alarm", tok, json={"email": {"sender": "alarm@plant-1.example.cn",
                                                          "recipients": ["a.b+c@example.com"]}})
    assert r.status_code == 200, r.text
    assert cfg_row(pg, "alarm.channel.email")["from"] == "alarm@plant-1.example.cn"
    with pg.cursor() as cur:
        cur.execute("DELETE FROM system_config WHERE key = 'alarm.channel.email'")


# ---------------------------------------------------------------- defect 10


def raw(api, method, path, tok, body):
    return api.request(method, path, tok, data=body.encode(),
                       headers={"Content-Type": "application/json"})


def test_nul_escapes_and_repeated_keys_refused_over_http(api, pg):
    tok = api.admin_token
    name = "pt_" + secrets.token_hex(3)
    r = raw(api, "POST", "/api/users", tok,
            '{"username":"%s\\u0000x","password":"a-fine-password-1","role":"viewer"}' % name)
    assert r.status_code == 400 and error_of(r)["code"] == 90001
    assert "\\u0000" in error_of(r)["detail"]
    assert count(pg, "SELECT count(*) FROM users WHERE username LIKE %s", name + "%") == 0
    # A repeated key, at the top and nested.
    sn = new_sn("Q")
    r = raw(api, "POST", "/api/devices", tok, '{"sn":"%s","name":"a","name":"b"}' % sn)
    assert r.status_code == 400 and "given twice" in error_of(r)["detail"]
    assert count(pg, "SELECT count(*) FROM devices WHERE sn = %s", sn) == 0
    before = cfg_row(pg, "alarm.channel.email")
    r = raw(api, "PUT", "/api/config/alarm", tok,
            '{"email":{"sender":"a@example.com","sender":"b@example.com"}}')
    assert r.status_code == 400 and "'sender' given twice" in error_of(r)["detail"]
    assert cfg_row(pg, "alarm.channel.email") == before
    r = raw(api, "PUT", "/api/config/dashboard", tok, '{"layout":{"a":1,"a":2}}')
    assert r.status_code == 400 and "given twice" in error_of(r)["detail"]
    r = raw(api, "POST", "/api/devices", tok, '{"sn":"%s"} {"sn":"X"}' % sn)
    assert r.status_code == 400 and "trailing" in error_of(r)["detail"]
    assert count(pg, "SELECT count(*) FROM devices WHERE sn = %s", sn) == 0


# ---------------------------------------------------------------- defect 11


def test_case_twins_are_duplicates_in_api_cli_and_database(api, pg):
    tok = api.admin_token
    base = "Tw" + secrets.token_hex(3)
    r = api.post("/api/users", tok, json={"username": base, "password": "a-fine-password-1",
                                          "role": "viewer"})
    assert r.status_code == 201, r.text
    for twin in (base.lower(), base.upper()):
        r = api.post("/api/users", tok, json={"username": twin, "password": "a-fine-password-1",
                                              "role": "admin"})
        assert r.status_code == 409, (twin, r.text)
    mcs = str(build_dir() / "mcs")
    r = subprocess.run([mcs, "user", "add", base.upper(), "--role", "admin"],
                       input="a-fine-password-1\n", env=api.env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "differs only in case" in r.stderr, r.stderr
    assert count(pg, "SELECT count(*) FROM users WHERE lower(username) = lower(%s)", base) == 1

    sn = "Sim" + secrets.token_hex(4)
    assert api.post("/api/devices", tok, json={"sn": sn}).status_code == 201
    r = api.post("/api/devices", tok, json={"sn": sn.upper()})
    assert r.status_code == 409 and error_of(r)["code"] == 40002
    r = subprocess.run([mcs, "device", "add", sn.lower()], env=api.env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and "differs only in case" in r.stderr, r.stderr
    assert count(pg, "SELECT count(*) FROM devices WHERE lower(sn) = lower(%s)", sn) == 1
    # The database refuses them by itself (another writer, psql).
    for sql, val in (("INSERT INTO devices (sn) VALUES (%s)", sn.swapcase()),
                     ("INSERT INTO users (username, password_hash, role) "
                      "VALUES (%s, 'x', 'viewer')", base.swapcase())):
        with pytest.raises(psycopg2.errors.UniqueViolation):
            with pg.cursor() as cur:
                cur.execute(sql, (val,))
    with pg.cursor() as cur:
        cur.execute("DELETE FROM devices WHERE sn = %s", (sn,))
        cur.execute("DELETE FROM users WHERE username = %s", (base,))


def test_migration_keeps_device_twins_and_disables_user_twins(services):
    """Migration 065 on a database that already holds case twins (an
    upgrade): it must not fail; the younger device twin keeps reporting, the
    younger user twin is disabled, each is audited, and no new twin of
    either can be added. Run in a schema of its own, on the tables' shapes."""
    sql = (REPO / "db/migrations/065_case_unique_names.sql").read_text()
    schema = "mig065_" + secrets.token_hex(3)
    c = services.pg_connect()
    c.autocommit = False
    try:
        with c.cursor() as cur:
            cur.execute(f"CREATE SCHEMA {schema}")
            cur.execute(f"SET search_path = {schema}")
            cur.execute("CREATE TABLE devices (LIKE public.devices INCLUDING ALL)")
            cur.execute("CREATE TABLE users (LIKE public.users INCLUDING ALL)")
            cur.execute("CREATE TABLE audit_logs (LIKE public.audit_logs INCLUDING ALL)")
            for idx in ("devices", "users"):
                cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s AND "
                            "tablename = %s AND indexdef LIKE '%%lower(%%'", (schema, idx))
                for (name,) in cur.fetchall():
                    cur.execute(f"DROP INDEX {schema}.{name}")
            cur.execute("INSERT INTO devices (sn, created_at) VALUES ('SIM000001', now() - "
                        "interval '2 days'), ('sim000001', now() - interval '1 day'), "
                        "('OTHER1', now())")
            cur.execute("INSERT INTO users (username, password_hash, role, created_at) VALUES "
                        "('admin', 'h', 'admin', now() - interval '2 days'), "
                        "('Admin', 'h', 'admin', now() - interval '1 day'), "
                        "('viewer1', 'h', 'viewer', now())")
            cur.execute(sql)
            cur.execute("SELECT sn FROM devices ORDER BY sn")
            assert [r[0] for r in cur.fetchall()] == ["OTHER1", "SIM000001", "sim000001"]
            cur.execute("SELECT username, disabled FROM users ORDER BY username")
            assert cur.fetchall() == [("Admin", True), ("admin", False), ("viewer1", False)]
            cur.execute("SELECT target, after->>'twin_of', after->>'done' FROM audit_logs "
                        "WHERE action = 'migration.case_twin' ORDER BY target")
            assert cur.fetchall() == [("Admin", "admin", "disabled"),
                                      ("sim000001", "SIM000001", "kept")]
            for q, v in (("INSERT INTO devices (sn) VALUES (%s)", "Sim000001"),
                         ("INSERT INTO devices (sn) VALUES (%s)", "other1"),
                         ("INSERT INTO users (username, password_hash, role) VALUES "
                          "(%s, 'h', 'admin')", "ADMIN")):
                cur.execute("SAVEPOINT s")
                with pytest.raises(psycopg2.errors.UniqueViolation):
                    cur.execute(q, (v,))
                cur.execute("ROLLBACK TO SAVEPOINT s")
        c.rollback()
    finally:
        c.rollback()
        with c.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        c.commit()
        c.close()


# ---------------------------------------------------------------- defect 12


WEAK = ["12345678", "password", "Password", "qwerty123", "        ", "aaaaaaaaaa"]


def test_common_and_trivial_passwords_refused_everywhere(api, pg):
    tok = api.admin_token
    name = "pw_" + secrets.token_hex(3)
    for pw in WEAK + [name, name.upper()]:
        r = api.post("/api/users", tok, json={"username": name, "password": pw, "role": "viewer"})
        assert r.status_code == 400 and error_of(r)["code"] == 90001, (pw, r.text)
        assert "password" in error_of(r)["detail"]
    assert count(pg, "SELECT count(*) FROM users WHERE username = %s", name) == 0
    r = api.post("/api/users", tok, json={"username": name, "password": "lantern-river-7",
                                          "role": "viewer"})
    assert r.status_code == 201, r.text
    with pg.cursor() as cur:
        cur.execute("SELECT password_hash FROM users WHERE username = %s", (name,))
        hash0 = cur.fetchone()[0]
    utok = api.login(name, "lantern-river-7")
    for pw in WEAK + [name]:
        r = api.put(f"/api/users/{name}", tok, json={"password": pw})
        assert r.status_code == 400, (pw, r.text)
        r = api.put("/api/auth/password", utok, json={"old_password": "lantern-river-7",
                                                      "new_password": pw})
        assert r.status_code == 400, (pw, r.text)
    assert count(pg, "SELECT count(*) FROM users WHERE username = %s AND password_hash = %s",
                 name, hash0) == 1
    mcs = str(build_dir() / "mcs")
    for sub in (["add", name + "c"], ["passwd", name]):
        for pw in ("12345678", sub[1]):
            r = subprocess.run([mcs, "user", *sub], input=pw + "\n", env=api.env,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 2 and "password" in r.stderr, (sub, pw, r.stderr)
    assert count(pg, "SELECT count(*) FROM users WHERE username = %s", name + "c") == 0
    assert count(pg, "SELECT count(*) FROM users WHERE username = %s AND password_hash = %s",
                 name, hash0) == 1
    api.delete(f"/api/users/{name}", tok)


# ---------------------------------------------------------------- defect 13


def test_browser_security_headers_on_app_and_api(api):
    root = Path(api.env["WEB_ROOT"])
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text("<!doctype html><title>t</title>")
    (root / "app.js").write_text("console.log(1)")
    try:
        answers = [api.get("/"), api.get("/app.js"), api.get("/admin/devices"),
                   api.get("/api/ping"), api.get("/api/devices"),
                   api.get("/api/devices", api.viewer_token), api.get("/metrics")]
        for r in answers:
            h = r.headers
            csp = h.get("Content-Security-Policy", "")
            assert "frame-ancestors 'none'" in csp, (r.url, dict(h))
            assert "default-src 'self'" in csp and "script-src 'self'" in csp
            assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
            assert "'unsafe-eval'" not in csp
            assert h.get("X-Frame-Options") == "DENY", r.url
            assert h.get("X-Content-Type-Options") == "nosniff", r.url
            assert h.get("Referrer-Policy") == "same-origin", r.url
        assert answers[1].text == "console.log(1)" and answers[2].status_code == 200
    finally:
        for f in ("index.html", "app.js"):
            (root / f).unlink()


# ---------------------------------------------------------------- defect 15


def test_only_an_admin_exports_alarms(api, pg):
    sn = new_sn("X")
    with pg.cursor() as cur:
        cur.execute("INSERT INTO devices (sn) VALUES (%s)", (sn,))
        cur.execute("INSERT INTO alarm_logs (sn, alarm_type, level, value, threshold, "
                    "triggered_at) VALUES (%s, 'HIGH', 1, 900, 500, now())", (sn,))
    try:
        r = api.get(f"/api/alarms/export?sn={sn}", api.viewer_token)
        assert r.status_code == 403 and error_of(r)["code"] == 10003
        assert api.get(f"/api/alarms?sn={sn}", api.viewer_token).json()["total"] == 1
        r = api.get(f"/api/alarms/export?sn={sn}", api.admin_token)
        assert r.status_code == 200 and r.content[:2] == b"PK"
    finally:
        with pg.cursor() as cur:
            cur.execute("DELETE FROM alarm_logs WHERE sn = %s", (sn,))
            cur.execute("DELETE FROM devices WHERE sn = %s", (sn,))
