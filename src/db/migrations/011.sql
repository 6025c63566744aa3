-- Version 10 → 11: the roll-out report and retention. A member's first login (for the
-- report's funnel), taken from what the history and the audit still hold; and the
-- counts of rows retention purged, so reports and /metrics counters keep them.
ALTER TABLE members ADD COLUMN first_login_at INTEGER;
UPDATE members SET first_login_at = (
    SELECT min(at) FROM (
        SELECT at FROM login_history h
         WHERE h.member_id = members.id AND h.outcome IN ('login', 'passkey')
        UNION ALL
        SELECT at FROM audit a WHERE a.member_id = members.id AND a.event = 'login'
    )
);
CREATE TABLE purged_counts (
    metric TEXT NOT NULL,
    day    TEXT NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (metric, day)
);
-- The report and /metrics count members active in the last 30 days by time.
CREATE INDEX login_history_at ON login_history (at);
