-- Version 6 → 7: a member's own login history (プロフィール設定), and the mails a
-- member may turn off.
CREATE TABLE login_history (
    id        INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members(id),
    at        INTEGER NOT NULL,
    outcome   TEXT NOT NULL CHECK (outcome IN ('login', 'passkey', 'wrong_password', 'wrong_key')),
    client_ip TEXT,
    device    TEXT NOT NULL
);
CREATE INDEX login_history_member ON login_history (member_id, at);
ALTER TABLE members ADD COLUMN notify_login INTEGER NOT NULL DEFAULT 1;
ALTER TABLE members ADD COLUMN notify_news INTEGER NOT NULL DEFAULT 1;
