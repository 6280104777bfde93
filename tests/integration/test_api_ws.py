"""The dashboard WebSocket /ws/dashboard of mcs-api (R-API-5, issue #8):
first-message auth, connected, realtime every second from Redis and the
alarm table, alarm frames pushed at once (PostgreSQL NOTIFY or Redis
mcs:alarm), subscribe -> history, ping, bad and oversized frames, a slow
client that never reads, frames of 10,000 devices sent in fragments."""
import json
import socket
import time

import pytest
import websocket

from apihelpers import (api, api_launcher, closed_with, forge_jwt, recv_until,  # noqa: F401
                        screen_alarms, silence_rows, ws_open)
from mcshelpers import new_sn, wait_until


@pytest.fixture
def many_devices(pg):
    """many_devices(letter, n) registers n devices named prefix + 00001...
    (a fresh prefix) and returns the prefix; they are deleted afterwards."""
    prefixes = []

    def make(letter, n=10000):
        prefix = new_sn(letter)
        prefixes.append(prefix)
        with pg.cursor() as cur:
            cur.execute("INSERT INTO devices (sn) SELECT %s || lpad(g::text, 5, '0') "
                        "FROM generate_series(1, %s) g", (prefix, n))
        return prefix
    yield make
    with pg.cursor() as cur:
        for prefix in prefixes:
            cur.execute("DELETE FROM alarm_logs WHERE sn LIKE %s", (prefix + "%",))
            cur.execute("DELETE FROM devices WHERE sn LIKE %s", (prefix + "%",))


def open_unread(port, token):
    """A client that completes the handshake and authenticates, with a tiny
    receive buffer, and then never reads."""
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws/dashboard",
                                     sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    ws.send(json.dumps({"type": "auth", "token": token}))
    return ws


def test_connected_realtime_ping_and_viewer_access(api, add_device, rds, pg):
    sn_on, sn_off, sn_al = add_device(), add_device(), add_device(high_limit=100)
    rds.set(f"online:{sn_on}", "1", ex=90)
    rds.set(f"realtime:{sn_on}", json.dumps({"sn": sn_on, "ppm": 45.2, "seq": 1}), ex=30)
    with pg.cursor() as cur:
        cur.execute("INSERT INTO alarm_logs (sn, alarm_type, level, value, threshold) VALUES "
                    "(%s, 'HIGH', 2, 900, 100)", (sn_al,))
    ws = ws_open(api, api.viewer_token)
    try:
        f1, _ = recv_until(ws, lambda f: f["type"] == "realtime", 3)
        f2, _ = recv_until(ws, lambda f: f["type"] == "realtime", 3)
        assert 1 <= f2["ts"] - f1["ts"] <= 2
        by_sn = {d["sn"]: d for d in f2["data"]}
        assert by_sn[sn_on] == {"sn": sn_on, "ppm": 45.2, "status": "online"}
        assert by_sn[sn_off]["status"] == "offline" and by_sn[sn_off]["ppm"] is None
        assert (by_sn[sn_al]["status"], by_sn[sn_al]["level"],
                by_sn[sn_al]["alarm_type"]) == ("alarm", 2, "HIGH")
        ws.send(json.dumps({"type": "ping"}))
        pong, _ = recv_until(ws, lambda f: f["type"] == "pong", 3)
        assert abs(pong["ts"] - time.time()) < 5
    finally:
        ws.close()


def test_delivery_histogram_counts_each_realtime_frame_delivered(api):
    """/metrics: mcs_api_ws_delivery_ms (realtime frame built -> its last
    byte in a client's socket), a Prometheus histogram."""
    def hist():
        b, cnt = [], None
        for line in api.get("/metrics").text.splitlines():
            if line.startswith("mcs_api_ws_delivery_ms_bucket"):
                b.append((line.split('le="')[1].split('"')[0], int(line.split()[1])))
            elif line.startswith("mcs_api_ws_delivery_ms_count "):
                cnt = int(line.split()[1])
        return b, cnt
    _, before = hist()
    ws = ws_open(api, api.viewer_token)
    try:
        for _ in range(3):
            recv_until(ws, lambda f: f["type"] == "realtime", 3)
    finally:
        ws.close()
    b, after = hist()
    assert after - before >= 3
    assert [le for le, _ in b][-1] == "+Inf" and b[-1][1] == after
    assert all(x[1] <= y[1] for x, y in zip(b, b[1:])), b


