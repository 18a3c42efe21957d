-- Every change to a user row (roles, password, `sessions_valid_after`, or the row's
-- deletion), by this service or by an operator's SQL, is announced on the channel
-- `users_changed` with the user's id, at commit. Each auth-service instance keeps the
-- users its refreshes read in memory and drops an entry when its id is announced, so a
-- change reaches every instance's refreshes without a read per refresh
-- (auth-service/src/user_cache.rs).
CREATE FUNCTION notify_user_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('users_changed', OLD.id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_changed
    AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION notify_user_changed();
-- Also in sessions with `session_replication_role = replica` (logical replication,
-- restores). The instances check the state of both triggers, and their row versions,
-- with every heartbeat, and keep nothing in memory while either is otherwise.
ALTER TABLE users ENABLE ALWAYS TRIGGER users_changed;

-- `TRUNCATE` fires no row trigger: it announces `all`, which empties every cache.
CREATE FUNCTION notify_users_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('users_changed', 'all');
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_truncated
    AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_users_truncated();
ALTER TABLE users ENABLE ALWAYS TRIGGER users_truncated;
