-- 010_alarms.sql - the alarm engine's schema (issue #7, R-AL-1..6,
-- docs/ALARMS.md): two-level limits per device, the alarm lifecycle with the
-- four states, one open alarm per (sn, alarm_type) across every mcsd
-- instance, debounce state, the durable notification outbox and its
-- attempts log, acknowledgement and the events for screens.

-- Level-2 limits (GB/T 50493-2019: combustible ≤ 25 % / ≤ 50 % LEL, toxic
-- ≤ 100 % / ≤ 200 % OEL; oxygen has a low and a high) and the clearing band.
-- high_limit / low_limit (001) are the level-1 limits. hysteresis is in the
-- device's unit; NULL takes alarm.general.hysteresis_pct of the limit.
ALTER TABLE devices
    ADD COLUMN high_limit2 double precision,
    ADD COLUMN low_limit2  double precision,
    ADD COLUMN hysteresis  double precision CHECK (hysteresis IS NULL OR hysteresis >= 0);

-- Limit changes must reach every mcsd (R-PR-2): the same trigger as 001 over
-- the new columns too. NOTE for later migrations: keep this column list whole.
CREATE OR REPLACE TRIGGER devices_notify_upd
    AFTER UPDATE OF sn, calib_k, calib_b, calib_t_ref, calib_t_comp, unit,
                    range_max, high_limit, low_limit, enabled,
                    high_limit2, low_limit2, hysteresis
    ON devices FOR EACH ROW EXECUTE FUNCTION mcs_device_notify();

-- alarm_logs: one row per alarm episode of (sn, alarm_type), kept forever.
--   level     1 or 2 (2 more severe; only rises while the alarm is open)
--   category  gas (HIGH, LOW, OVER_RANGE: latch), fault (OFFLINE, DEVICE,
--             LOW_BAT), system (UNKNOWN_DEVICE, NOTIFY_FAILED)
--   state     derived by trigger from cleared_at / ack_at:
--             active_unack, active_ack, cleared_unack, cleared_ack
--   channels  per-channel outcome summary, e.g. 'email:sent,dingtalk:failed'
ALTER TABLE alarm_logs
    ADD COLUMN level       smallint NOT NULL DEFAULT 1 CHECK (level IN (1, 2)),
    ADD COLUMN category    varchar(8) NOT NULL DEFAULT 'gas'
                           CHECK (category IN ('gas', 'fault', 'system')),
    ADD COLUMN ack_note    text,
    ADD COLUMN last_at     timestamptz,
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN escalated_at timestamptz,
    ADD COLUMN instance    varchar(64);
ALTER TABLE alarm_logs ALTER COLUMN state SET DEFAULT 'active_unack';
UPDATE alarm_logs SET state = CASE
    WHEN cleared_at IS NULL AND ack_at IS NULL THEN 'active_unack'
    WHEN cleared_at IS NULL THEN 'active_ack'
    WHEN ack_at IS NULL THEN 'cleared_unack'
    ELSE 'cleared_ack' END;
ALTER TABLE alarm_logs ADD CONSTRAINT alarm_logs_state_chk
    CHECK (state IN ('active_unack', 'active_ack', 'cleared_unack', 'cleared_ack'));

-- One open alarm per device and type, whichever instance raises it: a second
-- INSERT waits for the first transaction and then conflicts. UNKNOWN_DEVICE
-- is outside it: the broker plugin records it as rate-limited episodes (one
-- row per window, docs/PLUGIN.md) that nobody clears. Every ON CONFLICT on
-- this index repeats its predicate.
CREATE UNIQUE INDEX alarm_logs_open ON alarm_logs (sn, alarm_type)
    WHERE cleared_at IS NULL AND alarm_type <> 'UNKNOWN_DEVICE';
-- Screens: everything not yet acknowledged (latched gas alarms included).
CREATE INDEX alarm_logs_unack ON alarm_logs (triggered_at DESC) WHERE ack_at IS NULL;

CREATE FUNCTION mcs_alarm_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- The category follows the type, whoever inserts (the plugin too).
        NEW.category := CASE
            WHEN NEW.alarm_type IN ('HIGH', 'LOW', 'OVER_RANGE') THEN 'gas'
            WHEN NEW.alarm_type IN ('OFFLINE', 'DEVICE', 'LOW_BAT') THEN 'fault'
            ELSE 'system' END;
    END IF;
    NEW.state := CASE
        WHEN NEW.cleared_at IS NULL AND NEW.ack_at IS NULL THEN 'active_unack'
        WHEN NEW.cleared_at IS NULL THEN 'active_ack'
        WHEN NEW.ack_at IS NULL THEN 'cleared_unack'
        ELSE 'cleared_ack' END;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER alarm_logs_state BEFORE INSERT OR UPDATE ON alarm_logs
    FOR EACH ROW EXECUTE FUNCTION mcs_alarm_state();