def test_auth_is_required_and_checked(api):
    ws = ws_open(api)
    ws.send(json.dumps({"type": "ping"}))
    ok, data = closed_with(ws, 4001)
    assert ok, data
    ws = ws_open(api)
    ws.send(json.dumps({"type": "auth", "token": forge_jwt({"sub": api.admin, "role": "admin",
                                                           "exp": int(time.time()) + 99},
                                                          alg="none")}))
    ok, data = closed_with(ws, 4001)
    assert ok, data
    ws = ws_open(api)
    ws.send("not json at all")
    ok, data = closed_with(ws, 4001)
    assert ok, data
    # Nothing but the auth answer reaches an unauthenticated client.
    ws = ws_open(api)
    ws.settimeout(1.5)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()
    ws.close()


def test_bad_and_oversized_frames(api):
    ws = ws_open(api, api.admin_token)
    try:
        ws.send("{garbage")
        err, _ = recv_until(ws, lambda f: f["type"] == "error", 3)
        assert err["code"] == 90001
        ws.send(json.dumps({"type": "subscribe", "sn": "bad sn!"}))
        err, _ = recv_until(ws, lambda f: f["type"] == "error", 3)
        assert err["code"] == 90001
        ws.send(json.dumps({"type": "subscribe", "sn": "NOSUCHSN"}))
        err, _ = recv_until(ws, lambda f: f["type"] == "error", 3)
        assert err["code"] == 40001
        ws.send(json.dumps({"type": "ping", "pad": "x" * 5000}))
        ok, data = closed_with(ws, 1009)
        assert ok, data
    finally:
        ws.close()
    assert api.get("/api/ping").status_code == 200


def test_subscribe_answers_the_last_hour_per_minute(api, mcsd, add_device, pg):
    mcsd().stop()  # day partitions
    sn = add_device()
    now = int(time.time())
    with pg.cursor() as cur:
        cur.executemany("INSERT INTO sensor_data (time, sn, ppm, temp, seq) VALUES "
                        "(to_timestamp(%s), %s, %s, 25, %s)",
                        [(now - 7200 + 30 * i, sn, float(i), i) for i in range(240)])
    ws = ws_open(api, api.viewer_token)
    try:
        ws.send(json.dumps({"type": "subscribe", "sn": sn}))
        h, _ = recv_until(ws, lambda f: f["type"] == "history", 5)
    finally:
        ws.close()
    assert h["sn"] == sn and h["interval"] == "1m"
    # Readings of the last hour only, one point per minute (two readings each).
    assert 59 <= len(h["points"]) <= 61
    ts = [p["ts"] for p in h["points"]]
    assert ts == sorted(ts) and all(t.endswith(":00Z") for t in ts)
    assert set(h["points"][0]) == {"ts", "ppm", "temp"}


def test_alarm_frames_are_pushed_at_once_from_the_database(api, add_device, pg):
    sn = add_device(high_limit=100)
    ws = ws_open(api, api.viewer_token)
    try:
        t0 = time.monotonic()
        with pg.cursor() as cur:
            cur.execute("INSERT INTO alarm_logs (sn, alarm_type, level, value, last_value, "
                        "threshold) VALUES (%s, 'HIGH', 1, 150, 150, 100) RETURNING id", (sn,))
            aid = cur.fetchone()[0]
        f, _ = recv_until(ws, lambda f: f["type"] == "alarm" and f["data"]["sn"] == sn, 2)
        assert time.monotonic() - t0 < 1.0
        assert (f["data"]["event"], f["data"]["id"], f["data"]["alarm_type"]) == ("raised", aid,
                                                                                "HIGH")
        r = api.post(f"/api/alarms/{aid}/ack", api.admin_token, json={"note": "已处理"})
        assert r.status_code == 200
        f, _ = recv_until(ws, lambda f: f["type"] == "alarm" and f["data"]["event"] == "acked", 2)
        assert f["data"]["id"] == aid and f["data"]["ack_by"] == api.admin
    finally:
        ws.close()


