-- 002_hardening.sql - issue #6: the journal's identity with the checkpoint,
-- and a quarantine for readings the database itself refuses.

-- The spool directory's identity (SPOOL_DIR/spool.id) is written with the
-- checkpoint, so a recreated or replaced spool is recognised: its records
-- are replayed from its start (duplicates are dropped by the unique index)
-- instead of being skipped by a position that belonged to another spool.
ALTER TABLE ingest_checkpoint ADD COLUMN spool_id varchar(32);

-- Readings PostgreSQL refused for their content (SQLSTATE class 22 or 23,
-- other than a duplicate): kept with the reason instead of being dropped,
-- counted as `quarantined` in the metrics. Plain columns (ts as Unix
-- seconds) so that any refused value can be kept.
CREATE TABLE sensor_quarantine (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    instance  varchar(64) NOT NULL,
    sn        varchar(32) NOT NULL,
    ts        bigint,
    seq       integer,
    v_raw     double precision,
    ppm       double precision,
    temp      double precision,
    humi      double precision,
    bat       integer,
    rssi      integer,
    err       integer,
    flags     integer,
    sqlstate  varchar(5) NOT NULL,
    reason    text NOT NULL
);
CREATE INDEX sensor_quarantine_at ON sensor_quarantine (at DESC);
