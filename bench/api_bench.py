#!/usr/bin/env python3
"""api_bench.py - benchmark group `api` (issue #8): mcs-api under wrk.

  api_list_rps      GET /api/devices?page=1&size=20 with 10,000 devices, req/s
  api_ping_rps      GET /api/ping on the same server in the same run, req/s
  api_list_p99_ms   p99 latency of the list (wrk --latency)
  api_list_ratio    api_list_rps / api_ping_rps
  history_p99_ms    GET /api/devices/{sn}/history last 24 h at 1m, 1,000
                    devices x 3 days at one reading a minute in the database
                    (target <= 50 ms), sequential keep-alive requests
  ws_api_cpu_pct    mcs-api CPU (% of one core) with 200 dashboard clients
                    (50 with --quick) and 10,000 devices at 1 frame/s
  ws_api_rss_mb     mcs-api resident memory at the end of that window
  ws_delivery_p99_le_ms, ws_delivery_mean_ms  the server's side of it, from
                    mcs-api's histogram mcs_api_ws_delivery_ms: realtime
                    frame built -> its last byte handed to the client's
                    socket (the bucket bound holding 99 %, and the mean)
  ws_frame_p50_ms   frame built (its ts_ms) -> completely received by a
  ws_frame_p99_ms   client, median and p99 (target <= 200 ms); the clients
                    are mcs-wsdash (bench/wsdash.c, epoll, 256 KiB reads)
  alarm_ws_p99_ms   reading over the limit published -> `alarm` frame at a
                    client, through mcsd's alarm engine (target <= 500 ms),
                    while the 200 dashboard clients are connected and the
                    other 8,999 devices send 1,000 readings/s (mcs-loadgen)
  alarm_ws_api_p99_ms  mcs-api's share of it: alarm row committed (NOTIFY) ->
                    `alarm` frame at a client

Contract of bench/run.sh groups: `api_bench.py --build DIR --run DIR
[--quick]`, the services of DIR/env up; prints `name: value` lines, stops
what it started. Traffic only to 127.0.0.1; every loop bounded."""
import argparse
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import json
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import forget_devices_sql, parse_env  # noqa: E402


