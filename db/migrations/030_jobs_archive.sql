-- 030_jobs_archive.sql - scheduled jobs, archive and backup records, hourly
-- device statistics (issue #10, R-OP-2, R-ST-4..6), and sensor_data
-- partitions by the plant's local day instead of the UTC day.

-- One row per job run: by schedule (due = the slot it stands for, at most
-- one live row per slot across instances), as a catch-up, or by hand (due
-- NULL). 'running' rows of a leader that died become 'abandoned'.
CREATE TABLE job_runs (
    id          bigserial PRIMARY KEY,
    job         varchar(32) NOT NULL,
    due         timestamptz,
    trigger     varchar(16) NOT NULL CHECK (trigger IN ('schedule', 'catchup', 'manual')),
    instance    varchar(64) NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at    timestamptz,
    outcome     varchar(16) NOT NULL
                CHECK (outcome IN ('running', 'ok', 'failed', 'skipped', 'not_built', 'abandoned')),
    error       text,
    detail      jsonb
);
CREATE UNIQUE INDEX job_runs_slot ON job_runs (job, due) WHERE outcome <> 'abandoned';
CREATE INDEX job_runs_job_started ON job_runs (job, started_at DESC);

-- The latest run of each job, for health and the API.
CREATE VIEW job_last_runs AS
    SELECT DISTINCT ON (job) job, id, due, trigger, instance, started_at, ended_at,
           outcome, error, detail
    FROM job_runs ORDER BY job, started_at DESC;

-- Who holds the scheduler's leader lock (informational; the lock itself is
-- pg_advisory_lock(7342010) on the leader's session).
CREATE TABLE sched_leader (
    id        integer PRIMARY KEY CHECK (id = 1),
    instance  varchar(64) NOT NULL,
    since     timestamptz NOT NULL,
    heartbeat timestamptz NOT NULL
);

-- Hourly per-device statistics from the stored rows (all instances).
CREATE TABLE device_stats_hourly (
    sn          varchar(32) COLLATE "C" NOT NULL,
    hour        timestamptz NOT NULL,
    received    bigint NOT NULL,
    lost        bigint NOT NULL,
    loss_rate   double precision,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sn, hour)
);

-- archive_logs (001): file_name holds the object key; these say where and
-- how it was verified.
ALTER TABLE archive_logs ADD COLUMN sink varchar(8);
ALTER TABLE archive_logs ADD COLUMN etag text;

CREATE TABLE backup_logs (
    id          bigserial PRIMARY KEY,
    key         text NOT NULL,
    sink        varchar(8) NOT NULL,
    size_bytes  bigint,
    md5         char(32),
    status      varchar(16) NOT NULL,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Native partitions now cover the plant's local day (TZ, default
-- Asia/Shanghai) so that the archive drops a day whole. mcsd passes TZ to
-- every session as mcs.tz; existing UTC-day partitions are re-cut here.
CREATE FUNCTION mcs_create_day_partition(d date, tz text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    name text := 'sensor_data_' || to_char(d, 'YYYYMMDD');
BEGIN
    IF to_regclass(name) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF sensor_data FOR VALUES FROM (%L) TO (%L)',
                       name, (d::timestamp AT TIME ZONE tz)::text,
                       ((d + 1)::timestamp AT TIME ZONE tz)::text);
    END IF;
END $$;

DO $$
DECLARE
    tz text := coalesce(nullif(current_setting('mcs.tz', true), ''), 'Asia/Shanghai');
    p record;
    lo timestamptz;
    hi timestamptz;
    d date;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table
                   WHERE partrelid = 'sensor_data'::regclass) THEN
        RETURN; -- a TimescaleDB hypertable: its chunks, migration 075
    END IF;
    PERFORM set_config('TimeZone', 'UTC', true);
    CREATE TEMP TABLE mcs_old_parts (name text) ON COMMIT DROP;
    FOR p IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'sensor_data'::regclass LOOP
        EXECUTE format('ALTER TABLE sensor_data DETACH PARTITION %I', p.relname);
        EXECUTE format('ALTER TABLE %I RENAME TO %I', p.relname, 'utc_' || p.relname);
        INSERT INTO mcs_old_parts VALUES ('utc_' || p.relname);
    END LOOP;
    FOR p IN SELECT name FROM mcs_old_parts LOOP
        EXECUTE format('SELECT min(time), max(time) FROM %I', p.name) INTO lo, hi;
        IF lo IS NOT NULL THEN
            FOR d IN SELECT g::date FROM generate_series((lo AT TIME ZONE tz)::date,
                                                         (hi AT TIME ZONE tz)::date,
                                                         interval '1 day') g LOOP
                PERFORM mcs_create_day_partition(d, tz);
            END LOOP;
            EXECUTE format('INSERT INTO sensor_data SELECT * FROM %I', p.name);
        END IF;
        EXECUTE format('DROP TABLE %I', p.name);
    END LOOP;
END $$;
