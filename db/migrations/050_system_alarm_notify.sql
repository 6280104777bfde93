-- 050: system alarms reach people (issue #15). Archive, backup and health
-- failures, the monitoring thresholds of the health job, NOTIFY_FAILED and
-- UNKNOWN_DEVICE were written to alarm_logs and shown on screens, never
-- sent. Now every new system alarm writes its outbox rows in the same
-- transaction that records it, whoever records it (mcsd, `mcs job run`, the
-- broker plugin), so it has the gas alarms' outbox guarantees.
--
--   alarm.general.system.notify.TYPE  false switches a type off (absent: on)
--   NOTIFY_FAILED of channel:X        goes to every enabled channel but X
--   UNKNOWN_DEVICE of a device        not sent one by one: mcsd's
--                                     housekeeping collects them into one
--                                     digest row (sn 'SYSTEM', src/mcsd/sysalarm.c)
--                                     and marks them reported_in = that row
--   clear                             a system alarm that was sent sends a
--                                     'clear' message on the same channels
-- System alarms are sent whatever the schedule (a failing archive or a full
-- disk does not wait for office hours). Their outbox rows carry level 2, the
-- notifier's priority: sent first and each on its own, never folded into a
-- digest of level-1 gas alarms (alarm_logs.level stays 1).

ALTER TABLE alarm_logs ADD COLUMN reported_in bigint;
CREATE INDEX alarm_logs_unknown_unreported ON alarm_logs (id)
    WHERE alarm_type = 'UNKNOWN_DEVICE' AND reported_in IS NULL;

-- Episodes the plugin recorded before this migration are history, not news.
UPDATE alarm_logs SET reported_in = 0
 WHERE alarm_type = 'UNKNOWN_DEVICE' AND reported_in IS NULL;

CREATE FUNCTION mcs_sysalarm_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sw text;
BEGIN
    IF NEW.category <> 'system' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.alarm_type = 'UNKNOWN_DEVICE' AND NEW.sn <> 'SYSTEM' THEN
            RETURN NULL; -- reported in the next digest
        END IF;
        SELECT value->'system'->'notify'->>NEW.alarm_type INTO sw
          FROM system_config WHERE key = 'alarm.general';
        IF sw = 'false' THEN
            RETURN NULL;
        END IF;
        INSERT INTO alarm_outbox (alarm_id, channel, event, level)
        SELECT NEW.id, substr(c.key, 15), 'raise', 2
          FROM system_config c
         WHERE c.key LIKE 'alarm.channel.%' AND c.value->>'enabled' = 'true'
           AND NOT (NEW.alarm_type = 'NOTIFY_FAILED'
                    AND NEW.sn = 'channel:' || substr(c.key, 15));
    ELSIF NEW.cleared_at IS NOT NULL AND OLD.cleared_at IS NULL THEN
        -- Over: told on the channels that carried the raise.
        INSERT INTO alarm_outbox (alarm_id, channel, event, level)
        SELECT NEW.id, o.channel, 'clear', 2
          FROM (SELECT DISTINCT channel FROM alarm_outbox
                 WHERE alarm_id = NEW.id AND event = 'raise') o
          JOIN system_config c ON c.key = 'alarm.channel.' || o.channel
         WHERE c.value->>'enabled' = 'true';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER alarm_logs_sysalarm_outbox AFTER INSERT OR UPDATE OF cleared_at ON alarm_logs
    FOR EACH ROW WHEN (NEW.category = 'system')
    EXECUTE FUNCTION mcs_sysalarm_outbox();
