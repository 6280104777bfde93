"""mcs-api alarm and configuration endpoints (issue #8, R-API-2, R-API-6,
R-API-7): alarm list/detail/ack/stats/export, alarm channels in the §10.2
shape with secrets encrypted at rest, masked, and kept by the mask, storage,
dashboard, floor-plan upload, channel test send against a capture server."""
import io
import json
import struct
import threading
import zipfile
import zlib
from xml.etree import ElementTree
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from alarmhelpers import FAST_GENERAL, reset_alarm_config, set_config
from apihelpers import api, error_of  # noqa: F401
from mcshelpers import new_sn

EXAMPLE4 = {
    "email": {"enabled": True, "smtp_host": "smtp.qq.com", "smtp_port": 587,
              "smtp_user": "alarm@company.com", "smtp_pass": "authorization_code",
              "recipients": ["admin@company.com", "safety@company.com"]},
    "webhook": {"enabled": True, "platform": "dingtalk",
                "url": "https://oapi.dingtalk.com/robot/send?access_token=xxx", "secret": "SECxxx"},
    "sms": {"enabled": False},
    "settings": {"debounce_minutes": 10, "enable_schedule": True, "schedule_days": [1, 2, 3, 4, 5],
                 "schedule_start": "08:00", "schedule_end": "18:00"},
}


def cfg_rows(pg):
    with pg.cursor() as cur:
        cur.execute("SELECT key, value FROM system_config")
        return dict(cur.fetchall())


def test_alarm_config_example_secrets_encrypted_masked_and_kept(api, pg):
    tok = api.admin_token
    r = api.put("/api/config/alarm", tok, json=EXAMPLE4)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"message", "updated_at"} and r.json()["message"] == "配置已保存"
    rows = cfg_rows(pg)
    mail, ding = rows["alarm.channel.email"], rows["alarm.channel.dingtalk"]
    assert mail["host"] == "smtp.qq.com" and mail["port"] == 587 and mail["security"] == "starttls"
    assert mail["to"] == "admin@company.com; safety@company.com" and mail["enabled"] is True
    assert mail["password"].startswith("enc:v1:") and ding["secret"].startswith("enc:v1:")
    assert rows["alarm.general"]["debounce_min"] == 10
    assert rows["alarm.general"]["schedule"] == {"enabled": True, "days": [1, 2, 3, 4, 5],
                                                 "start": "08:00", "end": "18:00"} | \
        {k: v for k, v in rows["alarm.general"]["schedule"].items() if k == "tz"}
    dump = json.dumps(rows)
    assert "authorization_code" not in dump and "SECxxx" not in dump
    got = api.get("/api/config/alarm", tok).json()
    assert got["email"]["smtp_pass"] == "******" and got["webhook"]["secret"] == "******"
    assert got["webhook"]["platform"] == "dingtalk"
    assert got["email"]["recipients"] == EXAMPLE4["email"]["recipients"]
    assert got["settings"]["schedule_days"] == [1, 2, 3, 4, 5]
    # Sending the answer back unchanged keeps the stored secrets.
    assert api.put("/api/config/alarm", tok, json=got).status_code == 200
    rows2 = cfg_rows(pg)
    assert rows2["alarm.channel.email"]["password"] == mail["password"]
    assert rows2["alarm.channel.dingtalk"]["secret"] == ding["secret"]
    # A new secret replaces it; "" clears it.
    api.put("/api/config/alarm", tok, json={"email": {"smtp_pass": "new-code"}})
    assert cfg_rows(pg)["alarm.channel.email"]["password"] != mail["password"]
    api.put("/api/config/alarm", tok, json={"webhook": {"platform": "dingtalk", "secret": ""}})
    assert cfg_rows(pg)["alarm.channel.dingtalk"]["secret"] == ""
    with pg.cursor() as cur:
        cur.execute("SELECT before::text || after::text FROM audit_logs "
                    "WHERE action = 'config.alarm'")
        audits = " ".join(r[0] for r in cur.fetchall())
    assert "******" in audits
    for plain in ("authorization_code", "SECxxx", "new-code", "enc:v1:"):
        assert plain not in audits
    for bad in [{"email": {"smtp_port": 70000}}, {"webhook": {"platform": "icq"}},
                {"settings": {"schedule_start": "25:00"}}, {"settings": {"schedule_days": [0]}},
                {"email": {"recipients": "a@b"}}, {"nope": {}}, {"email": {"x": 1}},
                {"webhook": {"platform": "custom", "url": "ftp://x", "enabled": True}}]:
        r = api.put("/api/config/alarm", tok, json=bad)
        assert r.status_code == 400 and error_of(r)["code"] == 50001, bad


