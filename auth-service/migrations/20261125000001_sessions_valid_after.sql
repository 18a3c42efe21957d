-- When the sessions of a user stop being refreshable. Every role or password change moves
-- it (always to a new, later value); a refresh session records the value it was opened
-- under and is refused once the two differ. This is one column in the same row and the
-- same transaction as the change itself, so no failure of Redis can leave an old session
-- able to mint tokens with the new roles.
ALTER TABLE users ADD COLUMN sessions_valid_after TIMESTAMPTZ;
-- Sessions opened before this column existed record no value; they are treated as opened
-- under `created_at`, and so stay valid until the user's first change.
UPDATE users SET sessions_valid_after = created_at;
ALTER TABLE users
    ALTER COLUMN sessions_valid_after SET NOT NULL,
    ALTER COLUMN sessions_valid_after SET DEFAULT now();
