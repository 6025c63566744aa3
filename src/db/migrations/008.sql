-- Version 7 → 8: households (被保険者番号 and 本人/被扶養者) and documents (PDF).
ALTER TABLE members ADD COLUMN insured_no TEXT;
ALTER TABLE members ADD COLUMN relation TEXT CHECK (relation IN ('insured', 'dependant'));
CREATE INDEX members_household ON members (insured_no, relation);
CREATE TABLE documents (
    id          INTEGER PRIMARY KEY,
    member_id   INTEGER NOT NULL REFERENCES members(id),
    kind        TEXT NOT NULL CHECK (kind IN ('qualification', 'medical_expense', 'checkup')),
    date        TEXT NOT NULL,
    title       TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    size        INTEGER NOT NULL,
    imported_at INTEGER NOT NULL,
    household_no TEXT
);
CREATE INDEX documents_member ON documents (member_id, kind, date);
CREATE INDEX documents_household ON documents (household_no) WHERE household_no IS NOT NULL;
CREATE TABLE document_contents (
    document_id INTEGER PRIMARY KEY REFERENCES documents(id),
    pdf         BLOB NOT NULL
);
