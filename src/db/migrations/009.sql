-- Version 8 → 9: bulk mail (「新しいお知らせがあります」 to thousands at once) is sent
-- at a pace of its own, after whatever a member is waiting for.
ALTER TABLE outbox ADD COLUMN bulk INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_due_class ON outbox (status, bulk, next_attempt_at);
