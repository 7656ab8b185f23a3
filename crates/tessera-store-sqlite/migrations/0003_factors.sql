-- Second factors (TOTP, HOTP, email, SMS, recovery codes), their sent and recovery codes, and
-- pending two-step sign-ins. Every row goes with its account (ON DELETE CASCADE).

ALTER TABLE accounts ADD COLUMN mfa_required INTEGER NOT NULL DEFAULT 0
    CHECK (mfa_required IN (0, 1));

CREATE TABLE factors (
    id           TEXT    NOT NULL PRIMARY KEY,
    account_id   TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL CHECK (kind IN ('totp', 'hotp', 'email', 'sms', 'recovery')),
    label        TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'active')),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    failures     INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    locked_at    INTEGER,
    last_sent_at INTEGER,
    secret       BLOB,     -- sealed seed (totp, hotp), AES-256-GCM under the master key ring
    algorithm    TEXT,     -- totp, hotp: SHA1 | SHA256 | SHA512
    digits       INTEGER,  -- totp, hotp: 6..8
    period       INTEGER,  -- totp
    last_step    INTEGER,  -- totp: last accepted time step (RFC 6238 §5.2)
    next_counter INTEGER,  -- hotp: first counter not yet used (only moves forward)
    address      TEXT,     -- email address or E.164 phone number
    UNIQUE (label, account_id)  -- label first: SQLite names it in a conflict
) STRICT;

CREATE INDEX factors_account ON factors (account_id, created_at);

-- Recovery codes as keyed hashes (HMAC-SHA256 under the server pepper), single use.
CREATE TABLE recovery_codes (
    factor_id  TEXT    NOT NULL REFERENCES factors (id) ON DELETE CASCADE,
    hash       BLOB    NOT NULL CHECK (length(hash) = 32),
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (factor_id, hash)
) STRICT;

-- Codes sent by email or SMS, as keyed hashes bound to their id.
CREATE TABLE sent_codes (
    id         TEXT    NOT NULL PRIMARY KEY,
    factor_id  TEXT    NOT NULL REFERENCES factors (id) ON DELETE CASCADE,
    hash       BLOB    NOT NULL CHECK (length(hash) = 32),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    tries      INTEGER NOT NULL DEFAULT 0 CHECK (tries >= 0),
    used_at    INTEGER
) STRICT;

CREATE INDEX sent_codes_factor_created ON sent_codes (factor_id, created_at);

-- Sign-ins whose password step passed and whose second step has not: never sessions.
CREATE TABLE pending_logins (
    token_hash BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    account_id TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    amr        TEXT    NOT NULL DEFAULT '[]',  -- JSON array
    auth_time  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ip         TEXT,
    user_agent TEXT,
    tries      INTEGER NOT NULL DEFAULT 0 CHECK (tries >= 0),
    enrol_only INTEGER NOT NULL DEFAULT 0 CHECK (enrol_only IN (0, 1))
) STRICT;

CREATE INDEX pending_logins_account ON pending_logins (account_id);
CREATE INDEX pending_logins_expires_at ON pending_logins (expires_at);
