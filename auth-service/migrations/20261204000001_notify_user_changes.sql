-- Every change to a user row (roles, password, `sessions_valid_after`, or the row's
-- deletion), by this service or by an operator's SQL, is announced on the channel
-- `users_changed` with the user's id, at commit. Each auth-service instance keeps the
-- users its refreshes read in memory and drops an entry when its id is announced, so a
-- change reaches every instance's refreshes without a read per refresh.
CREATE FUNCTION notify_user_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('users_changed', OLD.id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_changed
    AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION notify_user_changed();
