-- Users of the auth-service. Sessions live in Redis, not here.
CREATE TABLE users (
    id            UUID PRIMARY KEY,
    -- As the user typed it; shown back in tokens (`preferred_username`).
    username      TEXT NOT NULL,
    -- Argon2id PHC string; never a reversible form of the password.
    password_hash TEXT NOT NULL,
    roles         TEXT[] NOT NULL DEFAULT ARRAY['user']::TEXT[],
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Usernames compare case-insensitively (DESIGN.md): "Alice" and "alice" are one user.
-- Usernames are ASCII, so lower() is exact and needs no collation.
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
