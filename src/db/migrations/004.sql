-- Version 3 → 4: an outbox mail can also end as 'expired' (its useful life passed
-- before it could be sent: a 暗証キー after its 10 minutes) or 'cancelled' (by the
-- sysadmin, `karamail outbox cancel`), and remembers whether its last failure was the
-- transport's. SQLite cannot change a CHECK: the table is rebuilt.
CREATE TABLE outbox_v4 (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    params          TEXT NOT NULL,
    message_id      TEXT NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'sent', 'failed', 'expired', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    transport_fault INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    sent_at         INTEGER
);
INSERT INTO outbox_v4 (id, kind, recipient, params, message_id, created_at, status,
    attempts, next_attempt_at, transport_fault, last_error, sent_at)
    SELECT id, kind, recipient, params, message_id, created_at, status,
    attempts, next_attempt_at, last_error IS NOT NULL, last_error, sent_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v4 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
