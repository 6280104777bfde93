-- 009_reserve_broadcast.sql (issue #6): the serial number `broadcast` is
-- reserved. Its command topic {prefix}/broadcast/cmd is the fleet-wide
-- broadcast (R-MQ-1), so a device of that name would receive every
-- broadcast as its own commands and its own commands would reach the whole
-- fleet. mcs_sn_valid() (src/common/devcred.c), the broker plugin and
-- `mcs device add` refuse it; this makes the database refuse it too.
-- A row named `broadcast` from before cannot have worked; it is renamed out
-- of the way (kept, with its readings' sn unchanged) rather than dropped.
UPDATE devices SET sn = 'broadcast-renamed-009', enabled = false
 WHERE sn = 'broadcast';
ALTER TABLE devices DROP CONSTRAINT IF EXISTS devices_sn_check;
ALTER TABLE devices ADD CONSTRAINT devices_sn_check
  CHECK (sn ~ '^[A-Za-z0-9_-]{1,32}$' AND sn <> 'broadcast');