def test_alarm_frames_from_redis_channel(api_launcher, add_device, rds):
    a = api_launcher.start(API_ALARM_SOURCE="redis")
    from apihelpers import add_user
    add_user(a.env, "wsredis", "wsredis-password", "viewer")
    ws = ws_open(a, a.login("wsredis", "wsredis-password"))
    try:
        time.sleep(0.3)
        ev = {"event": "raised", "id": 7, "sn": "R001", "alarm_type": "LOW", "level": 1}
        rds.publish("mcs:alarm", json.dumps(ev))
        rds.publish("mcs:alarm", "not json")  # ignored, logged
        f, _ = recv_until(ws, lambda f: f["type"] == "alarm", 2)
        assert f["data"] == ev
    finally:
        ws.close()


def test_slow_reader_is_skipped_and_others_keep_their_pace(api, many_devices):
    many_devices("W")

    def skipped():
        for line in api.get("/metrics").text.splitlines():
            if line.startswith("mcs_api_ws_realtime_skipped_total "):
                return int(line.split()[1])
        return 0
    before = skipped()
    slow = open_unread(api.port, api.viewer_token)
    good = ws_open(api, api.viewer_token, timeout=10)
    try:
        stamps = []
        t_end = time.monotonic() + 20
        while time.monotonic() < t_end and (len(stamps) < 8 or skipped() <= before):
            f, _ = recv_until(good, lambda f: f["type"] == "realtime", 3)
            stamps.append(f["ts"])
        assert len(f["data"]) >= 10000
        # The good client got a frame about every second all along.
        assert len(stamps) >= 8 and stamps[-1] - stamps[0] <= len(stamps) + 1
        assert skipped() > before, "the slow reader was never skipped"
    finally:
        good.close()
        slow.close()


def recv_message_frames(ws, timeout=5.0):
    """One whole data message as the WebSocket frames it came in:
    (text, [(opcode, fin, length), ...])."""
    ws.settimeout(timeout)
    parts, frames = [], []
    while True:
        fr = ws.recv_frame()
        if fr.opcode in (websocket.ABNF.OPCODE_PING, websocket.ABNF.OPCODE_PONG):
            continue
        frames.append((fr.opcode, fr.fin, len(fr.data)))
        parts.append(fr.data)
        if fr.fin:
            return b"".join(parts).decode(), frames


def test_large_realtime_frames_arrive_whole_in_fragments_and_alarms_go_between(api, pg, rds,
                                                                             many_devices):
    """10,000 devices: the realtime message (~600 KB) is written in
    fragments straight from the one shared frame (no copy per client). Each
    of two clients gets it whole, every device's value exactly as in Redis,
    and an alarm raised meanwhile reaches them at once, between messages."""
    n = 10000
    prefix = many_devices("F", n)
    sns = [f"{prefix}{i:05d}" for i in range(1, n + 1)]
    want = {sn: round(i * 0.37, 2) for i, sn in enumerate(sns)}
    p = rds.pipeline()
    for sn in sns:
        p.set(f"realtime:{sn}", json.dumps({"sn": sn, "ppm": want[sn], "seq": 1}), ex=60)
        p.set(f"online:{sn}", "1", ex=60)
    p.execute()
    clients = [ws_open(api, api.viewer_token, timeout=10) for _ in range(2)]
    try:
        for ws in clients:
            for _ in range(10):  # to the first realtime frame with our devices
                text, frames = recv_message_frames(ws)
                if text.startswith('{"type":"realtime"') and prefix in text:
                    break
            else:
                pytest.fail("no realtime frame with the devices")
            # Fragments: a text frame without FIN, continuations, the last with FIN.
            assert len(frames) >= 2, frames
            assert frames[0][:2] == (websocket.ABNF.OPCODE_TEXT, 0), frames
            assert all(op == websocket.ABNF.OPCODE_CONT for op, _, _ in frames[1:]), frames
            assert [fin for _, fin, _ in frames] == [0] * (len(frames) - 1) + [1]
            got = {d["sn"]: d for d in json.loads(text)["data"] if d["sn"].startswith(prefix)}
            assert len(got) == n
            assert all(got[sn]["ppm"] == want[sn] and got[sn]["status"] == "online"
                       for sn in sns)
        t0 = time.monotonic()
        with pg.cursor() as cur:
            cur.execute("INSERT INTO alarm_logs (sn, alarm_type, level, value, threshold) "
                        "VALUES (%s, 'HIGH', 1, 150, 100) RETURNING id", (sns[7],))
            aid = cur.fetchone()[0]
        for ws in clients:
            while True:
                text, _ = recv_message_frames(ws)
                f = json.loads(text)
                if f["type"] == "alarm" and f["data"]["id"] == aid:
                    break
                assert f["type"] == "realtime", f["type"]
        assert time.monotonic() - t0 < 1.5
    finally:
        for ws in clients:
            ws.close()


