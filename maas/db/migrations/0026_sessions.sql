-- Revocable sessions (maas/sessions.py): every bearer token names one by its id (the JWT's jti), and a
-- request whose session is unknown, expired or revoked is refused. A session remembers the role its
-- user had when it was issued: a change of role ends it (the trigger below, whatever code changes the
-- role), and deleting the user deletes it.
CREATE TABLE sessions (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('rider', 'driver', 'operator', 'agency', 'admin')),
    issued_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    issued_by text NOT NULL CHECK (issued_by IN ('sign_in', 'admin', 'cli', 'demo')),
    issuer_id uuid REFERENCES users (id) ON DELETE SET NULL,  -- the admin, when an admin issued it
    revoked_at timestamptz,
    revoked_reason text CHECK (revoked_reason IN ('logout', 'revoked', 'role_changed', 'password_set')),
    CHECK (expires_at > issued_at),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
CREATE INDEX sessions_user ON sessions (user_id, issued_at);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE FUNCTION maas_end_sessions_of_new_role() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sessions SET revoked_at = now(), revoked_reason = 'role_changed'
     WHERE user_id = NEW.id AND revoked_at IS NULL;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_role_ends_sessions AFTER UPDATE OF role ON users
    FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role) EXECUTE FUNCTION maas_end_sessions_of_new_role();

-- Staff sign in with a login and a password (argon2id hashes, maas/passwords.py); riders and drivers
-- have none and use tokens the service issues.
CREATE TABLE credentials (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    login text NOT NULL UNIQUE CHECK (login ~ '^[a-z0-9][a-z0-9._@-]{0,99}$'),
    password_hash text NOT NULL CHECK (length(password_hash) BETWEEN 1 AND 1000),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Sign-in attempts of the last window, per login and per client address: an attempt is a row from
-- before its password is checked until it succeeds (then its login's rows go), so that concurrent
-- attempts in several worker processes count each other.
CREATE TABLE sign_in_attempts (
    id bigserial PRIMARY KEY,
    login text NOT NULL CHECK (length(login) BETWEEN 1 AND 100),
    address text NOT NULL CHECK (length(address) BETWEEN 1 AND 100),
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_attempts_login ON sign_in_attempts (login, at);
CREATE INDEX sign_in_attempts_address ON sign_in_attempts (address, at);
CREATE INDEX sign_in_attempts_at ON sign_in_attempts (at);

-- One-time WebSocket tickets: short-lived, for one connection, so that no long-lived token goes into
-- a URL. Only a hash is stored; taking a ticket deletes its row.
CREATE TABLE socket_tickets (
    hash bytea PRIMARY KEY CHECK (length(hash) = 32),
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);
CREATE INDEX socket_tickets_expires ON socket_tickets (expires_at);
