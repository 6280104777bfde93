-- 065_case_unique_names.sql - user names and device SNs are unique ignoring
-- case (issue #16, defect 11): "Admin" beside "admin", or "sim000001"
-- beside "SIM000001", reads as one identity on a screen, in an audit row or
-- on a device label while being two. mcs-api and `mcs user`/`mcs device`
-- rely on these indexes (a case-only twin conflicts like an exact duplicate:
-- 409, or "exists" from the CLI).
--
-- A database upgraded from before may already hold case twins. The oldest
-- of each group (created_at, then id / sn) keeps its name in the index; the
-- younger twins are left out of it by name, so the migration never fails
-- and no new twin of any of them can be added:
--   * devices: kept as they are. A device reports under its SN (topic,
--     broker account); renaming or disabling it would stop its readings
--     and alarms. The operator retires one twin (`mcs device del`).
--   * users: the younger twins are disabled (they can no longer log in or
--     open a dashboard; their rows and audit history stay). An admin
--     deletes them or, having checked who they belong to, enables them.
-- Each twin left out is written to audit_logs (user "migration", action
-- "migration.case_twin", target the name, after: the name it twins and
-- what was done), so it shows in the system log of the web app.
DO $$
DECLARE
    dev_twins text[];
    user_twins text[];
BEGIN
    WITH ranked AS (
        SELECT sn, lower(sn) AS k, first_value(sn) OVER w AS oldest,
               row_number() OVER w AS n
        FROM devices WINDOW w AS (PARTITION BY lower(sn) ORDER BY created_at, sn)
    ), twins AS (
        INSERT INTO audit_logs (username, action, target, after, ip)
        SELECT 'migration', 'migration.case_twin', sn,
               jsonb_build_object('kind', 'device', 'twin_of', oldest, 'done', 'kept'), 'local'
        FROM ranked WHERE n > 1
        RETURNING target
    )
    SELECT array_agg(target ORDER BY target) INTO dev_twins FROM twins;

    WITH ranked AS (
        SELECT id, username, first_value(username) OVER w AS oldest,
               row_number() OVER w AS n
        FROM users WINDOW w AS (PARTITION BY lower(username) ORDER BY created_at, id)
    ), off AS (
        UPDATE users u SET disabled = true FROM ranked r
        WHERE u.id = r.id AND r.n > 1
        RETURNING u.username, r.oldest
    ), twins AS (
        INSERT INTO audit_logs (username, action, target, after, ip)
        SELECT 'migration', 'migration.case_twin', username,
               jsonb_build_object('kind', 'user', 'twin_of', oldest, 'done', 'disabled'), 'local'
        FROM off
        RETURNING target
    )
    SELECT array_agg(target ORDER BY target) INTO user_twins FROM twins;

    IF dev_twins IS NULL THEN
        CREATE UNIQUE INDEX devices_sn_lower ON devices (lower(sn));
    ELSE
        RAISE WARNING 'devices differing only in case from an older one, kept: %', dev_twins;
        EXECUTE format('CREATE UNIQUE INDEX devices_sn_lower ON devices (lower(sn)) '
                       'WHERE sn::text <> ALL (%L::text[])', dev_twins);
    END IF;
    IF user_twins IS NULL THEN
        CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
    ELSE
        RAISE WARNING 'users differing only in case from an older one, disabled: %', user_twins;
        EXECUTE format('CREATE UNIQUE INDEX users_username_lower ON users (lower(username)) '
                       'WHERE username::text <> ALL (%L::text[])', user_twins);
    END IF;
END
$$;
