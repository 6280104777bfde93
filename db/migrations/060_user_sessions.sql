-- 060_user_sessions.sql - sessions end with the user (issue #16, defect 3).
-- Every token carries its user's token_gen; mcs-api refuses a token whose
-- gen is not the user's current one. The trigger draws a new gen whenever
-- the password, role or disabled flag changes, whoever changes it (the API,
-- `mcs user passwd`, SQL by hand), so every session of that user ends. The
-- values come from one sequence: a user deleted and created again under the
-- same name never gets a gen an old token carries.
CREATE SEQUENCE user_token_gen_seq;
ALTER TABLE users ADD COLUMN token_gen bigint NOT NULL DEFAULT nextval('user_token_gen_seq');

CREATE FUNCTION users_new_token_gen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.token_gen := nextval('user_token_gen_seq');
    RETURN NEW;
END $$;

CREATE TRIGGER users_token_gen BEFORE UPDATE OF password_hash, role, disabled ON users
    FOR EACH ROW WHEN (OLD.password_hash IS DISTINCT FROM NEW.password_hash
                       OR OLD.role IS DISTINCT FROM NEW.role
                       OR OLD.disabled IS DISTINCT FROM NEW.disabled)
    EXECUTE FUNCTION users_new_token_gen();

-- Login throttle keys now include "ua:USER|ADDR" (a user from one address,
-- defect 14): 64 bytes of name and 63 of address do not fit in 80.
ALTER TABLE login_throttle ALTER COLUMN key TYPE varchar(160);