def test_a_stalled_client_is_dropped_and_the_others_keep_their_pace(api_launcher, many_devices):
    """A client that stops reading in the middle of a 10,000-device frame
    would hold that frame for ever: after WS_STALL_S without completing a
    message the server closes it; a reading client is not affected."""
    a = api_launcher.start(WS_STALL_S=3)
    from apihelpers import add_user
    add_user(a.env, "stall", "stall-password", "viewer")
    tok = a.login("stall", "stall-password")
    many_devices("S")
    slow = open_unread(a.port, tok)
    good = ws_open(a, tok, timeout=10)
    try:
        stamps = []
        t_end = time.monotonic() + 8
        while time.monotonic() < t_end:
            f, _ = recv_until(good, lambda f: f["type"] == "realtime", 3)
            stamps.append(f["ts"])
        assert len(stamps) >= 6 and stamps[-1] - stamps[0] <= len(stamps) + 1
        # The slow one now reads what was left in the sockets: then the end.
        slow.settimeout(2)
        closed = False
        t_end = time.monotonic() + 20
        while time.monotonic() < t_end and not closed:
            try:
                slow.recv()
            except (websocket.WebSocketConnectionClosedException, ConnectionError,
                    websocket.WebSocketProtocolException):
                closed = True
            except websocket.WebSocketTimeoutException:
                break
        assert closed, "the stalled client was not closed"
        assert "stalled" in a.log_tail(200)
    finally:
        good.close()
        slow.close()


def test_feed_stops_when_the_token_expires(api, pg):
    with pg.cursor() as cur:
        cur.execute("SELECT token_gen FROM users WHERE username = %s", (api.viewer,))
        (gen,) = cur.fetchone()
    tok = forge_jwt({"sub": api.viewer, "role": "viewer", "gen": gen, "iat": int(time.time()),
                     "exp": int(time.time()) + 4})
    ws = ws_open(api, tok)
    recv_until(ws, lambda f: f["type"] == "realtime", 3)
    ws.settimeout(6)
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError,
                        websocket.WebSocketTimeoutException)):
        for _ in range(10):
            ws.recv()


def test_two_instances_both_push_every_alarm(api_launcher, add_device, pg):
    from apihelpers import add_user
    a, b = api_launcher.start(), api_launcher.start()
    add_user(a.env, "twoinst", "twoinst-password", "viewer")
    wa, wb = ws_open(a, a.login("twoinst", "twoinst-password")), \
        ws_open(b, b.login("twoinst", "twoinst-password"))
    sn = add_device()
    try:
        with pg.cursor() as cur:
            cur.execute("INSERT INTO alarm_logs (sn, alarm_type, value, threshold) VALUES "
                        "(%s, 'LOW', 1, 2) RETURNING id", (sn,))
            aid = cur.fetchone()[0]
        for ws in (wa, wb):
            f, _ = recv_until(ws, lambda f: f["type"] == "alarm" and f["data"]["id"] == aid, 3)
            assert f["data"]["event"] == "raised"
    finally:
        wa.close()
        wb.close()


