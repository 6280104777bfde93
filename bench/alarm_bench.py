#!/usr/bin/python3
"""alarm_bench.py - the alarm group of `make bench` (issue #7), run by
bench/run.sh against the services it started. Figures on stdout as
`name: value`, diagnostics on stderr.

  1. notify latency: mcs-loadgen keeps 10k msg/s of normal QoS 0 readings
     flowing (10k devices, no limits); probe devices publish one QoS 0
     reading over their limit each; a local webhook capture server notes
     when the notification arrives: alarm_notify_p50_ms, alarm_notify_p99_ms.
  2. storm: 10,000 devices cross their limit within about a second, with the
     background load still on, DingTalk (20/min) and a webhook configured:
     storm_recorded_s (until every alarm row exists), storm_ingest_ratio
     (stored readings/s of the background during the storm / before it),
     storm_msgs_dingtalk, storm_msgs_webhook (requests each received).

Usage: alarm_bench.py --build DIR --run DIR [--quick]
Owns the processes it starts (mcsd, mcs-loadgen) and stops them.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg2

from benchlib import forget_devices_sql, parse_env

INSTANCE = "bench-alarm"


def log(*a):
    print("alarm_bench:", *a, file=sys.stderr, flush=True)


def fig(name, value):
    print(f"{name}: {value}", flush=True)


class Capture:
    def __init__(self, answer):
        self.hits = []  # (wall time, body)
        cap = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                cap.hits.append((time.time(), body))
                b = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    build, run = Path(a.build), Path(a.run)
    env = parse_env(run / "env")
    pg = psycopg2.connect(host=env["DB_HOST"], port=int(env["DB_PORT"]), dbname=env["DB_NAME"],
                          user=env["DB_USER"], password=env.get("DB_PASS", ""))
    pg.autocommit = True
    procs = []
    hook = Capture({"ok": True})
    ding = Capture({"errcode": 0, "errmsg": "ok"})
    menv = dict(os.environ, **env, INSTANCE_ID=INSTANCE, SPOOL_DIR=str(run / "spool-alarm"),
                MQTT_SHARE_GROUP="balarm", LOG_LEVEL="WARN", METRICS_INTERVAL_MS="500")
    try:
        subprocess.run([str(build / "mcsd"), "--migrate"], env=menv, check=True,
                       capture_output=True, timeout=120)
        with pg.cursor() as cur:
            cur.execute("INSERT INTO devices (sn) SELECT 'ABG'||lpad(i::text,6,'0')"
                        " FROM generate_series(0, 9999) i ON CONFLICT DO NOTHING")
            cur.execute("INSERT INTO devices (sn, high_limit) SELECT 'APR'||lpad(i::text,6,'0'),"
                        " 100 FROM generate_series(0, 199) i ON CONFLICT DO NOTHING")
            cur.execute("INSERT INTO devices (sn, high_limit) SELECT 'AST'||lpad(i::text,6,'0'),"
                        " 100 FROM generate_series(0, 9999) i ON CONFLICT DO NOTHING")
            cur.execute("UPDATE alarm_logs SET cleared_at = now(), ack_at = now()"
                        " WHERE sn LIKE 'AST%' OR sn LIKE 'APR%'")
            cur.execute("DELETE FROM system_config WHERE key LIKE 'alarm.%'")
            cur.execute("INSERT INTO system_config (key, value) VALUES"
                        " ('alarm.general', %s), ('alarm.channel.webhook', %s)",
                        (json.dumps({"debounce_min": 0, "reminders": False,
                                     "digest": {"threshold": 5}}),
                         json.dumps({"enabled": True,
                                     "url": f"http://127.0.0.1:{hook.port}/hook"})))
        logf = open(run / "mcsd-alarm.log", "wb")
        mcsd = subprocess.Popen([str(build / "mcsd")], env=menv, stdout=logf,
                                stderr=subprocess.STDOUT)
        procs.append(mcsd)
        time.sleep(3)
        bg = subprocess.Popen([str(build / "mcs-loadgen"), "--host", env["MQTT_HOST"], "--port",
                               env["MQTT_PORT"], "--devices", "10000", "--conns", "20",
                               "--sn-prefix", "ABG", "--rate", "10000", "--qos", "0",
                               "--duration", "600", "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(bg)
        time.sleep(3)

        # 1. latency under load
        pub = mqtt.Client(client_id="alarm-probe", protocol=mqtt.MQTTv5)
        pub.connect(env["MQTT_HOST"], int(env["MQTT_PORT"]))
        pub.loop_start()
        n = 20 if a.quick else 60
        sent = {}
        for i in range(n):
            sn = f"APR{i:06d}"
            sent[sn] = time.time()
            pub.publish(f"mcs/{sn}/up", json.dumps({"ts": int(time.time()), "seq": 1,
                                                    "v_raw": 150.0, "temp": 25.0, "bat": 90,
                                                    "err": 0}), qos=0)
            time.sleep(0.25)
        deadline = time.time() + 15
        while len(hook.hits) < n and time.time() < deadline:
            time.sleep(0.1)
        lat = []
        for t, body in hook.hits:
            try:
                sn = json.loads(body)["sn"]
            except (ValueError, KeyError):
                continue
            if sn in sent:
                lat.append((t - sent[sn]) * 1000)
        log(f"latency: {len(lat)}/{n} notifications received")
        if lat:
            fig("alarm_notify_p50_ms", round(pct(lat, 50), 1))
            fig("alarm_notify_p99_ms", round(pct(lat, 99), 1))
        fig("alarm_notify_received", f"{len(lat)}/{n}")

        # 2. storm
        with pg.cursor() as cur:
            cur.execute("INSERT INTO system_config (key, value) VALUES ('alarm.channel.dingtalk',"
                        " %s)", (json.dumps({"enabled": True, "url":
                                             f"http://127.0.0.1:{ding.port}/robot/send?access_token=t"}),))
        time.sleep(2.5)
        hooks0 = len(hook.hits)

        def bg_rows():
            with pg.cursor() as cur:
                cur.execute("SELECT count(*) FROM sensor_data WHERE sn LIKE 'ABG%%'"
                            " AND time > now() - interval '1 hour'")
                return cur.fetchone()[0]
        r0, t0 = bg_rows(), time.time()
        time.sleep(3)
        r1, t1 = bg_rows(), time.time()
        base_rate = (r1 - r0) / (t1 - t0)
        ts = time.time()
        subprocess.run([str(build / "mcs-loadgen"), "--host", env["MQTT_HOST"], "--port",
                        env["MQTT_PORT"], "--devices", "10000", "--conns", "10", "--sn-prefix",
                        "AST", "--rate", "0", "--qos", "0", "--count", "10000", "--quiet"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        pub_s = time.time() - ts
        r2, t2 = bg_rows(), time.time()
        recorded = None
        while time.time() - ts < 60:
            # mcs-loadgen picks devices at random: ~9,850 distinct of 10,000.
            with pg.cursor() as cur:
                cur.execute("SELECT (SELECT count(DISTINCT sn) FROM alarm_outbox o JOIN alarm_logs a"
                            " ON a.id = o.alarm_id WHERE a.sn LIKE 'AST%%' AND a.cleared_at IS NULL"
                            " AND o.channel = 'webhook'),"
                            " (SELECT count(DISTINCT sn) FROM sensor_data WHERE sn LIKE 'AST%%')")
                c, want = cur.fetchone()
            if want > 9000 and c >= want:
                recorded = time.time() - ts
                break
            time.sleep(0.2)
        r3, t3 = bg_rows(), time.time()
        storm_rate = (r3 - r2) / (t3 - t2) if t3 > t2 else 0
        log(f"storm published in {pub_s:.2f}s; background {base_rate:.0f}/s before, "
            f"{storm_rate:.0f}/s during")
        fig("storm_recorded_s", round(recorded, 2) if recorded else "timeout")
        fig("storm_ingest_ratio", round(storm_rate / base_rate, 2) if base_rate else "n/a")
        time.sleep(8)
        fig("storm_msgs_dingtalk", len(ding.hits))
        fig("storm_msgs_webhook", len(hook.hits) - hooks0)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        hook.close()
        ding.close()
        with pg.cursor() as cur:
            cur.execute("DELETE FROM system_config WHERE key LIKE 'alarm.channel.%'")
            # The groups after this one share the services.
            cur.execute(forget_devices_sql(["ABG", "APR", "AST"]))
        pg.close()


if __name__ == "__main__":
    main()
