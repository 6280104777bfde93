"""R-PR-3: online while reporting (online:{sn}, devices.status); the Last Will
on mcs/{sn}/status marks the device offline at once; reporting again brings
it back."""
import json
import subprocess
import sys
import textwrap
import time

import pytest

from mcshelpers import Publisher, telemetry, wait_until

# A device as a separate process: connects with its Last Will, publishes one
# reading (QoS 1, PUBACKed), says so, and then idles until killed.
DEVICE_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import paho.mqtt.client as mqtt
    host, port, sn, reading = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    c = mqtt.Client(client_id="device_" + sn, protocol=mqtt.MQTTv5)
    c.will_set(f"mcs/{sn}/status", json.dumps({"status": "offline", "ts": int(time.time())}),
               qos=1, retain=True)
    c.connect(host, port, keepalive=60)
    c.loop_start()
    c.publish(f"mcs/{sn}/up", reading, qos=1).wait_for_publish(10)
    print("published", flush=True)
    time.sleep(600)
""")


def wait_online(rds, wait_db, sn):
    wait_until(lambda: rds.exists(f"online:{sn}"), 5, desc=f"online:{sn} set")
    wait_db("SELECT status FROM devices WHERE sn = %s", (sn,),
            pred=lambda r: r and r[0][0] == "online", timeout=5,
            desc="devices.status = 'online'")


def wait_offline_fast(rds, pg, sn, t0, limit=2.0):
    """Both signs of offline must appear within `limit` seconds of t0."""
    def both():
        with pg.cursor() as cur:
            cur.execute("SELECT status FROM devices WHERE sn = %s", (sn,))
            status = cur.fetchone()[0]
        return not rds.exists(f"online:{sn}") and status == "offline"
    wait_until(both, limit - (time.monotonic() - t0), 0.02,
               desc=f"{sn} offline (online:{sn} gone and devices.status='offline')",
               detail=lambda: f"online key: {rds.get(f'online:{sn}')}")
    return time.monotonic() - t0


@pytest.mark.parametrize("how", ["socket-close", "process-kill"])
def test_last_will_marks_offline(how, mcsd, services, add_device, rds, pg, wait_db, tmp_path):
    sn = add_device()
    m = mcsd()
    st0 = m.metric("status_msgs")
    host, port = services["MQTT_HOST"], services["MQTT_PORT"]
    will = (f"mcs/{sn}/status", json.dumps({"status": "offline", "ts": int(time.time())}),
            1, True)
    reading = telemetry(ts=int(time.time()) - 1, seq=1)
    proc = dev = None
    try:
        if how == "socket-close":
            dev = Publisher(host, port, client_id=f"device_{sn}", will=will)
            dev.reading(sn, **reading)
        else:
            proc = subprocess.Popen([sys.executable, "-c", DEVICE_SCRIPT, host, port, sn,
                                     json.dumps(reading)], stdout=subprocess.PIPE, text=True)
            assert proc.stdout.readline().strip() == "published"
        wait_online(rds, wait_db, sn)

        # Abrupt loss of the device: no DISCONNECT, so the broker sends the Will.
        t0 = time.monotonic()
        if dev:
            dev.close(abrupt=True)
        else:
            proc.kill()
        took = wait_offline_fast(rds, pg, sn, t0)
        print(f"{how}: offline {took:.2f}s after the connection was lost")
        m.wait_metric("status_msgs", lambda v: v > st0, timeout=3)
    finally:
        if proc and proc.poll() is None:
            proc.kill()
        if proc:
            proc.wait()

    # Reporting again brings it back online.
    back = Publisher(host, port, client_id=f"device_{sn}")
    try:
        back.reading(sn, ts=int(time.time()), seq=2)
        wait_online(rds, wait_db, sn)
    finally:
        back.close()
    assert m.alive()


def test_status_online_message_does_not_store_data(mcsd, add_device, mqtt_pub, rds, db_count):
    """A status message is not telemetry: nothing lands in sensor_data."""
    sn = add_device()
    m = mcsd()
    st0 = m.metric("status_msgs")
    mqtt_pub.publish(f"mcs/{sn}/status", {"status": "online", "ts": int(time.time())}, qos=1)
    m.wait_metric("status_msgs", lambda v: v > st0, timeout=5)
    assert db_count(sn) == 0
    assert not rds.exists(f"realtime:{sn}")


def test_will_then_reading_in_one_batch_leaves_device_online(mcsd, add_device, mqtt_pub,
                                                            rds, wait_db):
    """A device whose Last Will and next reading (it reconnected at once) fall
    into the same batch stays online: the Will is superseded by the reading
    that followed it, not applied after it."""
    sn = add_device()
    mcsd(BATCH_MAX_MS=800)  # one batch for all three messages
    now = int(time.time())
    infos = [
        mqtt_pub.publish(f"mcs/{sn}/up", telemetry(ts=now - 2, seq=1), qos=1, wait=False),
        mqtt_pub.publish(f"mcs/{sn}/status", {"status": "offline", "ts": now - 1}, qos=1,
                         wait=False),
        mqtt_pub.publish(f"mcs/{sn}/up", telemetry(ts=now, seq=2), qos=1, wait=False),
    ]
    for i in infos:
        i.wait_for_publish(5)
    wait_db("SELECT count(*) FROM sensor_data WHERE sn = %s", (sn,),
            pred=lambda r: r[0][0] == 2, desc="both readings stored")
    time.sleep(0.3)  # the Redis writes follow the commit
    assert rds.exists(f"online:{sn}"), "the superseded Will deleted online:{sn}"
    wait_db("SELECT status FROM devices WHERE sn = %s", (sn,),
            pred=lambda r: r and r[0][0] == "online", timeout=5,
            desc="devices.status = 'online' after the statistics flush")
