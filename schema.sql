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
    -- `keyed$` and the server key's hash (argon2id PHC from before the key); NULL once
    -- sign-up is complete (the postcard is spent).
    temp_password_hash TEXT,
    temp_issued_at     INTEGER NOT NULL,
    login_id           TEXT UNIQUE COLLATE NOCASE,
    password_hash      TEXT,
    nickname           TEXT,
    registered_at      INTEGER,
    imported_at        INTEGER NOT NULL,
    -- Set by `karamail members disable`: no login, no password reissue.
    disabled_at        INTEGER,
    -- The mails a member may turn off (プロフィール設定): 「ログインが行われました」
    -- after each login, 「新しいお知らせがあります」 when something is published.
    notify_login       INTEGER NOT NULL DEFAULT 1,
    notify_news        INTEGER NOT NULL DEFAULT 1,
    -- The household: 被保険者番号 (記号・番号) shared by the insured person and their
    -- dependants, and which of them this member is. The insured person ('insured',
    -- 本人) sees their dependants' 資格情報のお知らせ; a dependant only their own.
    insured_no         TEXT,
    relation           TEXT CHECK (relation IN ('insured', 'dependant')),
    -- The member's WebAuthn user handle (16 random bytes), made at their first passkey:
    -- a passkey names its member by it, never by the member number or login ID.
    webauthn_id        BLOB,
    -- The member's first login (password and 暗証キー, or a passkey): the roll-out
    -- report's "first logins".
    first_login_at     INTEGER
);
CREATE INDEX members_household ON members (insured_no, relation);
CREATE UNIQUE INDEX members_webauthn ON members (webauthn_id) WHERE webauthn_id IS NOT NULL;