def test_silence_is_recorded_with_the_tokens_user(api, pg, screen_alarms):
    """Who silenced what (issue #9): the wall screen's 消音 sends the ids on the
    feed; the audit row names the token's user, never the frame's claim, and
    only alarms on screen (issue #16)."""
    assert api.admin != api.viewer
    a1, a2, a3 = screen_alarms(3)
    ws = ws_open(api, api.viewer_token)
    try:
        ws.send(json.dumps({"type": "silence", "ids": [a3, a1, a2], "user": api.admin}))
        f, _ = recv_until(ws, lambda f: f["type"] in ("silenced", "error"), 3)
        assert f["type"] == "silenced" and f["ids"] == [a3, a1, a2], f
        assert f["ignored"] == [] and f["user"] == api.viewer
        # Garbage gets an error frame, writes no row and keeps the connection.
        n_bad = 0
        for bad in ({"ids": []}, {"ids": "41"}, {}, {"ids": [1, "2"]}, {"ids": [1.5]},
                    {"ids": [0]}, {"ids": [-3]}, {"ids": [True]}, {"ids": [[1]]},
                    {"ids": [1e300]}, {"ids": [1] * 1001}):
            ws.send(json.dumps({"type": "silence", **bad}, separators=(",", ":")))
            e, _ = recv_until(ws, lambda f: f["type"] in ("silenced", "error"), 3)
            assert e["type"] == "error" and e["code"] == 90001, (bad, e)
            n_bad += 1
        # A thousand ids is allowed (compact, to fit a 4 KiB frame); those of
        # no alarm on screen are ignored; the connection is still usable.
        big = [a1, a2, a3] + list(range(1, 998))
        ws.send(json.dumps({"type": "silence", "ids": big}, separators=(",", ":")))
        f, _ = recv_until(ws, lambda f: f["type"] in ("silenced", "error"), 3)
        assert f["type"] == "silenced" and f["ids"][:3] == [a1, a2, a3], str(f)[:300]
        assert sorted(f["ids"] + f["ignored"]) == sorted(set(big))  # each id once
        with pg.cursor() as cur:
            cur.execute("SELECT count(*) FROM alarm_logs WHERE id = ANY(%s) AND "
                        "(cleared_at IS NULL OR (category = 'gas' AND ack_at IS NULL))",
                        (f["ignored"],))
            assert cur.fetchone()[0] == 0
        big_ids = f["ids"]
        ws.send(json.dumps({"type": "ping"}))
        recv_until(ws, lambda f: f["type"] == "pong", 3)
    finally:
        ws.close()
    rows = silence_rows(pg, api.viewer)
    assert len(rows) == 2, rows
    assert rows[0][0] == api.viewer
    assert rows[0][1] == f"{a3},{a1},{a2}"
    assert rows[0][2] == {"ids": [a3, a1, a2]}
    assert rows[0][3] == "127.0.0.1"
    assert rows[1][1] == ",".join(map(str, big_ids)) and rows[1][2] == {"ids": big_ids}
    assert silence_rows(pg, api.admin) == []


def test_silence_by_admin_and_needs_auth(api, pg, screen_alarms):
    a5, a6 = screen_alarms(2)
    ws = ws_open(api, api.admin_token)
    try:
        ws.send(json.dumps({"type": "silence", "ids": [a5]}))
        f, _ = recv_until(ws, lambda f: f["type"] in ("silenced", "error"), 3)
        assert f["type"] == "silenced" and f["user"] == api.admin, f
    finally:
        ws.close()
    assert [r[1] for r in silence_rows(pg, api.admin)] == [str(a5)]
    # Before authentication a silence frame closes the socket, no row.
    ws = ws_open(api)
    ws.send(json.dumps({"type": "silence", "ids": [a6], "user": api.admin}))
    ok, data = closed_with(ws, 4001)
    assert ok, data
    with pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM audit_logs WHERE action = 'alarm.silence' AND "
                    "target = %s", (str(a6),))
        assert cur.fetchone()[0] == 0


def test_silence_row_has_the_client_address_behind_the_proxy(api_launcher, pg, screen_alarms):
    from apihelpers import add_user
    a = api_launcher.start(API_TRUSTED_PROXY="127.0.0.1")
    (a77,) = screen_alarms(1)
    user = "wsprox_" + new_sn("").lower()
    add_user(a.env, user, "wsprox-password", "viewer")
    tok = a.login(user, "wsprox-password")
    ws = websocket.create_connection(f"ws://127.0.0.1:{a.port}/ws/dashboard", timeout=5,
                                     header=["X-Forwarded-For: 198.51.100.7, 10.9.8.7"])
    try:
        ws.send(json.dumps({"type": "auth", "token": tok}))
        recv_until(ws, lambda f: f["type"] == "connected", 3)
        ws.send(json.dumps({"type": "silence", "ids": [a77]}))
        f, _ = recv_until(ws, lambda f: f["type"] in ("silenced", "error"), 3)
        assert f["type"] == "silenced", f
    finally:
        ws.close()
    # The last address the proxy appended, as for HTTP audit rows.
    assert silence_rows(pg, user) == [(user, str(a77), {"ids": [a77]}, "10.9.8.7")]


