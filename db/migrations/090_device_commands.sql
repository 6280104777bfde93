-- 090_device_commands.sql - the life of each command sent to a device
-- (issue #20, R-MQ-4): sent -> delivered (the broker's PUBACK to mcs-api)
-- -> ok / error (the device's own answer on mcs/{sn}/status) or expired
-- (no answer by due_at). A broadcast is one row with sn NULL; each device
-- that answers it gets its own row with the same cmd_id.
CREATE TABLE device_commands (
    id           bigserial PRIMARY KEY,
    cmd_id       bigint NOT NULL,
    sn           text,
    cmd          text NOT NULL,
    payload      jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'sent'
                 CHECK (state IN ('sent', 'delivered', 'accepted', 'ok', 'error', 'expired', 'failed')),
    sent_by      text,
    sent_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    result_at    timestamptz,
    -- Seconds the device has to answer once it is online.
    deadline_s   integer NOT NULL DEFAULT 60 CHECK (deadline_s > 0),
    -- When an unanswered command expires; NULL while the device is offline
    -- (the broker holds the command until it returns).
    due_at       timestamptz,
    result       text,
    reason       text
);
CREATE UNIQUE INDEX device_commands_cmd_sn ON device_commands (cmd_id, COALESCE(sn, ''));
CREATE INDEX device_commands_sn_sent ON device_commands (sn, sent_at DESC, id DESC);
CREATE INDEX device_commands_open ON device_commands (due_at) WHERE state IN ('sent', 'delivered', 'accepted');
CREATE SEQUENCE device_command_ids;
