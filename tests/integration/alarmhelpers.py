"""Helpers of the alarm tests (issue #7): local capture servers that verify
the platforms' signatures independently of mcsd and answer with each
platform's real success and error shapes, an SMTP server (aiosmtpd with
STARTTLS / implicit TLS and AUTH, optionally slow to accept), and the alarm configuration in
system_config."""
import asyncio
import base64
import email
import email.header
import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2.extras
import pytest

TEST_KEY_HEX = "2b7e151628aed2a6abf7158809cf4f3c2b7e151628aed2a6abf7158809cf4f3c"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# --------------------------------------------------------------------------
# HTTP capture


def dingtalk_sign(secret, ts):
    mac = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def feishu_sign(secret, ts):
    mac = hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def aliyun_sign(secret, params):
    def pct(s):
        return urllib.parse.quote(s, safe="~")
    canon = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(params.items()))
    sts = "GET&%2F&" + pct(canon)
    mac = hmac.new((secret + "&").encode(), sts.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


class Capture:
    """A capture server for one platform. kind: dingtalk, feishu, wecom,
    webhook, sms. mode: ok | throttle | error | slow. Every request is kept
    in .requests as dict(t, path, query, body, ok) where ok says whether the
    signature checked out. answer(query, body), when given, may return
    (status, json) to answer instead (a signature failure still wins)."""

    def __init__(self, kind, secret="", mode="ok", delay=0.0, port=None, answer=None):
        self.kind, self.secret, self.mode, self.delay = kind, secret, mode, delay
        self.answer = answer
        self.requests = []
        self.lock = threading.Lock()
        cap = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _answer(self, code, obj):
                b = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

            def do_GET(self):
                self._handle(b"")

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                self._handle(self.rfile.read(n))

            def _handle(self, raw):
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                code, ans, sig_ok = cap._judge(q, body)
                if sig_ok and cap.answer and cap.answer(q, body):
                    code, ans = cap.answer(q, body)
                rec = dict(t=time.monotonic(), wall=time.time(), path=u.path, query=q,
                           body=body, ok=sig_ok, headers=dict(self.headers))
                with cap.lock:
                    cap.requests.append(rec)
                if cap.mode == "slow" and cap.delay:
                    time.sleep(cap.delay)
                self._answer(code, ans)

        self.port = port or free_port()
        self.srv = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.srv.daemon_threads = True
        self.th = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.th.start()

    @property
    def url(self):
        base = f"http://127.0.0.1:{self.port}"
        return {"dingtalk": base + "/robot/send?access_token=tok",
                "feishu": base + "/open-apis/bot/v2/hook/abc",
                "wecom": base + "/cgi-bin/webhook/send?key=k1",
                "webhook": base + "/hook",
                "sms": base + "/"}[self.kind]

    def _judge(self, q, body):
        k = self.kind
        if k == "dingtalk":
            ok = True
            if self.secret:
                ts, sign = q.get("timestamp", ""), q.get("sign", "")
                ok = (ts.isdigit() and abs(int(ts) / 1000 - time.time()) < 3600
                      and sign == dingtalk_sign(self.secret, ts))
            if not ok:
                return 200, {"errcode": 310000, "errmsg": "sign not match"}, False
            if self.mode == "throttle":
                return 200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}, True
            if self.mode == "error":
                return 200, {"errcode": 310000, "errmsg": "keywords not in content"}, True
            return 200, {"errcode": 0, "errmsg": "ok"}, True
        if k == "feishu":
            ok = True
            if self.secret:
                ts = str((body or {}).get("timestamp", ""))
                ok = ts.isdigit() and (body or {}).get("sign") == feishu_sign(self.secret, ts)
            if not ok:
                return 200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}, False
            if self.mode == "throttle":
                return 200, {"code": 11232, "msg": "frequency limited psm"}, True
            return 200, {"code": 0, "msg": "success", "data": {}}, True
        if k == "wecom":
            if q.get("key") != "k1":
                return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}, False
            if self.mode == "throttle":
                return 200, {"errcode": 45009, "errmsg": "api freq out of limit"}, True
            return 200, {"errcode": 0, "errmsg": "ok"}, True
        if k == "sms":
            params = {a: b for a, b in q.items() if a != "Signature"}
            ok = q.get("Signature") == aliyun_sign(self.secret, params)
            if not ok:
                return 200, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched with our calculation.", "RequestId": "r"}, False
            if q.get("Action") == "QuerySendDetails":
                with self.lock:
                    dtos = [{"OutId": r["query"].get("OutId"), "PhoneNum": q["PhoneNumber"],
                             "SendStatus": 3}
                            for r in self.requests if r["query"].get("Action") == "SendSms"
                            and q["PhoneNumber"] in r["query"].get("PhoneNumbers", "").split(",")]
                return 200, {"Code": "OK", "Message": "OK", "TotalCount": len(dtos),
                             "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos}, "RequestId": "r"}, True
            if self.mode == "throttle":
                return 200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1", "RequestId": "r"}, True
            return 200, {"Code": "OK", "Message": "OK", "BizId": "9006197469364984400^0", "RequestId": "r"}, True
        # custom webhook
        if self.mode == "error":
            return 500, {"error": "boom"}, True
        return 200, {"ok": True}, True

    def count(self):
        with self.lock:
            return len(self.requests)

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def caps():
    """caps(kind, **kw) -> a Capture, closed at teardown."""
    made = []

    def make(kind, **kw):
        c = Capture(kind, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def text_of(req):
    """The message text a robot request carries."""
    b = req["body"] or {}
    if "text" in b and isinstance(b["text"], dict):
        return b["text"].get("content", "")
    if "content" in b and isinstance(b["content"], dict):
        return b["content"].get("text", "")
    if "markdown" in b:
        return b["markdown"].get("content", "")
    return b.get("text", "") if isinstance(b, dict) else str(b)


# --------------------------------------------------------------------------
# SMTP


class Smtp:
    """aiosmtpd on a free port: mode 'starttls' (TLS required before AUTH)
    or 'smtps' (implicit TLS); AUTH LOGIN/PLAIN against user/password;
    delay: seconds before each message is accepted (250).
    .messages: list of email.message.Message with .rcpt."""

    def __init__(self, certfile, keyfile, mode="starttls", user="alarm@example.com",
                 password="授权码123", delay=0.0):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, SMTP as Server

        self.messages = []
        self.port = free_port()
        self.user, self.password = user, password
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                if delay:  # a slow relay: the 250 comes late
                    await asyncio.sleep(delay)
                m = email.message_from_bytes(envelope.content)
                m.rcpt = list(envelope.rcpt_tos)
                m.mail_from = envelope.mail_from
                outer.messages.append(m)
                return "250 OK"

        def auth(server, session, envelope, mechanism, data):
            try:
                u = data.login.decode()
                p = data.password.decode()
            except Exception:
                return AuthResult(success=False, handled=False)
            if u == outer.user and p == outer.password:
                return AuthResult(success=True)
            return AuthResult(success=False, handled=False)

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(certfile, keyfile)
        kw = dict(authenticator=auth, auth_require_tls=True)
        if mode == "smtps":
            self.ctrl = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                   ssl_context=ctx, server_kwargs=kw)
        else:
            kw.update(tls_context=ctx, require_starttls=True)
            self.ctrl = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                   server_kwargs=kw)
        self.ctrl.start()

    def close(self):
        self.ctrl.stop()


