-- 020_api.sql - what mcs-api stores besides the base schema (issue #8).
-- Uploaded files of the web app (the dashboard floor plan), in the database
-- so that every mcs-api instance behind nginx serves the same image.
CREATE TABLE api_files (
    name         varchar(64) PRIMARY KEY,
    content_type varchar(64) NOT NULL,
    data         bytea NOT NULL,
    width        integer,
    height       integer,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   varchar(64)
);

-- GET /api/system/logs filters by user and action, newest first.
CREATE INDEX audit_logs_user_ts ON audit_logs (username, ts DESC);
