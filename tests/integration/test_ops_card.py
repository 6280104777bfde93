"""test_ops_card.py - every SQL statement of the troubleshooting card in
docs/OPERATIONS.md (R-OP-5, issue #18) runs with psql, as an operator types
it, on the suite's PostgreSQL: native partitions in the normal pass,
TimescaleDB in its own (statements marked `-- native` / `-- timescaledb`
run on their dialect only)."""
import re
import subprocess

from archivehelpers import is_timescale, local_day, seed_day  # noqa: F401
from mcshelpers import REPO


def card_statements():
    text = (REPO / "docs" / "OPERATIONS.md").read_text()
    block = re.search(r"### 故障速查[^\n]*\n.*?```sql\n(.*?)```", text, re.S)
    assert block, "docs/OPERATIONS.md has no troubleshooting card with a sql block"
    out, dialect = [], None
    for line in block.group(1).splitlines():
        if line.startswith("--"):
            m = re.search(r"-- (native|timescaledb)\s*$", line)
            dialect = m.group(1) if m else None
        elif line.strip():
            assert line.rstrip().endswith(";"), f"one statement per line: {line!r}"
            out.append((line.strip(), dialect))
    return out


def test_every_card_statement_runs(services, pg):
    with pg.cursor() as cur:
        cur.execute("INSERT INTO devices (sn, name) VALUES ('A001', '1号') "
                    "ON CONFLICT (sn) DO NOTHING")
        cur.execute("DELETE FROM sensor_data WHERE sn = 'A001'")
    seed_day(pg, local_day(0), n=24, sns=("A001",))
    dialect = "timescaledb" if is_timescale(pg) else "native"
    stmts = card_statements()
    assert len(stmts) >= 8
    ran = 0
    for sql, only in stmts:
        if only and only != dialect:
            continue
        r = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", services["DB_HOST"],
                            "-p", services["DB_PORT"], "-U", services["DB_USER"],
                            services["DB_NAME"], "-c", sql],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"{sql}\n{r.stderr}"
        if "sn = 'A001'" in sql:
            assert r.stdout.count("A001") == 10, r.stdout
        if "timescaledb_information.chunks" in sql or "pg_inherits" in sql:
            assert f"sensor_data_{local_day(0):%Y%m%d}" in r.stdout, r.stdout
        ran += 1
    assert ran == len([s for s in stmts if s[1] in (None, dialect)])
