"""mcs-api (R-API-7): a change and its audit row stand or fall together.
When the audit row cannot be written, the answer is 503 (90007) and the
change is rolled back: device add, update, delete and positions, and the
dashboard and storage configuration (audit_commit in src/api/audit.c).
A trigger on audit_logs refuses the rows of this test's targets only, and
is dropped again before the test ends."""
from apihelpers import api, error_of  # noqa: F401
from mcshelpers import new_sn


def refuse_audit_rows(pg, targets):
    with pg.cursor() as cur:
        cur.execute("CREATE OR REPLACE FUNCTION test_refuse_audit() RETURNS trigger "
                    "LANGUAGE plpgsql AS $$ BEGIN IF NEW.target = ANY(TG_ARGV) THEN "
                    "RAISE EXCEPTION 'audit row refused by the test'; END IF; "
                    "RETURN NEW; END $$")
        args = ", ".join("'%s'" % t for t in targets)  # SNs and fixed names only
        cur.execute("CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_logs FOR EACH ROW "
                    f"EXECUTE FUNCTION test_refuse_audit({args})")


def allow_audit_rows(pg):
    with pg.cursor() as cur:
        cur.execute("DROP TRIGGER IF EXISTS test_refuse_audit ON audit_logs")
        cur.execute("DROP FUNCTION IF EXISTS test_refuse_audit()")


def config_value(pg, key):
    with pg.cursor() as cur:
        cur.execute("SELECT value FROM system_config WHERE key = %s", (key,))
        row = cur.fetchone()
        return row[0] if row else None


def test_change_without_its_audit_row_is_rolled_back(api, pg):
    tok = api.admin_token
    kept, refused = new_sn(), new_sn()
    assert api.post("/api/devices", tok, json={"sn": kept, "name": "before"}).status_code == 201
    dash, storage = config_value(pg, "dashboard"), config_value(pg, "storage")
    refuse_audit_rows(pg, [kept, refused, "dashboard", "storage", ""])
    try:
        answers = [
            api.post("/api/devices", tok, json={"sn": refused, "name": "never"}),
            api.put(f"/api/devices/{kept}", tok, json={"name": "after"}),
            api.post("/api/devices/positions", tok,
                     json={"positions": [{"sn": kept, "pos_x": 5, "pos_y": 6}]}),
            api.delete(f"/api/devices/{kept}", tok),
            api.put("/api/config/dashboard", tok, json={"layout": "refused"}),
            api.put("/api/config/storage", tok, json={"prefix": "refused/"}),
        ]
        for r in answers:
            assert r.status_code == 503 and error_of(r)["code"] == 90007, (r.url, r.text)
    finally:
        allow_audit_rows(pg)
    with pg.cursor() as cur:
        cur.execute("SELECT sn, name, pos_x, pos_y FROM devices WHERE sn IN (%s, %s)",
                    (kept, refused))
        assert cur.fetchall() == [(kept, "before", None, None)]
        cur.execute("SELECT action FROM audit_logs WHERE target IN (%s, %s)", (kept, refused))
        assert [a for (a,) in cur.fetchall()] == ["device.add"]
    assert config_value(pg, "dashboard") == dash
    assert config_value(pg, "storage") == storage
    # With audit rows possible again, the same change goes through.
    r = api.put(f"/api/devices/{kept}", tok, json={"name": "after"})
    assert r.status_code == 200 and r.json()["name"] == "after"
    assert api.delete(f"/api/devices/{kept}", tok).status_code == 200