-- Events for screens: NOTIFY mcs_alarm with the JSON of docs/ALARMS.md on
-- every raise, level/state change, clear and acknowledgement (not on each
-- repeat: count/last_value changes alone stay quiet). mcsd relays these to
-- Redis PUBLISH mcs:alarm (one instance, under an advisory lock).
CREATE FUNCTION mcs_alarm_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ev text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        ev := 'raised';
    ELSIF NEW.ack_at IS NOT NULL AND OLD.ack_at IS NULL THEN
        ev := 'acked';
    ELSIF NEW.cleared_at IS NOT NULL AND OLD.cleared_at IS NULL THEN
        ev := 'cleared';
    ELSIF NEW.level <> OLD.level OR NEW.peak_value IS DISTINCT FROM OLD.peak_value THEN
        ev := 'updated';
    ELSE
        RETURN NEW;
    END IF;
    PERFORM pg_notify('mcs_alarm', json_build_object(
        'event', ev, 'id', NEW.id, 'sn', NEW.sn, 'alarm_type', NEW.alarm_type,
        'category', NEW.category, 'level', NEW.level, 'value', NEW.last_value,
        'peak', NEW.peak_value, 'threshold', NEW.threshold, 'state', NEW.state,
        'count', NEW.count, 'ack_by', NEW.ack_by,
        'ts', extract(epoch FROM now()))::text);
    RETURN NEW;
END $$;
CREATE TRIGGER alarm_logs_event AFTER INSERT OR UPDATE ON alarm_logs
    FOR EACH ROW EXECUTE FUNCTION mcs_alarm_event();

-- Acknowledgement, the one statement mcs-api and the CLI use. Returns the
-- row (NULL fields when id does not exist); acknowledging twice keeps the
-- first ack. Reminders and escalation stop because they require ack_at IS
-- NULL; outbox rows not sent yet for reminders/escalation are dropped.
CREATE FUNCTION mcs_alarm_ack(p_id bigint, p_user text, p_note text)
RETURNS SETOF alarm_logs LANGUAGE plpgsql AS $$
BEGIN
    UPDATE alarm_logs SET ack_at = now(), ack_by = left(p_user, 32), ack_note = p_note
     WHERE id = p_id AND ack_at IS NULL;
    UPDATE alarm_outbox SET status = 'dropped', last_error = 'acknowledged'
     WHERE alarm_id = p_id AND status IN ('pending', 'held')
       AND event IN ('reminder', 'escalate');
    RETURN QUERY SELECT * FROM alarm_logs WHERE id = p_id;
END $$;

-- Debounce (R-AL-2): when (sn, type) last notified. Shared by every
-- instance; updated in the transaction that writes the outbox rows.
CREATE TABLE alarm_notify_state (
    sn               varchar(32) COLLATE "C" NOT NULL,
    alarm_type       varchar(16) NOT NULL,
    last_notified_at timestamptz NOT NULL,
    suppressed       integer NOT NULL DEFAULT 0,  -- repeats not notified since
    PRIMARY KEY (sn, alarm_type)
);

-- The durable outbox (R-AL-6): one row per alarm event × channel, written in
-- the transaction that records the event, claimed by the notifier with FOR
-- UPDATE SKIP LOCKED (held while sending: two instances never both send).
--   event   raise | level2 | reminder | escalate | clear | test | failure
--   status  pending | sent | failed (gave up) | held (outside schedule) |
--           dropped (acknowledged / channel off) | unknown (SMS timeout,
--           not resent) | digested (sent inside digest_id's message)
CREATE TABLE alarm_outbox (
    id          bigserial PRIMARY KEY,
    alarm_id    bigint REFERENCES alarm_logs (id),
    channel     varchar(16) NOT NULL,
    event       varchar(16) NOT NULL,
    level       smallint NOT NULL DEFAULT 1,
    status      varchar(16) NOT NULL DEFAULT 'pending',
    attempts    integer NOT NULL DEFAULT 0,
    due_at      timestamptz NOT NULL DEFAULT now(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    digest_id   bigint,
    provider_id text,           -- e.g. Aliyun BizId
    recipients  text,           -- escalation: who, when not the channel default
    last_error  text
);
CREATE INDEX alarm_outbox_due ON alarm_outbox (channel, due_at)
    WHERE status = 'pending';
CREATE INDEX alarm_outbox_alarm ON alarm_outbox (alarm_id);

-- Every delivery attempt and its outcome.
CREATE TABLE alarm_attempts (
    id          bigserial PRIMARY KEY,
    outbox_id   bigint NOT NULL REFERENCES alarm_outbox (id),
    at          timestamptz NOT NULL DEFAULT now(),
    instance    varchar(64),
    ok          boolean NOT NULL,
    http_status integer,
    duration_ms integer,
    detail      text
);
CREATE INDEX alarm_attempts_outbox ON alarm_attempts (outbox_id);

-- Aliyun's daily cap per signature + template + number (50 by default).
CREATE TABLE alarm_sms_daily (
    day      date NOT NULL,
    phone    varchar(32) NOT NULL,
    sent     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (day, phone)
);

-- Defaults of the general settings (docs/ALARMS.md). Channels are absent
-- (off) until configured.
INSERT INTO system_config (key, value) VALUES
 ('alarm.general', '{"debounce_min": 10, "hysteresis_pct": 2, "offline_s": 90,
   "reminders": true, "level2_ignores_schedule": true,
   "schedule": {"enabled": false, "days": [1,2,3,4,5,6,7], "start": "00:00",
                "end": "24:00", "tz": "Asia/Shanghai"},
   "escalation": {"enabled": false, "after_min": 30},
   "retry": {"max_attempts": 6, "backoff_s": 2, "backoff_max_s": 300},
   "digest": {"threshold": 3}}')
ON CONFLICT (key) DO NOTHING;
