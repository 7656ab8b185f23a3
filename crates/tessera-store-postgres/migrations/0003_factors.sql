-- Second factors (TOTP, HOTP, email, SMS, recovery codes), their sent and recovery codes, and
-- pending two-step sign-ins. Every row goes with its account (ON DELETE CASCADE). Labels use
-- the "C" collation so that their uniqueness is by bytes, as in SQLite.

ALTER TABLE accounts ADD COLUMN mfa_required BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE factors (
    id           TEXT   NOT NULL,
    account_id   TEXT   NOT NULL,
    kind         TEXT   NOT NULL CHECK (kind IN ('totp', 'hotp', 'email', 'sms', 'recovery')),
    label        TEXT   COLLATE "C" NOT NULL,
    status       TEXT   NOT NULL CHECK (status IN ('pending', 'active')),
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    failures     BIGINT NOT NULL DEFAULT 0 CHECK (failures >= 0),
    locked_at    BIGINT,
    last_sent_at BIGINT,
    secret       BYTEA,   -- sealed seed (totp, hotp), AES-256-GCM under the master key ring
    algorithm    TEXT,    -- totp, hotp: SHA1 | SHA256 | SHA512
    digits       BIGINT,  -- totp, hotp: 6..8
    period       BIGINT,  -- totp
    last_step    BIGINT,  -- totp: last accepted time step (RFC 6238 §5.2)
    next_counter BIGINT,  -- hotp: first counter not yet used (only moves forward)
    address      TEXT,    -- email address or E.164 phone number
    CONSTRAINT factors_pkey PRIMARY KEY (id),
    CONSTRAINT factors_account_label_key UNIQUE (account_id, label),
    CONSTRAINT factors_account_id_fkey FOREIGN KEY (account_id)
        REFERENCES accounts (id) ON DELETE CASCADE
);

CREATE INDEX factors_account ON factors (account_id, created_at);

-- Recovery codes as keyed hashes (HMAC-SHA256 under the server pepper), single use.
CREATE TABLE recovery_codes (
    factor_id  TEXT   NOT NULL,
    hash       BYTEA  NOT NULL CHECK (octet_length(hash) = 32),
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    CONSTRAINT recovery_codes_pkey PRIMARY KEY (factor_id, hash),
    CONSTRAINT recovery_codes_factor_id_fkey FOREIGN KEY (factor_id)
        REFERENCES factors (id) ON DELETE CASCADE
);

-- Codes sent by email or SMS, as keyed hashes bound to their id.
CREATE TABLE sent_codes (
    id         TEXT   NOT NULL,
    factor_id  TEXT   NOT NULL,
    hash       BYTEA  NOT NULL CHECK (octet_length(hash) = 32),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    tries      BIGINT NOT NULL DEFAULT 0 CHECK (tries >= 0),
    used_at    BIGINT,
    CONSTRAINT sent_codes_pkey PRIMARY KEY (id),
    CONSTRAINT sent_codes_factor_id_fkey FOREIGN KEY (factor_id)
        REFERENCES factors (id) ON DELETE CASCADE
);

CREATE INDEX sent_codes_factor_created ON sent_codes (factor_id, created_at);

-- Sign-ins whose password step passed and whose second step has not: never sessions.
CREATE TABLE pending_logins (
    token_hash BYTEA   NOT NULL CHECK (octet_length(token_hash) = 32),
    account_id TEXT    NOT NULL,
    amr        TEXT    NOT NULL DEFAULT '[]',  -- JSON array
    auth_time  BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    ip         TEXT,
    user_agent TEXT,
    tries      BIGINT  NOT NULL DEFAULT 0 CHECK (tries >= 0),
    enrol_only BOOLEAN NOT NULL DEFAULT FALSE,
    CONSTRAINT pending_logins_pkey PRIMARY KEY (token_hash),
    CONSTRAINT pending_logins_account_id_fkey FOREIGN KEY (account_id)
        REFERENCES accounts (id) ON DELETE CASCADE
);

CREATE INDEX pending_logins_account ON pending_logins (account_id);
CREATE INDEX pending_logins_expires_at ON pending_logins (expires_at);
