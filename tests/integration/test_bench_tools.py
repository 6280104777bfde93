"""The benchmark's own measuring tools (issue #6, benchmark honesty): the
pipeline-limit subscriber must store the very rows mcsd stores, and the
loadgen trace file must name readings that are really in sensor_data, or the
figures built on them (pipeline_limit_rate, commit_p*_ms) mean nothing."""
import secrets
import subprocess
import time

from mcshelpers import wait_until

COLS = ("extract(epoch FROM time)::bigint, sn, v_raw, ppm, temp, humi, bat, rssi, seq, "
        "err, flags")


def start_copysub(services, bin_path, tmp_path, table, idle=2):
    ready = tmp_path / "copysub.ready"
    conninfo = (f"host={services['DB_HOST']} port={services['DB_PORT']} "
                f"user={services['DB_USER']} dbname={services['DB_NAME']}")
    p = subprocess.Popen([bin_path("mcs-copysub"), "--host", services["MQTT_HOST"], "--port",
                          services["MQTT_PORT"], "--topic", "$share/t-limit/mcs/+/up", "--qos",
                          "1", "--db", conninfo, "--table", table, "--k", "1.5", "--b", "-10",
                          "--idle", str(idle), "--duration", "30", "--ready-file", str(ready),
                          "--quiet"], stdout=subprocess.PIPE, text=True)
    wait_until(lambda: ready.exists() or p.poll() is not None, 10, desc="copysub subscribed")
    assert p.poll() is None, "mcs-copysub exited at start"
    return p


def figures(text):
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def test_copysub_stores_the_rows_mcsd_stores(services, mcsd, add_device, mqtt_pub, wait_db, pg,
                                             bin_path, tmp_path):
    """Same messages to mcsd (sensor_data) and mcs-copysub (a copy of the
    table): row for row identical, NULLs for absent fields included."""
    table = "bench_copy_" + secrets.token_hex(3)
    with pg.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (LIKE sensor_data INCLUDING ALL)")
    sn = add_device(calib_k=1.5, calib_b=-10)
    mcsd()
    cs = start_copysub(services, bin_path, tmp_path, table)
    ts = int(time.time()) - 3
    mqtt_pub.reading(sn, ts=ts, seq=1, v_raw=2350.5, temp=28.5, humi=65.2, bat=85, rssi=-75)
    mqtt_pub.reading(sn, ts=ts + 1, seq=2, v_raw=100.0, temp=-3.5, humi=10.0, bat=9, rssi=-101,
                     err=11)
    mqtt_pub.publish(f"mcs/{sn}/up", f'{{"ts":{ts + 2},"seq":3,"v_raw":410.2}}', 1)
    out, _ = cs.communicate(timeout=30)
    f = figures(out)
    assert cs.returncode == 0, out
    assert (f["received"], f["stored"], f["copy_failed"]) == ("3", "3", "0"), out
    mine = wait_db(f"SELECT {COLS} FROM sensor_data WHERE sn = %s ORDER BY seq", (sn,),
                   pred=lambda r: len(r) == 3, desc="mcsd's three rows")
    with pg.cursor() as cur:
        cur.execute(f"SELECT {COLS} FROM {table} WHERE sn = %s ORDER BY seq", (sn,))
        theirs = cur.fetchall()
        cur.execute(f"DROP TABLE {table}")
    assert theirs == mine
    assert mine[2][6] is None and mine[2][4] is None  # absent bat, temp: NULL in both


def test_loadgen_trace_file_names_stored_readings(services, mcsd, pg, bin_path, tmp_path):
    """Every sampled (sn, ts, seq) of --trace-file is a row in sensor_data,
    with a publish time just before that row was committed."""
    prefix = "LT" + secrets.token_hex(3).upper()
    with pg.cursor() as cur:
        cur.execute("INSERT INTO devices (sn) SELECT %s || lpad(i::text, 6, '0') "
                    "FROM generate_series(0, 4) i", (prefix,))
    mcsd()
    trace = tmp_path / "trace.csv"
    t0 = time.time()
    r = subprocess.run([bin_path("mcs-loadgen"), "--host", services["MQTT_HOST"], "--port",
                        services["MQTT_PORT"], "--devices", "5", "--conns", "1", "--sn-prefix",
                        prefix, "--count", "40", "--rate", "200", "--qos", "1",
                        "--trace-file", str(trace), "--trace-every", "8", "--quiet"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    f = figures(r.stdout)
    assert f["sent"] == "40" and f["traced"] == "5"
    assert int(f["start_unix_ms"]) <= int(f["end_unix_ms"])
    lines = [ln.split(",") for ln in trace.read_text().splitlines()]
    assert len(lines) == 5
    for sn, ts, seq, pub_us in lines:
        assert sn.startswith(prefix)
        assert t0 - 1 <= int(pub_us) / 1e6 <= time.time()
        rows = wait_until(lambda: _row(pg, sn, int(ts), int(seq)), 10,
                          desc=f"row of traced reading {sn} {ts} {seq}")
        assert 0 < rows - int(pub_us) / 1e6 < 10  # seconds from publish to row visible


def _row(pg, sn, ts, seq):
    """Wall-clock time (unix s) at which the reading is seen, or None."""
    with pg.cursor() as cur:
        cur.execute("SELECT extract(epoch FROM clock_timestamp()) FROM sensor_data "
                    "WHERE sn = %s AND time = to_timestamp(%s) AND seq = %s", (sn, ts, seq))
        r = cur.fetchone()
    return float(r[0]) if r else None