def log(*a):
    print("bench api:", *a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def psql(env, sql):
    r = subprocess.run(["psql", "-h", env["DB_HOST"], "-p", env["DB_PORT"], "-U", env["DB_USER"],
                        "-d", env["DB_NAME"], "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, timeout=600)
    if r.returncode:
        log(f"psql failed: {r.stderr.decode(errors='replace').strip()}")
        r.check_returncode()


def wrk(url, token, secs, conns):
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{secs}s", "--latency", "-H",
                          f"Authorization: Bearer {token}", url],
                         capture_output=True, text=True, timeout=secs + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        log(f"{url}: {errors.group(1)} non-2xx answers")
    return rps, p99


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    build, run = Path(a.build).resolve(), Path(a.run).resolve()
    env = dict(os.environ)
    env.pop("ENV_FILE", None)
    env.update(parse_env(run / "env"))
    secs = 3 if a.quick else 8
    subprocess.run([str(build / "mcsd"), "--migrate"], env=env, check=True,
                   capture_output=True, timeout=120, cwd=str(run))
    # Day partitions for the last days: mcsd makes them at start.
    env_mcsd = dict(env, INSTANCE_ID="bench-api", SPOOL_DIR=str(run / "spool-api"),
                    MQTT_SHARE_GROUP="benchapi")
    m = subprocess.Popen([str(build / "mcsd")], env=env_mcsd, cwd=str(run),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)
    m.send_signal(signal.SIGTERM)
    m.wait(60)
    log("10,000 devices; 1,000 of them with 3 days of readings (1/min)")
    other = subprocess.run(["psql", "-h", env["DB_HOST"], "-p", env["DB_PORT"], "-U",
                            env["DB_USER"], "-d", env["DB_NAME"], "-qAtc",
                            "SELECT count(*) FROM devices WHERE sn NOT LIKE 'BA%'"],
                           capture_output=True, text=True, timeout=60).stdout.strip()
    if other not in ("", "0"):
        log(f"warning: {other} other devices are registered: the dashboard frames carry them too")
    psql(env, "INSERT INTO devices (sn, name, location, high_limit) SELECT 'BA' || "
              "lpad(g::text, 6, '0'), '探测器 ' || g, '区域 ' || (g % 7), 5000 "
              "FROM generate_series(1, 10000) g ON CONFLICT DO NOTHING")
    days = 1 if a.quick else 3
    ndev = 100 if a.quick else 1000
    psql(env, f"INSERT INTO sensor_data (time, sn, v_raw, ppm, temp, seq) "
              f"SELECT date_trunc('minute', now()) - m * interval '1 minute', 'BA' || "
              f"lpad(d::text, 6, '0'), 100, 50 + (m % 17), 25, m % 65536 "
              f"FROM generate_series(1, {ndev}) d, generate_series(0, {days * 1440 - 1}) m "
              f"ON CONFLICT DO NOTHING")
    # VACUUM too: the groups before this one delete their rows and devices.
    psql(env, "VACUUM ANALYZE devices")
    psql(env, "VACUUM ANALYZE sensor_data")
    psql(env, "VACUUM ANALYZE alarm_logs")
    user, pw = "bench_" + secrets.token_hex(3), secrets.token_hex(12)
    subprocess.run([str(build / "mcs"), "user", "add", user], input=pw + "\n", text=True,
                   env=env, check=True, capture_output=True, timeout=60)
    port = free_port()
    api_env = dict(env, API_PORT=str(port), JWT_SECRET=secrets.token_hex(32),
                   LOG_LEVEL="WARN", INSTANCE_ID="bench-api")
    api = subprocess.Popen([str(build / "mcs-api")], env=api_env, cwd=str(run),
                           stdout=subprocess.DEVNULL, stderr=open(run / "mcs-api.log", "wb"))
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/api/ping", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        req = urllib.request.Request(base + "/api/auth/login", method="POST",
                                     data=json.dumps({"username": user, "password": pw}).encode())
        token = json.load(urllib.request.urlopen(req, timeout=10))["access_token"]
        list_rps, list_p99 = wrk(base + "/api/devices?page=1&size=20", token, secs, 16)
        ping_rps, _ = wrk(base + "/api/ping", token, secs, 16)
        print(f"api_list_rps: {list_rps:.0f}")
        print(f"api_ping_rps: {ping_rps:.0f}")
        print(f"api_list_p99_ms: {list_p99:.2f}")
        print(f"api_list_ratio: {list_rps / ping_rps:.3f}")
        # History: one device, the last 24 h at 1-minute buckets (1440 points).
        end = int(time.time())
        iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
        lat = []
        n = 50 if a.quick else 200
        for i in range(n):
            sn = f"BA{(i % ndev) + 1:06d}"
            url = (f"{base}/api/devices/{sn}/history?start={iso(end - 86400)}&end={iso(end)}"
                   f"&interval=1m")
            r = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
            t0 = time.perf_counter()
            body = urllib.request.urlopen(r, timeout=30).read()
            lat.append((time.perf_counter() - t0) * 1000)
            if i == 0:
                log(f"history points: {len(json.loads(body)['points'])}")
        lat.sort()
        print(f"history_p99_ms: {lat[int(len(lat) * 0.99) - 1]:.1f}")
        ws_bench(env, run, build, base, port, token, api.pid, a.quick)
    finally:
        api.send_signal(signal.SIGTERM)
        try:
            api.wait(30)
        except subprocess.TimeoutExpired:
            api.kill()
        psql(env, forget_devices_sql(["BA"]))


def proc_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def delivery(base):
    """The mcs-api histogram of realtime frame delivery (built -> last byte
    in the client's socket): {le: cumulative count}, sum, count."""
    text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    b, tot, cnt = {}, 0, 0
    for line in text.splitlines():
        m = re.match(r'mcs_api_ws_delivery_ms_bucket\{le="([^"]+)"\} (\d+)', line)
        if m:
            b[m.group(1)] = int(m.group(2))
        elif line.startswith("mcs_api_ws_delivery_ms_sum "):
            tot = int(line.split()[1])
        elif line.startswith("mcs_api_ws_delivery_ms_count "):
            cnt = int(line.split()[1])
    return b, tot, cnt


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])


