-- Version 4 → 5: the server key's fingerprint, so a daemon or command started with
-- another key (or none, after a restore) refuses rather than voiding every secret.
CREATE TABLE server_key (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint BLOB NOT NULL
);