def test_screens_hear_config_changes_within_seconds(api, pg):
    """Issue #19: a device added, renamed, moved, its limits changed or
    deleted, the layout saved and a floor plan uploaded each send a `config`
    event to open screens within 2 s; a rejected change sends none."""
    tok, sn = api.admin_token, new_sn()
    jpeg = (b"\xff\xd8\xff\xe0" + b"\x00\x10" + b"JFIF\x00" + b"\x00" * 9 + b"\xff\xc0" +
            b"\x00\x0b\x08\x01\x2c\x01\x90\x01" + b"\x01\x11\x00" + b"\xff\xd9")
    steps = [
        ("devices", lambda: api.post("/api/devices", tok, json={"sn": sn, "high_limit": 100})),
        ("devices", lambda: api.put(f"/api/devices/{sn}", tok, json={"name": "北区 2 号"})),
        ("devices", lambda: api.post("/api/devices/positions", tok,
                                     json={"positions": [{"sn": sn, "pos_x": 30, "pos_y": 40}]})),
        ("devices", lambda: api.put(f"/api/devices/{sn}", tok, json={"high_limit": 80})),
        ("layout", lambda: api.put("/api/config/dashboard", tok, json={"title": "二号厂区"})),
        ("background", lambda: api.post("/api/config/dashboard/bg", tok, data=jpeg,
                                        headers={"Content-Type": "image/jpeg"})),
        ("devices", lambda: api.delete(f"/api/devices/{sn}", tok)),
    ]
    ws = ws_open(api, api.viewer_token)
    try:
        recv_until(ws, lambda f: f["type"] == "realtime", 3)
        for what, change in steps:
            t0 = time.monotonic()
            r = change()
            assert r.status_code in (200, 201), (what, r.text)
            f, _ = recv_until(ws, lambda f: f["type"] == "config", 2)
            assert f["what"] == what and time.monotonic() - t0 < 2.0
        with pg.cursor() as cur:
            cur.execute("SELECT count(*) FROM devices WHERE sn = %s", (sn,))
            assert cur.fetchone()[0] == 0
        # The screen's cache-busting fetch of the new plan.
        assert api.get("/api/config/dashboard/bg?v=1765000000000", api.viewer_token).content == jpeg
        sn2 = new_sn()
        assert api.post("/api/devices", tok, json={"sn": sn2}).status_code == 201
        recv_until(ws, lambda f: f["type"] == "config" and f["what"] == "devices", 2)
        # Rolled back: no event. The layout saved after it is the first
        # `config` frame (events of one tick go devices first).
        r = api.put(f"/api/devices/{sn2}", tok, json={"low_limit": 50, "high_limit": 10})
        assert r.status_code == 400
        assert api.put("/api/config/dashboard", tok, json={"title": "三号厂区"}).status_code == 200
        f, seen = recv_until(ws, lambda f: f["type"] == "config", 2)
        assert f["what"] == "layout", seen
        api.delete(f"/api/devices/{sn2}", tok)
    finally:
        ws.close()


def test_config_events_reach_screens_of_every_instance(api_launcher, add_device):
    from apihelpers import add_user
    a, b = api_launcher.start(), api_launcher.start()
    add_user(a.env, "cfginst", "cfginst-password", "admin")
    tok = a.login("cfginst", "cfginst-password")
    sn = add_device()
    wa, wb = ws_open(a, tok), ws_open(b, b.login("cfginst", "cfginst-password"))
    try:
        for ws in (wa, wb):
            recv_until(ws, lambda f: f["type"] == "realtime", 3)
        r = a.post("/api/devices/positions", tok,
                   json={"positions": [{"sn": sn, "pos_x": 5, "pos_y": 6}]})
        assert r.status_code == 200, r.text
        for ws in (wa, wb):
            f, _ = recv_until(ws, lambda f: f["type"] == "config", 2)
            assert f["what"] == "devices"
    finally:
        wa.close()
        wb.close()
