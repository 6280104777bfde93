"""Small helpers shared by the benchmark drivers (standard library only)."""
from pathlib import Path


def parse_env(path):
    """Reads a KEY=VALUE file such as the DIR/env that scripts/svc.sh writes."""
    env = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    return env


def forget_devices_sql(prefixes):
    """One SQL script that deletes what a group made for its devices whose
    serial numbers start with one of prefixes: alarm attempts, outbox rows,
    alarms, debounce state, readings, then the devices. The groups of one
    `make bench` share the services; a dashboard frame carries every
    registered device and every open alarm. Prefixes are the groups' own
    constants (letters and digits), never input."""
    for p in prefixes:
        assert p.isalnum(), p
    like = "ANY (ARRAY[" + ", ".join(f"'{p}%'" for p in prefixes) + "])"
    return (f"DELETE FROM alarm_attempts WHERE outbox_id IN (SELECT o.id FROM alarm_outbox o "
            f"JOIN alarm_logs l ON l.id = o.alarm_id WHERE l.sn LIKE {like}); "
            f"DELETE FROM alarm_outbox WHERE alarm_id IN (SELECT id FROM alarm_logs "
            f"WHERE sn LIKE {like}); "
            f"DELETE FROM alarm_logs WHERE sn LIKE {like}; "
            f"DELETE FROM alarm_notify_state WHERE sn LIKE {like}; "
            f"DELETE FROM sensor_data WHERE sn LIKE {like}; "
            f"DELETE FROM devices WHERE sn LIKE {like}")
