-- karamail's whole database. Applied at start on an empty file; PRAGMA user_version
-- records which version of this file a database was made with (see src/db/mod.rs).
-- Times are Unix seconds (UTC). Secrets are never stored, only their hashes.

-- One row per insured person, loaded by `karamail members import`.
CREATE TABLE members (
    id                 INTEGER PRIMARY KEY,
    member_no          TEXT NOT NULL UNIQUE,
    name               TEXT NOT NULL,
    -- From the postcard: 3 letters + 6 digits, so it can never equal a chosen login ID.
    temp_login_id      TEXT NOT NULL UNIQUE,
    -- argon2id PHC string; NULL once sign-up is complete (the postcard is spent).
    temp_password_hash TEXT,
    temp_issued_at     INTEGER NOT NULL,
    login_id           TEXT UNIQUE COLLATE NOCASE,
    password_hash      TEXT,
    nickname           TEXT,
    registered_at      INTEGER,
    imported_at        INTEGER NOT NULL
);

-- A member's addresses (up to three; the first comes from the sign-up link).
CREATE TABLE member_emails (
    id        INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members(id),
    address   TEXT NOT NULL,
    added_at  INTEGER NOT NULL,
    UNIQUE (member_id, address)
);

-- Every request for a sign-up mail, by empty mail or by the web form, and what became
-- of it: 'queued' or the reason no mail was sent. Rate limits count the 'queued' rows.
CREATE TABLE signup_requests (
    id             INTEGER PRIMARY KEY,
    requested_at   INTEGER NOT NULL,
    via            TEXT NOT NULL CHECK (via IN ('mail', 'web')),
    address        TEXT NOT NULL,          -- the sender, as given
    address_key    TEXT NOT NULL,          -- lower-cased, for counting
    client_ip      TEXT,                   -- NULL: came through a trusted relay that named none
    smtp_client_ip TEXT,                   -- the connecting host, for mail
    message_id     TEXT,
    size           INTEGER,
    outcome        TEXT NOT NULL
);
CREATE INDEX signup_requests_address ON signup_requests (address_key, requested_at);
CREATE INDEX signup_requests_ip ON signup_requests (client_ip, requested_at);

-- Every link that went out by mail. Only the token's hash is kept.
CREATE TABLE links (
    id              INTEGER PRIMARY KEY,
    purpose         TEXT NOT NULL CHECK (purpose IN ('signup')),
    token_hash      BLOB NOT NULL UNIQUE,
    address         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER,
    member_id       INTEGER REFERENCES members(id),
    failed_attempts INTEGER NOT NULL DEFAULT 0
);

-- Browser sessions; the cookie holds a random id, this table its hash.
CREATE TABLE sessions (
    id_hash    BLOB PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('signup')),
    link_id    INTEGER REFERENCES links(id),
    member_id  INTEGER REFERENCES members(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Outgoing mail. A row is written before anything is sent; secrets a mail carries are
-- made when it is sent, so they never rest here.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    params          TEXT NOT NULL,         -- JSON; never a secret
    message_id      TEXT NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    sent_at         INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

-- What happened, for the sysadmin: never a secret.
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    event     TEXT NOT NULL,
    member_id INTEGER REFERENCES members(id),
    client_ip TEXT,
    detail    TEXT
);