def subject_of(m):
    return str(email.header.make_header(email.header.decode_header(m["Subject"])))


def body_of(m):
    return m.get_payload(decode=True).decode("utf-8")


# --------------------------------------------------------------------------
# configuration


FAST_GENERAL = {"debounce_min": 10, "hysteresis_pct": 2, "offline_s": 90, "reminders": False,
                "level2_ignores_schedule": True,
                "schedule": {"enabled": False, "days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00",
                             "end": "24:00", "tz": "Asia/Shanghai"},
                "escalation": {"enabled": False, "after_min": 30},
                "retry": {"max_attempts": 3, "backoff_s": 0.2, "backoff_max_s": 1},
                "digest": {"threshold": 3}}


def set_config(pg, key, value):
    with pg.cursor() as cur:
        cur.execute("INSERT INTO system_config (key, value) VALUES (%s, %s) ON CONFLICT (key)"
                    " DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                    (key, json.dumps(value)))


def reset_alarm_config(pg, **general):
    g = json.loads(json.dumps(FAST_GENERAL))
    for k, v in general.items():
        g[k] = v
    with pg.cursor() as cur:
        cur.execute("DELETE FROM system_config WHERE key LIKE 'alarm.channel.%%'")
        # System alarms an earlier test left open (health thresholds, a failed
        # archive, NOTIFY_FAILED) would otherwise be cleared, or raised again,
        # on this test's channels. Closed after the channels are gone, so the
        # clear enqueues nothing.
        cur.execute("UPDATE alarm_logs SET cleared_at = now(),"
                    " ack_at = COALESCE(ack_at, now()), ack_by = COALESCE(ack_by, 'test-reset')"
                    " WHERE category = 'system' AND cleared_at IS NULL")
        # Rows an earlier test left pending must not reach this test's servers.
        cur.execute("UPDATE alarm_outbox SET status = 'dropped', last_error = 'test reset'"
                    " WHERE status = 'pending'")
        # ... nor reminders/escalations of alarms earlier tests left open.
        cur.execute("UPDATE alarm_logs SET ack_at = now(), ack_by = 'test-reset',"
                    " escalated_at = COALESCE(escalated_at, now())"
                    " WHERE ack_at IS NULL OR escalated_at IS NULL")
        # ... nor OFFLINE alarms of earlier tests' devices, silent since: the
        # silence scan of this test's mcsd only looks at devices seen.
        cur.execute("UPDATE devices SET last_seen = NULL WHERE last_seen IS NOT NULL")
    set_config(pg, "alarm.general", g)


def set_limits(pg, sn, **cols):
    names = list(cols)
    with pg.cursor() as cur:
        cur.execute(f"UPDATE devices SET {', '.join(n + ' = %s' for n in names)} WHERE sn = %s",
                    [*cols.values(), sn])


def alarms(pg, sn):
    with pg.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("SELECT * FROM alarm_logs WHERE sn = %s ORDER BY id", (sn,))
        return cur.fetchall()


def outbox(pg, alarm_id=None, channel=None):
    with pg.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        if alarm_id is not None:
            cur.execute("SELECT * FROM alarm_outbox WHERE alarm_id = %s ORDER BY id", (alarm_id,))
        else:
            cur.execute("SELECT * FROM alarm_outbox WHERE channel = %s ORDER BY id", (channel,))
        return cur.fetchall()
