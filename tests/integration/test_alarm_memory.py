"""The alarm engine's memory (issue #2, rss_mb_100k): thousands of devices
with limits that report normal readings leave no per-device state in the
engine; only devices with an open alarm are remembered (mcsd's metrics
alarm_open_devs and alarm_state_bytes, from alarm_engine_stats). The engine
used to keep ~350 B and a map slot for every device it had seen."""
from alarmhelpers import reset_alarm_config
from mcshelpers import new_sn

N = 5000


def send(pub, sn, ppm, seq):
    pub.reading(sn, qos=0, seq=seq, v_raw=float(ppm), temp=25.0)


def open_devices(pg):
    with pg.cursor() as cur:
        cur.execute("SELECT count(DISTINCT sn) FROM alarm_logs WHERE cleared_at IS NULL"
                    " AND alarm_type <> 'UNKNOWN_DEVICE'")
        return cur.fetchone()[0]


def test_devices_without_alarms_cost_the_engine_nothing(mcsd, pg, add_device, mqtt_pub, wait_db):
    reset_alarm_config(pg)
    prefix = new_sn("AM")
    with pg.cursor() as cur:
        cur.execute("INSERT INTO devices (sn, high_limit, high_limit2, low_limit)"
                    " SELECT %s || lpad(g::text, 5, '0'), 100, 200, 1"
                    " FROM generate_series(1, %s) g", (prefix, N))
    hot = add_device(high_limit=100)
    try:
        m = mcsd()
        for i in range(1, N + 1):
            send(mqtt_pub, f"{prefix}{i:05d}", 50, 1)
        send(mqtt_pub, hot, 150, 1)
        wait_db("SELECT count(*) FROM sensor_data WHERE sn LIKE %s", (prefix + "%",),
                pred=lambda r: r[0][0] == N, timeout=60, desc="every normal reading stored")
        wait_db("SELECT count(*) FROM alarm_logs WHERE sn = %s AND cleared_at IS NULL", (hot,),
                pred=lambda r: r[0][0] == 1, desc="the hot device's alarm raised")
        m.wait_metrics_refresh(2)
        met = m.metrics()
        opened = max(met.get("alarm_open_devs", 0), open_devices(pg))
        # The hot device (and devices of earlier tests with open alarms) are
        # remembered; the N normal ones are not: a per-device state would be
        # at least 350 B * N = 1.7 MB here.
        assert met.get("alarm_open_devs", 0) >= 1, met
        assert 0 < met["alarm_state_bytes"] < 64 * 1024 + 512 * opened, met
        # Cleared: its memory goes with it (the bound holds as before).
        send(mqtt_pub, hot, 10, 2)
        wait_db("SELECT count(*) FROM alarm_logs WHERE sn = %s AND cleared_at IS NULL", (hot,),
                pred=lambda r: r[0][0] == 0, desc="the hot device's alarm cleared")
        m.wait_metrics_refresh(2)
        met = m.metrics()
        assert met["alarm_state_bytes"] < 64 * 1024 + 512 * max(met["alarm_open_devs"],
                                                                open_devices(pg)), met
    finally:
        with pg.cursor() as cur:
            # No OFFLINE storm of these devices in later tests.
            cur.execute("DELETE FROM devices WHERE sn LIKE %s", (prefix + "%",))