def alarm_latency(env, port, token, n):
    """Readings over the limit of n devices, 0.1 s apart -> `alarm` frames at
    one more dashboard client (which also gets the realtime frames); then
    mcs-api's share alone: alarm rows committed by psql -> frames. Returns
    the two lists of latencies in ms."""
    import websocket
    import paho.mqtt.client as mqtt
    sns = [f"BA{9000 + i:06d}" for i in range(n)]
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws/dashboard", timeout=10,
                                     skip_utf8_validation=True)
    ws.send(json.dumps({"type": "auth", "token": token}))
    pub = mqtt.Client(client_id="bench-api-pub", protocol=mqtt.MQTTv5)
    pub.connect(env["MQTT_HOST"], int(env["MQTT_PORT"]))
    pub.loop_start()
    sent, seen = {}, {}

    # Frames are taken by a thread while the readings go out: a frame is
    # timed when it arrives, not after the last publish.
    def receive():
        deadline = time.monotonic() + 20
        while len(seen) < n and time.monotonic() < deadline:
            ws.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                msg = ws.recv()
            except Exception:
                break
            now = time.time() * 1000
            if msg.startswith('{"type":"alarm"'):
                d = json.loads(msg)["data"]
                if d.get("event") == "raised" and d.get("sn") in sent and d["sn"] not in seen:
                    seen[d["sn"]] = now - sent[d["sn"]]
    rx = threading.Thread(target=receive)
    rx.start()
    for i, sn in enumerate(sns):
        sent[sn] = time.time() * 1000
        pub.publish(f"{TOPIC}/{sn}/up", json.dumps({"ts": int(time.time()), "seq": i, "v_raw": 5000,
                                                "temp": 25, "bat": 90, "rssi": -60}), qos=1)
        time.sleep(0.1)
    rx.join(25)
    pub.loop_stop()
    share = []
    for i in range(n):
        psql(env, "INSERT INTO alarm_logs (sn, alarm_type, value, threshold) VALUES "
                  f"('{sns[i]}', 'BENCH{i}', 1, 1)")
        # psql's own start-up is not the server's time: count from its exit.
        t1 = time.time()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = ws.recv()
            if msg.startswith('{"type":"alarm"') and f'"BENCH{i}"' in msg:
                share.append(max(0.0, (time.time() - t1) * 1000))
                break
    ws.close()
    return sorted(seen.values()), sorted(share)


INGEST_RATE = 1000  # readings/s of the 8,999 other devices during the WS part
# A topic prefix of this group's own: persistent sessions that earlier groups
# left in the broker (mcs/+/up, QoS 1 upgraded) would queue its traffic.
TOPIC = "mcsapibench"


def p99(v):
    return v[max(0, int(len(v) * 0.99) - 1)]


