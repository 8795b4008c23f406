-- Issue 5, scripts use voice intelligence: what a call did beyond its
-- status, and the confirmation SMS a script queues.
--
-- voicemail_left: the script's voicemail block was spoken to its end on an
-- answering machine (result column VOICEMAIL_LEFT). forwarded: the call
-- centre answered a forward and the call was bridged (FORWARDED).
ALTER TABLE attempts ADD COLUMN voicemail_left INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN forwarded INTEGER NOT NULL DEFAULT 0;

-- Text messages queued by a script's sms step, written in the same
-- transaction as their outbox event. state: queued (sending comes with the
-- messaging adapters: sent, delivered, undeliverable, expired, rejected).
-- number is the number the call reached; language the run's.
CREATE TABLE sms_outbox (
    id          INTEGER PRIMARY KEY,
    campaign_id BIGINT  NOT NULL REFERENCES campaigns (id),
    record_id   BIGINT  NOT NULL REFERENCES records (id),
    attempt_id  BIGINT  NOT NULL REFERENCES attempts (id),
    number      TEXT    NOT NULL,
    template    TEXT    NOT NULL,
    language    TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX sms_outbox_state ON sms_outbox (state, id);