def test_system_alarm_settings_validated_and_stored(api, pg):
    """alarm.general.system (issue #15): per-type send switches, the
    unknown-device digest window and the §8.4 health thresholds, each
    checked against its bounds; the view shows every default."""
    tok = api.admin_token
    got = api.get("/api/config/alarm", tok).json()["system"]
    assert got["notify"]["ARCHIVE_FAILED"] is True and got["notify"]["DISK_HIGH"] is True
    assert got["health"]["disk_pct"] == 80 and got["health"]["cpu_min"] == 5
    assert got["unknown_digest_s"] == 60
    r = api.put("/api/config/alarm", tok, json={"system": {
        "notify": {"UNKNOWN_DEVICE": False}, "unknown_digest_s": 300,
        "health": {"disk_pct": 85, "online_pct": 95, "hysteresis_pct": 3}}})
    assert r.status_code == 200, r.text
    stored = cfg_rows(pg)["alarm.general"]["system"]
    assert stored["notify"]["UNKNOWN_DEVICE"] is False and stored["unknown_digest_s"] == 300
    assert {k: stored["health"][k] for k in ("disk_pct", "online_pct", "hysteresis_pct")} == \
        {"disk_pct": 85, "online_pct": 95, "hysteresis_pct": 3}
    got = api.get("/api/config/alarm", tok).json()["system"]
    assert got["notify"]["UNKNOWN_DEVICE"] is False and got["health"]["online_pct"] == 95
    assert got["health"]["mem_pct"] == 80
    for bad, word in [({"health": {"disk_pct": 150}}, "disk_pct"),
                      ({"health": {"cpu_min": 0}}, "cpu_min"),
                      ({"health": {"swap_pct": 10}}, "swap_pct"),
                      ({"notify": {"HIGH": False}}, "HIGH"),
                      ({"notify": {"DISK_HIGH": "no"}}, "DISK_HIGH"),
                      ({"unknown_digest_s": 0}, "unknown_digest_s"),
                      ({"thresholds": {}}, "thresholds")]:
        r = api.put("/api/config/alarm", tok, json={"system": bad})
        assert r.status_code == 400 and error_of(r)["code"] == 50001, bad
        assert word in r.text, r.text
    assert cfg_rows(pg)["alarm.general"]["system"] == stored
    api.put("/api/config/alarm", tok, json={"system": {
        "notify": {"UNKNOWN_DEVICE": True}, "unknown_digest_s": 60,
        "health": {"disk_pct": 80, "online_pct": 90, "hysteresis_pct": 5}}})


def test_storage_config_masked_and_kept(api, pg):
    tok = api.admin_token
    body = {"endpoint": "https://acc.r2.cloudflarestorage.com", "bucket": "mcs-archive",
            "region": "auto", "access_key": "AKIDEXAMPLE", "secret_key": "s3cr3t/key"}
    assert api.put("/api/config/storage", tok, json=body).status_code == 200
    got = api.get("/api/config/storage", tok).json()
    assert got["access_key"] == "******" and got["secret_key"] == "******"
    assert got["bucket"] == "mcs-archive"
    stored = cfg_rows(pg)["storage"]
    assert stored["secret_key"].startswith("enc:v1:") and "s3cr3t" not in json.dumps(stored)
    assert api.put("/api/config/storage", tok, json=got).status_code == 200
    assert cfg_rows(pg)["storage"]["secret_key"] == stored["secret_key"]
    r = api.put("/api/config/storage", tok, json={"bucket": "Bad_Bucket!"})
    assert r.status_code == 400 and error_of(r)["code"] == 60001


