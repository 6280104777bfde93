-- 022_alarm_on_screen.sql - the alarms shown on screens (docs/ALARMS.md:
-- open, or a latched gas alarm not yet acknowledged), indexed by device.
-- alarm_logs is kept for ever (R-AL-3): without this index the device list
-- (one lookup per listed device) and the dashboard's 1 Hz realtime frame
-- scanned the whole history. Measured with 200,000 historical alarms: the
-- list page 507 ms -> 0.8 ms, the frame's query 56 ms -> 0.01 ms. Queries
-- must spell the predicate as here for the planner to use it.
CREATE INDEX alarm_logs_on_screen ON alarm_logs (sn, level DESC, triggered_at DESC)
    WHERE cleared_at IS NULL OR (category = 'gas' AND ack_at IS NULL);
