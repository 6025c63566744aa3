-- Version 9 → 10: passkeys (WebAuthn). A member's user handle, made at their first
-- passkey, and each passkey's public key.
ALTER TABLE members ADD COLUMN webauthn_id BLOB;
CREATE UNIQUE INDEX members_webauthn ON members (webauthn_id) WHERE webauthn_id IS NOT NULL;
CREATE TABLE passkeys (
    id            INTEGER PRIMARY KEY,
    member_id     INTEGER NOT NULL REFERENCES members(id),
    credential_id BLOB NOT NULL UNIQUE,
    passkey       TEXT NOT NULL,
    name          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX passkeys_member ON passkeys (member_id);