def ws_bench(env, run, build, base, port, token, api_pid, quick):
    """200 dashboard clients (mcs-wsdash, bench/wsdash.c: libwebsockets'
    client and Python's websocket-client both measured themselves at ~100
    MB/s) for warm-up + secs; inside the measuring window, the alarm latency
    through mcsd."""
    nclients = 50 if quick else 200
    secs = 8 if quick else 12
    warm = 3
    n = 10 if quick else 20
    sns = [f"BA{9000 + i:06d}" for i in range(n)]
    psql(env, "UPDATE devices SET high_limit = 100 WHERE sn = ANY(ARRAY[%s])" %
         ",".join(f"'{s}'" for s in sns))
    m = subprocess.Popen([str(build / "mcsd")], env=dict(env, INSTANCE_ID="bench-api-w",
                         SPOOL_DIR=str(run / "spool-api-w"), MQTT_SHARE_GROUP="benchapiw",
                         MQTT_TOPIC_PREFIX=TOPIC),
                         cwd=str(run), stdout=subprocess.DEVNULL, stderr=open(run / "mcsd-api-w.log", "wb"))
    dash, lg = None, None
    try:
        time.sleep(3)
        # Field traffic meanwhile: the other 8,999 devices at 1,000 readings/s
        # in all (about one every 10 s each, as detectors report), below
        # their limits, so that mcsd ingests and the frames carry values.
        lg = subprocess.Popen([str(build / "mcs-loadgen"), "--host", env["MQTT_HOST"], "--port",
                               env["MQTT_PORT"], "--devices", "8999", "--conns", "20",
                               "--sn-prefix", "BA", "--sn-start", "1", "--rate", str(INGEST_RATE),
                               "--topic-prefix", TOPIC,
                               "--duration", str(warm + secs + 15), "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        dash = subprocess.Popen([str(build / "mcs-wsdash"), "--port", str(port), "--clients",
                                 str(nclients), "--warmup", str(warm), "--secs", str(secs)],
                                env=dict(env, MCS_TOKEN=token), stdout=subprocess.PIPE, text=True)
        time.sleep(warm)
        c0, t0 = cpu_ticks(api_pid), time.monotonic()
        d0 = delivery(base)
        seen, share = alarm_latency(env, port, token, n)
        left = secs - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)
        else:
            log("the alarm part outlasted the dashboard window")
        c1, t1 = cpu_ticks(api_pid), time.monotonic()
        d1 = delivery(base)
        rss = proc_kb(api_pid, "VmRSS")
        out, _ = dash.communicate(timeout=60)
        fig = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
        hz = os.sysconf("SC_CLK_TCK")
        print(f"ws_api_cpu_pct: {100.0 * (c1 - c0) / hz / (t1 - t0):.1f}")
        print(f"ws_api_rss_mb: {rss / 1024:.1f}")
        # Server side: the smallest bucket bound holding 99 % of the window's
        # deliveries, and their mean.
        cnt = d1[2] - d0[2]
        if cnt > 0:
            for le, v in d1[0].items():
                if v - d0[0].get(le, 0) >= 0.99 * cnt:
                    print(f"ws_delivery_p99_le_ms: {le}")
                    break
            print(f"ws_delivery_mean_ms: {(d1[1] - d0[1]) / cnt:.1f}")
        if "ws_frame_p99_ms" in fig:
            print(f"ws_frame_p50_ms: {fig['ws_frame_p50_ms']}")
            print(f"ws_frame_p99_ms: {fig['ws_frame_p99_ms']}")
            log(f"ws frames received: {fig['ws_frames']} of {fig['ws_frames_expected']} "
                f"expected ({fig['ws_clients_up']} clients up, {fig['ws_clients_closed']} "
                f"closed), max {fig['ws_frame_max_ms']} ms")
        else:
            print("error: ws_frame_p99_ms: no frame received")
        if share:
            print(f"alarm_ws_api_p99_ms: {p99(share):.1f}")
        if seen:
            print(f"alarm_ws_p99_ms: {p99(seen):.1f}")
            log(f"alarm frames: {len(seen)} of {n}, "
                f"{' '.join(f'{x:.0f}' for x in seen)} ms")
        else:
            print("error: alarm_ws_p99_ms: no alarm frame received")
    finally:
        if dash and dash.poll() is None:
            dash.kill()
            dash.wait(10)
        if lg:
            lg.terminate()
            lg.wait(30)
        m.send_signal(signal.SIGTERM)
        m.wait(60)


if __name__ == "__main__":
    main()
