-- 075_timescaledb.sql - the TimescaleDB dialect on the plant's local days
-- (issue #18). Functions mcsd calls for a hypertable sensor_data
-- (src/mcsd/dialect.c); on native partitions they exist and are not used.
-- Their bodies name TimescaleDB objects only at run time, so the migration
-- applies on a server without the extension too.

-- Makes the chunk of local day d (zone tz) unless a chunk already overlaps
-- it. TimescaleDB cuts chunks on UTC days and has no origin setting, so the
-- day's chunk is made with explicit bounds, named like a native partition.
CREATE FUNCTION mcs_ts_ensure_day(d date, tz text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := d::timestamp AT TIME ZONE tz;
    hi timestamptz := (d + 1)::timestamp AT TIME ZONE tz;
BEGIN
    IF EXISTS (SELECT 1 FROM timescaledb_information.chunks
               WHERE hypertable_schema = current_schema() AND hypertable_name = 'sensor_data'
                 AND range_start < hi AND range_end > lo) THEN
        RETURN;
    END IF;
    PERFORM _timescaledb_functions.create_chunk(
        'sensor_data'::regclass,
        jsonb_build_object('time', jsonb_build_array(
            (extract(epoch FROM lo) * 1000000)::bigint,
            (extract(epoch FROM hi) * 1000000)::bigint)),
        '_timescaledb_internal', 'sensor_data_' || to_char(d, 'YYYYMMDD'));
END $$;

-- Locks every chunk that overlaps [lo, hi) against all access until the
-- transaction ends (the archive's count and drop, src/mcsd/archive.c); the
-- caller holds SHARE UPDATE EXCLUSIVE on sensor_data, which keeps a new
-- chunk from being made meanwhile. Returns how many chunks it locked.
CREATE FUNCTION mcs_ts_lock_day(lo timestamptz, hi timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    c record;
    n integer := 0;
BEGIN
    FOR c IN SELECT chunk_schema, chunk_name FROM timescaledb_information.chunks
             WHERE hypertable_schema = current_schema() AND hypertable_name = 'sensor_data'
               AND range_start < hi AND range_end > lo
             ORDER BY range_start LOOP
        EXECUTE format('LOCK TABLE %I.%I IN ACCESS EXCLUSIVE MODE', c.chunk_schema, c.chunk_name);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- Compression (the manual's production setting): segmented by device and
-- ordered like the unique index (sn, time DESC, seq), which TimescaleDB
-- requires of every column of a unique index on a compressed hypertable.
-- Chunks older than a day are compressed (R-ST-2); the archive drops them whole.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'sensor_data'::regclass)
       OR NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    EXECUTE 'ALTER TABLE sensor_data SET (timescaledb.compress,'
            ' timescaledb.compress_segmentby = ''sn'','
            ' timescaledb.compress_orderby = ''time DESC, seq'')';
    PERFORM add_compression_policy('sensor_data', INTERVAL '1 day', if_not_exists => true);
END $$;
