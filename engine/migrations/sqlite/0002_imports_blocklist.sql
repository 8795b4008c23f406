-- Imports and the blocklist. Portable like 0001: BIGINT millisecond times,
-- JSON in TEXT, no SQLite-only functions.

-- One uploaded file and its life:
--   uploaded ──validate──► validating ──► validated ──confirm──► importing ──► finished
--   uploaded | validated ──cancel──► cancelled
--   validating | importing ──(error, or found so at start-up)──► failed
-- A one-shot `dialcast import` goes uploaded → importing → finished, or back
-- to validated when rows fail and partial imports were not accepted.
-- stored_path is the archived original; NULL once retention deleted it.
CREATE TABLE imports (
    id              INTEGER PRIMARY KEY,
    organisation_id BIGINT  NOT NULL REFERENCES organisations (id),
    campaign_id     BIGINT  NOT NULL REFERENCES campaigns (id),
    script_name     TEXT    NOT NULL,
    file_name       TEXT    NOT NULL,
    file_size       BIGINT  NOT NULL,
    stored_path     TEXT,
    status          TEXT    NOT NULL,
    records         BIGINT  NOT NULL,
    imported        BIGINT  NOT NULL,
    failed          BIGINT  NOT NULL,
    report_json     TEXT,
    error           TEXT,
    uploaded_at     BIGINT  NOT NULL,
    started_at      BIGINT,
    finished_at     BIGINT,
    file_deleted_at BIGINT
);
CREATE INDEX imports_status ON imports (status);
CREATE INDEX imports_uploaded ON imports (uploaded_at);

-- The import a record came from (NULL for records stored before imports
-- were tracked). While an import runs its rows are in state 'staged', which
-- nothing but the import itself reads; one UPDATE publishes them at the end,
-- and a failed or cancelled import deletes them. Staged rows are always
-- found through (campaign_id, state), the records_due index.
ALTER TABLE records ADD COLUMN import_id BIGINT REFERENCES imports (id);

-- Numbers never to dial, per organisation (E.164).
CREATE TABLE blocklist (
    organisation_id BIGINT  NOT NULL REFERENCES organisations (id),
    number          TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    added_at        BIGINT  NOT NULL,
    added_by        TEXT,
    PRIMARY KEY (organisation_id, number)
);
