-- tessera schema, SQLite dialect. Times are unix seconds (INTEGER); JSON columns hold arrays of
-- strings. STRICT tables so that a wrongly typed value is an error, not a silent conversion.

CREATE TABLE accounts (
    id            TEXT    NOT NULL PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT,
    groups        TEXT    NOT NULL DEFAULT '[]',  -- JSON array, sorted, no duplicates
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'user')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    password_hash TEXT,
    failed_logins INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until  INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    id           TEXT    NOT NULL PRIMARY KEY,  -- public handle
    token_hash   BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    account_id   TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    csrf         TEXT    NOT NULL,
    amr          TEXT    NOT NULL DEFAULT '[]',  -- JSON array
    ip           TEXT,
    user_agent   TEXT
) STRICT;

-- sessions_of (newest first) and the cascade from accounts.
CREATE INDEX sessions_account_created ON sessions (account_id, created_at);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- No foreign key on account_id: the log must outlive the account it names.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    account_id TEXT,
    username   TEXT,
    ip         TEXT,
    detail     TEXT
) STRICT;

CREATE INDEX audit_at ON audit (at);

CREATE TABLE admin_tokens (
    hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    label      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Server-wide secrets shared by every process on this file; written once, never changed.
CREATE TABLE server_secrets (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (unixepoch())
) STRICT;