-- A member's passkeys (WebAuthn). `passkey` is webauthn-rs's record of it as JSON: the
-- public key, its algorithm and signature counter — nothing that lets anyone log in.
CREATE TABLE passkeys (
    id            INTEGER PRIMARY KEY,
    member_id     INTEGER NOT NULL REFERENCES members(id),
    credential_id BLOB NOT NULL UNIQUE,
    passkey       TEXT NOT NULL,
    name          TEXT NOT NULL,          -- the member's name for it («iPhone»)
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX passkeys_member ON passkeys (member_id);

-- Failed logins by the login ID as typed (lower-cased), whether or not it exists, so a
-- lockout looks the same for every ID.
CREATE TABLE login_failures (
    login_key       TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    locked_until    INTEGER
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
-- Rate limits look up the queued requests of one address or client in a window; with
-- the outcome in the index, a flood of refused requests does not slow the lookup.
CREATE INDEX signup_requests_address ON signup_requests (address_key, outcome, requested_at);
CREATE INDEX signup_requests_ip ON signup_requests (client_ip, outcome, requested_at);

-- Every link that went out by mail. Only the token's hash is kept.
CREATE TABLE links (
    id              INTEGER PRIMARY KEY,
    purpose         TEXT NOT NULL CHECK (purpose IN ('signup', 'reset', 'email_verify')),
    token_hash      BLOB NOT NULL UNIQUE,
    address         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER,
    member_id       INTEGER REFERENCES members(id),
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    -- argon2id of the temporary password a reset mail carries.
    secret_hash     TEXT
);

-- Browser sessions; the cookie holds a random id, this table its hash.
-- 'signup' and 'reset': the steps after a mailed link; 'member': logged in.
CREATE TABLE sessions (
    id_hash      BLOB PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('signup', 'reset', 'member')),
    link_id      INTEGER REFERENCES links(id),
    member_id    INTEGER REFERENCES members(id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,   -- the absolute end
    last_seen_at INTEGER NOT NULL    -- for the idle timeout
);
CREATE INDEX sessions_member ON sessions (member_id);

-- A login between the password and the one-time key (暗証キー). The browser holds the
-- pending id in a session-only cookie; a new attempt ends the member's older ones.
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

-- The keys mailed for an attempt, one per mail (each address gets its own), hashed.
CREATE TABLE login_keys (
    attempt_id INTEGER NOT NULL REFERENCES login_attempts(id),
    outbox_id  INTEGER NOT NULL,
    key_hash   BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (attempt_id, outbox_id)
);

-- A member's logins and the failed tries at their account (a wrong password for their
-- login ID, a wrong 暗証キー), shown to them on プロフィール設定. The device is a short
-- description of the browser («Safari（iPhone）»), never the whole User-Agent. Only the
-- newest rows of each member are kept (`db::login_history::KEPT`).
CREATE TABLE login_history (
    id        INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members(id),
    at        INTEGER NOT NULL,
    outcome   TEXT NOT NULL CHECK (outcome IN ('login', 'passkey', 'wrong_password', 'wrong_key')),
    client_ip TEXT,
    device    TEXT NOT NULL
);
CREATE INDEX login_history_member ON login_history (member_id, at);
-- The roll-out report and /metrics count members active in the last 30 days.
CREATE INDEX login_history_at ON login_history (at);

-- Requests for a password reissue mail, for rate limits.
CREATE TABLE reset_requests (
    id           INTEGER PRIMARY KEY,
    requested_at INTEGER NOT NULL,
    address_key  TEXT NOT NULL,
    client_ip    TEXT,
    outcome      TEXT NOT NULL
);
CREATE INDEX reset_requests_address ON reset_requests (address_key, requested_at);
CREATE INDEX reset_requests_ip ON reset_requests (client_ip, outcome, requested_at);

-- お知らせ from the society, shown on every member's top page.
CREATE TABLE notices (
    id           INTEGER PRIMARY KEY,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    ends_on      TEXT                -- last day shown (YYYY-MM-DD, Japan time); NULL: no end
);

-- 健診結果 and 医療費のお知らせ, loaded from CSV; `extra` holds the file's other
-- columns as a JSON array of [name, value] pairs.
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

-- Documents (PDF) for a member, loaded by `karamail documents import`: 資格情報のお知らせ,
-- 医療費のお知らせ, 健診結果. The file itself is in `document_contents`, so listing a
-- member's documents never reads a PDF.
CREATE TABLE documents (
    id          INTEGER PRIMARY KEY,
    member_id   INTEGER NOT NULL REFERENCES members(id),
    kind        TEXT NOT NULL CHECK (kind IN ('qualification', 'medical_expense', 'checkup')),
    date        TEXT NOT NULL,       -- the document's date (YYYY-MM-DD)
    title       TEXT NOT NULL,
    file_name   TEXT NOT NULL,       -- as imported, for the sysadmin
    size        INTEGER NOT NULL,    -- bytes
    imported_at INTEGER NOT NULL,
    -- A dependant's document: their 被保険者番号 when it was issued. The insured
    -- person (本人) of that number sees it; a household change later moves no
    -- document to another family.
    household_no TEXT
);
CREATE INDEX documents_member ON documents (member_id, kind, date);
CREATE INDEX documents_household ON documents (household_no) WHERE household_no IS NOT NULL;
CREATE TABLE document_contents (
    document_id INTEGER PRIMARY KEY REFERENCES documents(id),
    pdf         BLOB NOT NULL
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
    -- 'expired': its useful life passed unsent (a 暗証キー after its lifetime);
    -- 'cancelled': by the sysadmin. Neither is ever sent.
    status          TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'sent', 'failed', 'expired', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- 1: its last try failed for the transport's sake (sent as soon as it is back);
    -- 0: for its own (its recipient's 450 keeps its own backoff).
    transport_fault INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    sent_at         INTEGER,
    -- 1: bulk mail (「新しいお知らせがあります」), sent at `[mail] bulk_per_minute` after
    -- every due mail a member is waiting for (sign-up links, 暗証キー, …).
    bulk            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_due_class ON outbox (status, bulk, next_attempt_at);

-- What happened, for the sysadmin: never a secret.
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    event     TEXT NOT NULL,
    member_id INTEGER REFERENCES members(id),
    client_ip TEXT,
    detail    TEXT
);

-- What retention ([retention] in the config) purged, counted per Japan-time day before
-- the rows went, so the roll-out report and the /metrics counters keep them:
-- 'signup:<via>:<outcome>', 'audit:<event>', 'outbox:<status>', 'outbox:attempts'.
CREATE TABLE purged_counts (
    metric TEXT NOT NULL,
    day    TEXT NOT NULL,      -- YYYY-MM-DD, Japan time
    n      INTEGER NOT NULL,
    PRIMARY KEY (metric, day)
);

-- The server key's fingerprint (its keyed hash of a fixed label): a daemon or command
-- started with another key, or with none after a restore, refuses to run.
CREATE TABLE server_key (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint BLOB NOT NULL
);
