-- Delivery with leases (issue #15, R-AL-6): a notifier claims an outbox row
-- in a transaction of its own (due_at moved past the request's time limit,
-- claimed_by = its connection's application_name), sends with no lock held,
-- and commits the outcome right after (claimed_by back to NULL). A row whose
-- lease ends without an outcome (a crash) is due again; the instance that
-- held it releases it at once when it starts again.
ALTER TABLE alarm_outbox ADD COLUMN claimed_by text, ADD COLUMN claimed_at timestamptz;
-- The claim looks at pending and unknown (SMS) rows: an index with exactly
-- that predicate, so a poll stays an index scan when years of sent rows
-- fill the table.
CREATE INDEX alarm_outbox_claim ON alarm_outbox (channel, due_at)
    WHERE status IN ('pending', 'unknown');

-- Delivery state per channel for the admin page (GET
-- /api/config/alarm/channels): last success, last failure with its reason,
-- requests sent / failed on the local day `day` (alarm.general.schedule.tz).
-- Written by the notifier in the transaction of each outcome.
CREATE TABLE alarm_channel_state (
    channel          varchar(16) PRIMARY KEY,
    last_ok_at       timestamptz,
    last_fail_at     timestamptz,
    last_fail_detail text,
    day              date NOT NULL,
    sent_day         integer NOT NULL DEFAULT 0,
    failed_day       integer NOT NULL DEFAULT 0
);
