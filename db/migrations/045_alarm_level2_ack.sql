-- 045_alarm_level2_ack.sql - a rise to level 2 sounds again (issue #15,
-- GB 16808-2008 §4.2.2 / GB/T 50493-2019 §5: a higher alarm level is a new
-- alarm condition that must be signalled even when the lower one was
-- acknowledged). mcsd clears ack_at/ack_by/ack_note of the open alarm when
-- it rises to level 2 (state back to active_unack: screens sound, reminders
-- and escalation resume) and keeps the level-1 acknowledgement here, so the
-- record still says who acknowledged level 1 and when (docs/ALARMS.md).
ALTER TABLE alarm_logs
    ADD COLUMN ack1_at   timestamptz,
    ADD COLUMN ack1_by   varchar(32),
    ADD COLUMN ack1_note text;
