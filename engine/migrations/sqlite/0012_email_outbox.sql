-- Issue 7 and the e-mail channel: records with SERVICES_EMAIL=Y get one
-- e-mail, on the day they are imported, at any hour. Until now they were
-- only counted at import; nothing remembered that they still needed one.
--
-- email_pending: set when the record is stored by an import (in the same
-- multi-row INSERT, no statement of its own) and cleared in the
-- transaction that writes its email_outbox row. Records of an import that
-- is not finished are not pending yet: readers apply the same visibility
-- condition as everywhere else (`visible!` in engine/src/store/sqlite.rs).
-- The partial index holds only the records still waiting, per campaign in
-- import order, so finding them never walks over the millions that are not.
ALTER TABLE records ADD COLUMN email_pending INTEGER NOT NULL DEFAULT 0;
CREATE INDEX records_email_pending ON records (campaign_id, id) WHERE email_pending = 1;

-- E-mail messages, one per record, rendered from the script's
-- email_template and written in the same transaction as their
-- email_queued or email_failed event. state: queued, or failed when no
-- message could be made (error says why: no CONTACT_EMAIL, a field the
-- template needs is empty, no such template); sending comes with the
-- messaging adapters: sent, delivered, opened, clicked, soft_bounce,
-- hard_bounce, spam_complaint (PAYMAILRESULTS_EMAIL_n in
-- shared/formats/README.md). template, language, subject and body are
-- those of the rendered message (NULL when it failed before them).
CREATE TABLE email_outbox (
    id          INTEGER PRIMARY KEY,
    campaign_id BIGINT  NOT NULL REFERENCES campaigns (id),
    record_id   BIGINT  NOT NULL REFERENCES records (id),
    address     TEXT    NOT NULL,
    template    TEXT,
    language    TEXT,
    subject     TEXT,
    body        TEXT,
    state       TEXT    NOT NULL,
    error       TEXT,
    created_at  BIGINT  NOT NULL
);
-- A record is never given two e-mails (a retried or doubled queue step
-- fails here rather than sending twice); also the list's index by record.
-- A unique index rather than a table constraint, so that a later channel
-- with several e-mails per record can drop it without rebuilding the table.
CREATE UNIQUE INDEX email_outbox_record ON email_outbox (record_id);
-- The portal's e-mail list searches by address, by record (above), by
-- state and by date, newest first by id (a keyset cursor), like 0011 for
-- sms_outbox; (state, id) also serves the outbox backlog. Portable like 0001.
CREATE INDEX email_outbox_state ON email_outbox (state, id);
CREATE INDEX email_outbox_address ON email_outbox (address);
CREATE INDEX email_outbox_created ON email_outbox (created_at);

-- The rendered text of a queued SMS (NULL for messages queued before
-- templates had texts), shown in the portal's SMS list.
ALTER TABLE sms_outbox ADD COLUMN body TEXT;
