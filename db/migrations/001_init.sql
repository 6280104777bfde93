-- 001_init.sql - the base schema of MCS-IoT (R-ST-1, R-ST-2, manual §5.1).
-- Applied once by mcsd at start, inside one transaction, under an advisory
-- lock (see src/mcsd/migrate.c). Later changes go into new numbered files.

CREATE TABLE devices (
    sn            varchar(32) COLLATE "C" PRIMARY KEY CHECK (sn ~ '^[A-Za-z0-9_-]{1,32}$'),
    name          varchar(64)  NOT NULL DEFAULT '',
    location      varchar(128) NOT NULL DEFAULT '',
    pos_x         double precision CHECK (pos_x BETWEEN 0 AND 100),
    pos_y         double precision CHECK (pos_y BETWEEN 0 AND 100),
    calib_k       double precision NOT NULL DEFAULT 1,
    calib_b       double precision NOT NULL DEFAULT 0,
    calib_t_ref   double precision NOT NULL DEFAULT 25,
    calib_t_comp  double precision NOT NULL DEFAULT 0,
    unit          varchar(16)  NOT NULL DEFAULT 'ppm',
    range_max     double precision NOT NULL DEFAULT 50000 CHECK (range_max > 0),
    high_limit    double precision,
    low_limit     double precision,
    enabled       boolean      NOT NULL DEFAULT true,
    status        varchar(16)  NOT NULL DEFAULT 'offline',
    last_seen     timestamptz,
    fw_ver        varchar(32),
    last_err      integer,
    bat           integer,
    rssi          integer,
    pkt_recv      bigint       NOT NULL DEFAULT 0,
    pkt_lost      bigint       NOT NULL DEFAULT 0,
    created_at    timestamptz  NOT NULL DEFAULT now(),
    updated_at    timestamptz  NOT NULL DEFAULT now()
);

-- Any change of what ingest needs (calibration, limits, enabled) is pushed to
-- every mcsd instance by NOTIFY, whoever made it (CLI, API or psql): R-PR-2.
-- Statistics columns written by mcsd itself are not in the column list, so
-- they do not echo back.
CREATE FUNCTION mcs_device_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('mcs_device', OLD.sn);
        RETURN OLD;
    END IF;
    -- A renamed device: the old SN must stop being accepted too.
    IF TG_OP = 'UPDATE' AND OLD.sn <> NEW.sn THEN
        PERFORM pg_notify('mcs_device', OLD.sn);
    END IF;
    PERFORM pg_notify('mcs_device', NEW.sn);
    RETURN NEW;
END $$;

CREATE TRIGGER devices_notify_ins AFTER INSERT OR DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION mcs_device_notify();
CREATE TRIGGER devices_notify_upd
    AFTER UPDATE OF sn, calib_k, calib_b, calib_t_ref, calib_t_comp, unit,
                    range_max, high_limit, low_limit, enabled
    ON devices FOR EACH ROW EXECUTE FUNCTION mcs_device_notify();

-- Readings. A TimescaleDB hypertable with 1-day chunks where the extension
-- is installed and preloaded (CREATE EXTENSION fails on a server that does
-- not preload it: that server gets native partitions, and mcsd logs why),
-- native declarative partitions otherwise (the daily partitions or chunks
-- themselves are created ahead of time by mcsd, src/mcsd/dialect.c, on the
-- plant's local days since migrations 030 and 075; compression: 075). The
-- unique index (sn, time DESC, seq) both serves per-device time queries and
-- enforces exactly-once storage by (sn, time, seq) (R-PR-5).
DO $$
DECLARE
    timescale boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
        OR (EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
            AND current_setting('shared_preload_libraries') ~ '(^|[\s,"])timescaledb($|[\s,"])');
BEGIN
    IF timescale THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    END IF;
    EXECUTE 'CREATE TABLE sensor_data ('
            ' time  timestamptz NOT NULL,'
            ' sn    varchar(32) COLLATE "C" NOT NULL,'
            ' v_raw double precision,'
            ' ppm   double precision,'
            ' temp  double precision,'
            ' humi  double precision,'
            ' bat   integer,'
            ' rssi  integer,'
            ' seq   integer NOT NULL,'
            ' err   smallint NOT NULL DEFAULT 0,'
            ' flags smallint NOT NULL DEFAULT 0)'
            || CASE WHEN timescale THEN '' ELSE ' PARTITION BY RANGE (time)' END;
    IF timescale THEN
        PERFORM create_hypertable('sensor_data', 'time',
                                  chunk_time_interval => INTERVAL '1 day');
    END IF;
END $$;
CREATE UNIQUE INDEX sensor_data_sn_time_seq ON sensor_data (sn, time DESC, seq);
COMMENT ON COLUMN sensor_data.flags IS 'bit 0: over range (ppm clamped to range_max)';

CREATE TABLE alarm_logs (
    id            bigserial PRIMARY KEY,
    sn            varchar(32) NOT NULL,
    alarm_type    varchar(16) NOT NULL,
    value         double precision,
    threshold     double precision,
    triggered_at  timestamptz NOT NULL DEFAULT now(),
    cleared_at    timestamptz,
    state         varchar(16) NOT NULL DEFAULT 'active',
    count         integer NOT NULL DEFAULT 1,
    peak_value    double precision,
    last_value    double precision,
    message       text NOT NULL DEFAULT '',
    notified      boolean NOT NULL DEFAULT false,
    channels      text NOT NULL DEFAULT '',
    ack_at        timestamptz,
    ack_by        varchar(32)
);
CREATE INDEX alarm_logs_triggered ON alarm_logs (triggered_at DESC);
CREATE INDEX alarm_logs_sn_type ON alarm_logs (sn, alarm_type, triggered_at DESC);

CREATE TABLE system_config (
    key        varchar(64) PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE archive_logs (
    id          bigserial PRIMARY KEY,
    day         date NOT NULL UNIQUE,
    file_name   text NOT NULL,
    size_bytes  bigint,
    row_count   bigint,
    md5         char(32),
    status      varchar(16) NOT NULL,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_logs (
    id         bigserial PRIMARY KEY,
    ts         timestamptz NOT NULL DEFAULT now(),
    username   varchar(64) NOT NULL,
    action     varchar(64) NOT NULL,
    target     text NOT NULL DEFAULT '',
    before     jsonb,
    after      jsonb,
    ip         varchar(64)
);
CREATE INDEX audit_logs_ts ON audit_logs (ts DESC);

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    username      varchar(64) NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role          varchar(16) NOT NULL CHECK (role IN ('admin', 'viewer')),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Where each mcsd instance's journal has been stored up to; written in the
-- same transaction as the rows, so a restart neither loses nor repeats them.
CREATE TABLE ingest_checkpoint (
    instance   varchar(64) PRIMARY KEY,
    segment    bigint NOT NULL,
    "offset"   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
