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
