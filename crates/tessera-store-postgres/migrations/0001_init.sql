-- tessera schema, PostgreSQL dialect. Times are unix seconds (BIGINT); JSON columns hold arrays
-- of strings as text. Usernames use the "C" collation so that uniqueness and ordering are by
-- bytes, exactly as in SQLite and in Rust.

CREATE TABLE accounts (
    id            TEXT    NOT NULL,
    username      TEXT    COLLATE "C" NOT NULL,
    email         TEXT,
    groups        TEXT    NOT NULL DEFAULT '[]',  -- JSON array, sorted, no duplicates
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'user')),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash TEXT,
    failed_logins BIGINT  NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until  BIGINT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    CONSTRAINT accounts_pkey PRIMARY KEY (id),
    CONSTRAINT accounts_username_key UNIQUE (username)
);

CREATE TABLE sessions (
    id           TEXT   NOT NULL,  -- public handle
    token_hash   BYTEA  NOT NULL CHECK (octet_length(token_hash) = 32),
    account_id   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    csrf         TEXT   NOT NULL,
    amr          TEXT   NOT NULL DEFAULT '[]',  -- JSON array
    ip           TEXT,
    user_agent   TEXT,
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash),
    CONSTRAINT sessions_account_id_fkey FOREIGN KEY (account_id)
        REFERENCES accounts (id) ON DELETE CASCADE
);

-- sessions_of (newest first) and the cascade from accounts.
CREATE INDEX sessions_account_created ON sessions (account_id, created_at);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- No foreign key on account_id: the log must outlive the account it names.
CREATE TABLE audit (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    kind       TEXT   NOT NULL,
    account_id TEXT,
    username   TEXT,
    ip         TEXT,
    detail     TEXT
);

CREATE INDEX audit_at ON audit (at);

CREATE TABLE admin_tokens (
    hash       BYTEA  NOT NULL CHECK (octet_length(hash) = 32),
    label      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT admin_tokens_pkey PRIMARY KEY (hash)
);

-- Server-wide secrets shared by every node; written once, never changed.
CREATE TABLE server_secrets (
    name       TEXT   NOT NULL,
    value      BYTEA  NOT NULL,
    created_at BIGINT NOT NULL DEFAULT (extract(epoch FROM now())::bigint),
    CONSTRAINT server_secrets_pkey PRIMARY KEY (name)
);
