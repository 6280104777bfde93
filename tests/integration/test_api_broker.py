"""mcs-api's device commands through a broker in plugin mode (R-MQ-6,
docs/OPERATIONS.md "Broker accounts"): mcs-api logs in as the broker's
`worker` account — the default API_MQTT_USER, only its password is given —
and its commands reach the devices on mcs/{sn}/cmd and mcs/broadcast/cmd.
The plugin-mode services are test_plugin.py's module fixture (a run
directory of this module's own)."""
import json
import os

import pytest

from apihelpers import ApiLauncher, add_user
from mcshelpers import new_sn, wait_until
from test_plugin import add_device, clients, device, psvc, rds  # noqa: F401


@pytest.fixture
def api_env(psvc):
    env = dict(os.environ)
    env.pop("ENV_FILE", None)
    env.pop("MQTT_TLS_CAFILE", None)
    env.update(psvc)
    env["LOG_LEVEL"] = "INFO"
    env["SCHED_ENABLED"] = "0"
    # No API_MQTT_USER: the default must be the worker account.
    env.pop("API_MQTT_USER", None)
    env["API_MQTT_PASS"] = psvc["WORKER_PASS"]
    return env


@pytest.fixture
def plugin_api(api_env, tmp_path):
    launcher = ApiLauncher(api_env, tmp_path)
    yield launcher
    problems = launcher.cleanup()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def test_commands_go_out_as_the_worker_account(psvc, plugin_api, api_env, clients, add_device,
                                               rds):
    sn = add_device()
    d = device(clients, psvc, sn)
    assert d.subscribe(f"mcs/{sn}/cmd") == [1]
    assert d.subscribe("mcs/broadcast/cmd") == [1]
    a = plugin_api.start()
    user = "brk_" + new_sn("").lower()
    add_user(api_env, user, "broker-test-password", "admin")
    tok = a.login(user, "broker-test-password")
    wait_until(lambda: "connected to the broker" in a.log_tail(200), 10,
               desc="mcs-api connected to the broker", detail=lambda: a.log_tail(40))
    # Only the worker's password was given: the broker accepting it (and
    # the plugin's ACL letting the commands through) shows the account.
    rds.set(f"online:{sn}", "1", ex=60)
    try:
        r = a.post(f"/api/devices/{sn}/command", tok, json={"cmd": "reboot", "delay": 5})
        assert r.status_code == 200, r.text
        payload, _ = d.expect(f"mcs/{sn}/cmd", 5)
        assert json.loads(payload) == {"cmd": "reboot", "delay": 5,
                                       "id": str(r.json()["command_id"])}
        r = a.post("/api/devices/broadcast/command", tok,
                   json={"cmd": "ota", "url": "https://example.com/v1.0.4.bin",
                         "md5": "0123456789abcdef0123456789abcdef"})
        assert r.status_code == 200, r.text
        payload, _ = d.expect("mcs/broadcast/cmd", 5)
        assert json.loads(payload)["cmd"] == "ota"
    finally:
        rds.delete(f"online:{sn}")
    assert "command refused by the broker" not in a.log_tail(400)
