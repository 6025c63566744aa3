-- Version 1 → 2: login, password reissue, profile, notices and records.
ALTER TABLE members ADD COLUMN disabled_at INTEGER;
CREATE TABLE login_failures (
    login_key       TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    locked_until    INTEGER
);
-- links gains purposes and a column: rebuilt (foreign keys are off during migrations).
CREATE TABLE links_v2 (
    id              INTEGER PRIMARY KEY,
    purpose         TEXT NOT NULL CHECK (purpose IN ('signup', 'reset', 'email_verify')),
    token_hash      BLOB NOT NULL UNIQUE,
    address         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER,
    member_id       INTEGER REFERENCES members(id),
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    secret_hash     TEXT
);
INSERT INTO links_v2 (id, purpose, token_hash, address, created_at, expires_at, used_at, member_id, failed_attempts)
    SELECT id, purpose, token_hash, address, created_at, expires_at, used_at, member_id, failed_attempts FROM links;
DROP TABLE links;
ALTER TABLE links_v2 RENAME TO links;
-- Sessions are short-lived: an upgrade simply ends them.
DROP TABLE sessions;
CREATE TABLE sessions (
    id_hash      BLOB PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('signup', 'reset', 'member')),
    link_id      INTEGER REFERENCES links(id),
    member_id    INTEGER REFERENCES members(id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX sessions_member ON sessions (member_id);
CREATE TABLE login_attempts (
    id           INTEGER PRIMARY KEY,
    member_id    INTEGER NOT NULL REFERENCES members(id),
    pending_hash BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    keys_sent_at INTEGER NOT NULL,
    failed_keys  INTEGER NOT NULL DEFAULT 0,
    ended_at     INTEGER
);
CREATE TABLE login_keys (
    attempt_id INTEGER NOT NULL REFERENCES login_attempts(id),
    outbox_id  INTEGER NOT NULL,
    key_hash   BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (attempt_id, outbox_id)
);
CREATE TABLE reset_requests (
    id           INTEGER PRIMARY KEY,
    requested_at INTEGER NOT NULL,
    address_key  TEXT NOT NULL,
    client_ip    TEXT,
    outcome      TEXT NOT NULL
);
CREATE INDEX reset_requests_address ON reset_requests (address_key, requested_at);
CREATE TABLE notices (
    id           INTEGER PRIMARY KEY,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    ends_on      TEXT
);
CREATE TABLE records (
    id          INTEGER PRIMARY KEY,
    member_id   INTEGER NOT NULL REFERENCES members(id),
    kind        TEXT NOT NULL CHECK (kind IN ('checkup', 'medical_expense')),
    date        TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    extra       TEXT NOT NULL,
    imported_at INTEGER NOT NULL
);
CREATE INDEX records_member ON records (member_id, kind, date);