def test_dashboard_layout_and_floor_plan_upload(api, pg):
    tok = api.admin_token
    layout = {"title": "一号厂区", "widgets": [{"kind": "map", "x": 1}]}
    assert api.put("/api/config/dashboard", tok, json=layout).status_code == 200
    assert api.get("/api/config/dashboard", api.viewer_token).json() == layout

    def png(w, h):
        raw = b"".join(b"\x00" + b"\xff\x00\x00" * w for _ in range(h))
        def chunk(t, d):
            return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    img = png(64, 48)
    r = api.post("/api/config/dashboard/bg", tok, data=img, headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    j = r.json()
    assert (j["type"], j["width"], j["height"], j["size"]) == ("png", 64, 48, len(img))
    r = api.get("/api/config/dashboard/bg", api.viewer_token)
    assert r.content == img and r.headers["Content-Type"] == "image/png"
    jpeg = (b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9 +
            b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 300, 400, 1) + b"\x01\x11\x00" +
            b"\xff\xd9")
    r = api.post("/api/config/dashboard/bg", tok, data=jpeg, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200 and (r.json()["width"], r.json()["height"]) == (400, 300), r.text
    for fake in [b"GIF89a" + b"\x00" * 100, b"<svg></svg>", b"\x89PNG\r\n\x1a\n" + b"\x00" * 4,
                 b"\xff\xd8\xff\xd9"]:
        r = api.post("/api/config/dashboard/bg", tok, data=fake,
                     headers={"Content-Type": "image/png"})
        assert r.status_code == 415 and error_of(r)["code"] == 90009, fake[:10]
    r = api.post("/api/config/dashboard/bg", tok, data=b"\x00" * (9 << 20),
                 headers={"Content-Type": "image/png"})
    assert r.status_code == 413 and error_of(r)["code"] == 90004
    assert api.get("/api/config/dashboard/bg", api.viewer_token).content == jpeg


class Capture(BaseHTTPRequestHandler):
    status = 200
    bodies = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        Capture.bodies.append((self.path, self.rfile.read(n)))
        self.send_response(Capture.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok":true,"errcode":0}')

    def log_message(self, *a):
        pass


def test_channel_test_send_reaches_a_capture_server(api, mcsd, pg):
    """The test send goes through the outbox and mcsd's notifier (issue
    #15): the answer is the outcome mcsd recorded, and the channel's
    delivery state shows it (GET /api/config/alarm/channels)."""
    srv = HTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_port}/hook"
    tok = api.admin_token
    reset_alarm_config(pg)
    mcsd(MCS_SECRET_KEY=api.launcher.secret_key)
    try:
        r = api.put("/api/config/alarm", tok,
                    json={"webhook": {"enabled": True, "platform": "custom", "url": url}})
        assert r.status_code == 200, r.text
        Capture.status, Capture.bodies = 200, []
        r = api.post("/api/config/alarm/test", tok, json={"channel": "webhook"})
        assert r.status_code == 200, r.text
        assert Capture.bodies and Capture.bodies[0][0] == "/hook"
        assert "测试设备" in Capture.bodies[0][1].decode()
        with pg.cursor() as cur:
            cur.execute("SELECT channel, event, status FROM alarm_outbox WHERE id = %s",
                        (r.json()["outbox_id"],))
            assert cur.fetchone() == ("webhook", "test", "sent")
        Capture.status = 500
        r = api.post("/api/config/alarm/test", tok, json={"channel": "webhook"})
        assert r.status_code == 502 and error_of(r)["code"] == 50003
        assert "HTTP 500" in error_of(r)["detail"]
        assert len(Capture.bodies) == 2  # a failed test is not retried later
        r = api.post("/api/config/alarm/test", tok, json={"channel": "pigeon"})
        assert r.status_code == 400
        st = api.get("/api/config/alarm/channels", tok)
        assert st.status_code == 200, st.text
        hook = {c["channel"]: c for c in st.json()["channels"]}["webhook"]
        assert hook["enabled"] is True and hook["sent_today"] >= 1 and hook["failed_today"] >= 1
        assert hook["last_ok_at"] and hook["last_fail_at"] and hook["last_fail_local"]
        assert hook["last_fail_detail"] == "HTTP 500"
        assert st.json()["tz"] == "Asia/Shanghai"
        assert api.get("/api/config/alarm/channels", api.viewer_token).status_code == 403
    finally:
        srv.shutdown()
        api.put("/api/config/alarm", tok, json={"webhook": {"platform": "custom",
                                                            "enabled": False}})


def test_alarm_list_detail_ack_stats_export(api, add_device, pg):
    sn = add_device(name="储罐A")
    with pg.cursor() as cur:
        ids = []
        for t, lvl in [("HIGH", 2), ("LOW_BAT", 1), ("OFFLINE", 1)]:
            cur.execute("INSERT INTO alarm_logs (sn, alarm_type, level, category, value, "
                        "threshold) VALUES (%s, %s, %s, %s, 1, 2) RETURNING id",
                        (sn, t, lvl, "gas" if t == "HIGH" else "fault"))
            ids.append(cur.fetchone()[0])
        cur.execute("UPDATE alarm_logs SET cleared_at = now() WHERE id = %s", (ids[2],))
    tok = api.viewer_token
    j = api.get(f"/api/alarms?sn={sn}", tok).json()
    assert j["total"] == 3 and [a["id"] for a in j["data"]] == ids[::-1]
    assert {"id", "sn", "type", "level", "state", "triggered_at", "ack_at", "name"} <= set(j["data"][0])
    assert api.get(f"/api/alarms?sn={sn}&type=HIGH", tok).json()["total"] == 1
    assert api.get(f"/api/alarms?sn={sn}&state=active", tok).json()["total"] == 2
    assert api.get(f"/api/alarms?sn={sn}&level=2", tok).json()["total"] == 1
    assert api.get(f"/api/alarms?sn={sn}&category=fault", tok).json()["total"] == 2
    for q in ["state=bogus", "type=high'--", "acked=maybe", "sn=bad%20sn", "level=3",
              "start=2025-01-02T00:00:00Z&end=2025-01-01T00:00:00Z", "size=0"]:
        r = api.get("/api/alarms?" + q, tok)
        assert r.status_code == 400 and error_of(r)["code"] == 90001, q
    a = api.get(f"/api/alarms/{ids[0]}", tok).json()
    assert a["sn"] == sn and a["type"] == "HIGH" and a["name"] == "储罐A"
    assert api.get("/api/alarms/999999999", tok).status_code == 404
    assert api.get("/api/alarms/abc", tok).status_code == 400
    r = api.post(f"/api/alarms/{ids[0]}/ack", api.admin_token, json={"note": "现场已处理"})
    assert r.status_code == 200 and r.json()["ack_by"] == api.admin
    assert r.json()["ack_note"] == "现场已处理" and r.json()["state"] == "active_ack"
    first_ack = r.json()["ack_at"]
    r = api.post(f"/api/alarms/{ids[0]}/ack", api.admin_token, json={"note": "again"})
    assert r.json()["ack_at"] == first_ack and r.json()["ack_note"] == "现场已处理"
    with pg.cursor() as cur:
        cur.execute("SELECT ack_by, ack_note FROM alarm_logs WHERE id = %s", (ids[0],))
        assert cur.fetchone() == (api.admin, "现场已处理")
        cur.execute("SELECT count(*) FROM audit_logs WHERE action = 'alarm.ack' AND target = %s",
                    (str(ids[0]),))
        assert cur.fetchone()[0] == 2
    assert api.post(f"/api/alarms/{ids[1]}/ack", api.admin_token,
                    json={"note": 5}).status_code == 400
    s = api.get("/api/alarms/stats", tok).json()
    assert {"total", "active", "unacked", "today", "by_type", "by_day", "top_devices"} <= set(s)
    assert s["by_type"].get("HIGH", 0) >= 1 and s["today"] >= 3
    assert api.get(f"/api/alarms/export?sn={sn}", tok).status_code == 403  # viewer
    r = api.get(f"/api/alarms/export?sn={sn}", api.admin_token)
    assert r.status_code == 200 and r.content[:2] == b"PK"
    assert "attachment" in r.headers["Content-Disposition"]
    z = zipfile.ZipFile(io.BytesIO(r.content))
    sheet = z.read("xl/worksheets/sheet1.xml").decode()
    # Strings inline in the sheet (constant-memory mode) or in the shared table.
    strings = sheet + (z.read("xl/sharedStrings.xml").decode()
                       if "xl/sharedStrings.xml" in z.namelist() else "")
    assert sheet.count("<row ") == 4  # header + 3 alarms
    assert sn in strings and "储罐A" in strings and "现场已处理" in strings


def sheet_rows(body):
    """The cells of an .xlsx's first sheet as text, row by row (inline
    strings of constant-memory mode, shared strings, numbers)."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    z = zipfile.ZipFile(io.BytesIO(body))
    shared = []
    if "xl/sharedStrings.xml" in z.namelist():
        root = ElementTree.fromstring(z.read("xl/sharedStrings.xml"))
        shared = ["".join(t.text or "" for t in si.iter(f"{{{ns['m']}}}t"))
                  for si in root.findall("m:si", ns)]
    rows = []
    for row in ElementTree.fromstring(z.read("xl/worksheets/sheet1.xml")).iter(f"{{{ns['m']}}}row"):
        cells = {}
        for c in row.findall("m:c", ns):
            col = "".join(ch for ch in c.get("r") if ch.isalpha())
            if c.get("t") == "inlineStr":
                cells[col] = "".join(t.text or "" for t in c.iter(f"{{{ns['m']}}}t"))
            elif c.get("t") == "s":
                cells[col] = shared[int(c.find("m:v", ns).text)]
            else:
                cells[col] = c.find("m:v", ns).text
        rows.append(cells)
    head = rows[0]
    return [{head[k]: v for k, v in r.items()} for r in rows[1:]], list(head.values())


def test_export_in_the_plants_local_time_with_chinese_words(api, add_device, pg):
    """Issue #19: the .xlsx carries times in the zone of the alarm settings
    (alarm.general.schedule.tz), named in the header, and the Chinese words
    of types and states with English beside, not UTC text and codes."""
    sn = add_device(name="储罐B")
    with pg.cursor() as cur:
        cur.execute("INSERT INTO alarm_logs (sn, alarm_type, level, category, value, threshold,"
                    " triggered_at) VALUES (%s, 'HIGH', 1, 'gas', 30, 25,"
                    " '2026-12-07T19:08:17Z') RETURNING id", (sn,))
        high = cur.fetchone()[0]
        cur.execute("INSERT INTO alarm_logs (sn, alarm_type, level, category, value, threshold,"
                    " triggered_at) VALUES (%s, 'OFFLINE', 1, 'fault', 0, 0,"
                    " '2026-07-01T23:30:00Z') RETURNING id", (sn,))
        off = cur.fetchone()[0]
        cur.execute("UPDATE alarm_logs SET cleared_at = '2026-12-07T19:20:00Z',"
                    " ack_at = '2026-12-07T19:10:05Z', ack_by = 'admin' WHERE id = %s", (high,))
    general = json.loads(json.dumps(FAST_GENERAL))
    try:
        for tz, want in [("Asia/Shanghai", ("2026-12-08 03:08:17", "2026-12-08 03:20:00",
                                            "2026-12-08 03:10:05", "2026-07-02 07:30:00")),
                         # DST: UTC-5 in December, UTC-4 in July
                         ("America/New_York", ("2026-12-07 14:08:17", "2026-12-07 14:20:00",
                                               "2026-12-07 14:10:05", "2026-07-01 19:30:00"))]:
            general["schedule"]["tz"] = tz
            set_config(pg, "alarm.general", general)
            r = api.get(f"/api/alarms/export?sn={sn}", api.admin_token)
            assert r.status_code == 200, r.text
            rows, head = sheet_rows(r.content)
            trig, clr, ack = (f"触发时间 Triggered ({tz})", f"解除时间 Cleared ({tz})",
                              f"确认时间 Acknowledged ({tz})")
            assert {trig, clr, ack, "类型", "Type", "状态", "State"} <= set(head), head
            by_id = {int(float(x["ID"])): x for x in rows}
            h, o = by_id[high], by_id[off]
            assert (h[trig], h[clr], h[ack], o[trig]) == want, (h, o)
            assert clr not in o and ack not in o  # NULL: empty cells
            assert (h["类型"], h["Type"], h["状态"], h["State"]) == \
                ("浓度高报", "High gas", "已恢复，已确认", "Cleared, acknowledged")
            assert (o["类型"], o["Type"], o["状态"], o["State"]) == \
                ("设备离线", "Device offline", "报警中，未确认", "Active, unacknowledged")
            assert h["设备名称 Device"] == "储罐B" and h["SN"] == sn
            assert not any("Z" in v for v in (h[trig], h[clr], h[ack]))
    finally:
        general["schedule"]["tz"] = "Asia/Shanghai"
        set_config(pg, "alarm.general", general)
        with pg.cursor() as cur:
            cur.execute("UPDATE alarm_logs SET cleared_at = now(), ack_at = now(),"
                        " ack_by = 'test' WHERE id = %s", (off,))


def test_a_large_export_does_not_stall_other_requests(api, pg):
    """100,000 alarms to .xlsx take libxlsxwriter about a second: that work
    runs beside the event loop, so a request sent meanwhile is answered
    before the export (and the dashboards' alarm frames are not held)."""
    import time
    sn = new_sn("X")
    with pg.cursor() as cur:
        cur.execute("INSERT INTO devices (sn, name) VALUES (%s, '导出测试')", (sn,))
        cur.execute("INSERT INTO alarm_logs (sn, alarm_type, level, value, threshold, "
                    "triggered_at, cleared_at) SELECT %s, 'HIGH', 1, g, 100, now() - g * "
                    "interval '1 minute', now() - g * interval '1 minute' + interval '30 s' "
                    "FROM generate_series(1, 100000) g", (sn,))
    done = {}

    def export():
        # stream: returns at the response head, when the workbook is written.
        r = api.get(f"/api/alarms/export?sn={sn}", api.admin_token, stream=True, timeout=60)
        done["export"] = time.monotonic()
        done["status"], done["body"] = r.status_code, r.content
    try:
        t = threading.Thread(target=export)
        t.start()
        time.sleep(0.3)
        r = api.get("/api/ping")
        done["ping"] = time.monotonic()
        t.join(60)
        assert r.status_code == 200 and done["status"] == 200
        assert done["ping"] < done["export"], "the ping waited for the export"
        z = zipfile.ZipFile(io.BytesIO(done["body"]))
        assert z.read("xl/worksheets/sheet1.xml").decode().count("<row ") == 100001
    finally:
        with pg.cursor() as cur:
            cur.execute("DELETE FROM alarm_logs WHERE sn = %s", (sn,))
            cur.execute("DELETE FROM devices WHERE sn = %s", (sn,))


class Slow(Capture):
    def do_POST(self):
        import time
        time.sleep(2.5)
        super().do_POST()


def test_slow_channel_test_does_not_stall_other_requests(api, mcsd, pg):
    import time
    srv = HTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    tok = api.admin_token
    reset_alarm_config(pg)
    mcsd(MCS_SECRET_KEY=api.launcher.secret_key)
    try:
        api.put("/api/config/alarm", tok, json={"webhook": {
            "enabled": True, "platform": "custom",
            "url": f"http://127.0.0.1:{srv.server_port}/slow"}})
        Capture.status, Capture.bodies = 200, []
        result = {}
        t = threading.Thread(target=lambda: result.update(
            r=api.post("/api/config/alarm/test", tok, json={"channel": "webhook"})))
        t0 = time.monotonic()
        t.start()
        time.sleep(0.3)
        for _ in range(5):
            assert api.get("/api/devices?size=1", api.viewer_token).status_code == 200
        assert time.monotonic() - t0 < 2.0, "the loop waited for the channel"
        t.join(10)
        assert result["r"].status_code == 200 and time.monotonic() - t0 >= 2.4
    finally:
        srv.shutdown()
        api.put("/api/config/alarm", tok, json={"webhook": {"platform": "custom",
                                                            "enabled": False}})


def test_test_send_uses_mcsd_and_its_key(api, mcsd, pg, base_env, bin_path):
    """An mcsd that lacks the key mcs-api encrypted a channel's secret with
    (the demo's old mistake) cannot send alarms: the test send says so
    instead of succeeding on mcs-api's own key, mcsd says so at start, and
    `mcsd --check-config` fails naming the channel."""
    import subprocess
    srv = HTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    tok = api.admin_token
    reset_alarm_config(pg)
    try:
        r = api.put("/api/config/alarm", tok, json={"webhook": {
            "enabled": True, "platform": "dingtalk", "secret": "SECdemo",
            "url": f"http://127.0.0.1:{srv.server_port}/robot/send?access_token=t"}})
        assert r.status_code == 200, r.text
        Capture.status, Capture.bodies = 200, []
        # No mcsd running: nobody can deliver alarms, so the test says so
        # (and the row does not go out later by surprise).
        r = api.post("/api/config/alarm/test", tok, json={"channel": "webhook"})
        assert r.status_code == 503 and "no mcsd" in error_of(r)["detail"], r.text
        with pg.cursor() as cur:
            cur.execute("SELECT status FROM alarm_outbox WHERE event = 'test'"
                        " ORDER BY id DESC LIMIT 1")
            assert cur.fetchone()[0] == "dropped"
        d = mcsd()  # no MCS_SECRET_KEY
        assert "alarm channels cannot send" in d.log_text(), d.log_tail()
        assert "dingtalk.secret" in d.log_text(), d.log_tail()
        r = api.post("/api/config/alarm/test", tok, json={"channel": "webhook"})
        assert r.status_code == 502, r.text
        assert "secret" in error_of(r)["detail"] and not Capture.bodies
        chk = subprocess.run([bin_path("mcsd"), "--check-config"], env=dict(base_env),
                             capture_output=True, text=True, timeout=30)
        assert chk.returncode != 0 and "dingtalk.secret" in chk.stderr, chk.stderr
        d.stop()
        mcsd(MCS_SECRET_KEY=api.launcher.secret_key)
        r = api.post("/api/config/alarm/test", tok, json={"channel": "webhook"})
        assert r.status_code == 200, r.text
        assert len(Capture.bodies) == 1 and "sign=" in Capture.bodies[0][0]
        env = dict(base_env, MCS_SECRET_KEY=api.launcher.secret_key)
        chk = subprocess.run([bin_path("mcsd"), "--check-config"], env=env,
                             capture_output=True, text=True, timeout=30)
        assert chk.returncode == 0, chk.stderr
    finally:
        srv.shutdown()
        api.put("/api/config/alarm", tok, json={"webhook": {"platform": "dingtalk",
                                                            "enabled": False}})
