-- 021_login_throttle.sql - failed logins shared by every mcs-api instance
-- (issue #8): behind nginx, a throttle in one process's memory lets an
-- attacker spread guesses over the instances. One row per key, "ip:ADDR"
-- or "user:NAME"; locked_until set once the failures reach the limit.
CREATE TABLE login_throttle (
    key          varchar(80) PRIMARY KEY,
    fails        integer NOT NULL,
    last_at      timestamptz NOT NULL,
    locked_until timestamptz
);
