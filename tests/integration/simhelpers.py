"""simhelpers.py - the device simulator mcs-sim (firmware/port-posix, issue
#11) as a process handle for integration tests: started with its control
lines on stdin, asked for its counters, stopped with SIGTERM (exit code 0
required: with the ASan build that includes the leak check)."""
import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mcshelpers import build_dir


class Sim:
    """A running mcs-sim. args: extra command-line arguments."""

    def __init__(self, tmp_path, host, port, args, env=None):
        binary = build_dir() / "mcs-sim"
        if not binary.exists():
            pytest.fail(f"{binary} not built", pytrace=False)
        self.stats_path = Path(tmp_path) / f"sim-{time.monotonic_ns()}.json"
        self.log_path = self.stats_path.with_suffix(".log")
        cmd = [str(binary), "--host", str(host), "--port", str(port), "--control", "--quiet",
               "--stats", str(self.stats_path), *map(str, args)]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, env=env or dict(os.environ))
        self._buf = b""

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def control(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def _line(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise AssertionError(f"mcs-sim: no output line (alive={self.proc.poll() is None})"
                                     f"\nlog:\n{self.log_text()[-2000:]}")
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    continue
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def stats(self, timeout=10):
        """The counters now (the 'stats' control line)."""
        self.control("stats")
        while True:
            v = json.loads(self._line(timeout))
            if "devs" in v:
                return v

    def dev(self, i=0):
        return self.stats()["devs"][i]

    def stop(self, timeout=30):
        """SIGTERM; requires exit 0; returns the final counters."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"mcs-sim ignored SIGTERM\n{self.log_text()[-2000:]}", pytrace=False)
        self._log.close()
        if self.proc.returncode != 0:
            pytest.fail(f"mcs-sim exited with {self.proc.returncode}\n{self.log_text()[-4000:]}",
                        pytrace=False)
        return json.loads(self.stats_path.read_text())

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self._log.closed:
            self._log.close()
