-- Messages to a person that are not campaign messages: a portal user's
-- one-time login code, a password-reset link. Queued like sms_outbox's rows
-- (state 'queued'); sending comes with the messaging adapters (sent,
-- failed). Times are epoch milliseconds like the rest of the engine.
--
-- body holds a live secret (the code or the link) until the row goes: it
-- is never logged, and a row still queued past expires_at is deleted by the
-- next queue_notification (a code nobody received in time is of no use to
-- send, nor to keep). Portable like 0001.
CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    channel     TEXT    NOT NULL CHECK (channel IN ('email', 'sms')),
    -- An e-mail address or an E.164 number.
    recipient   TEXT    NOT NULL,
    -- E-mail subject; empty for SMS.
    subject     TEXT    NOT NULL DEFAULT '',
    body        TEXT    NOT NULL,
    -- What it is, for the sender's templates and metrics: 'login_code',
    -- 'password_reset'.
    purpose     TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    -- After this the message is useless; NULL: never.
    expires_at  BIGINT
);
CREATE INDEX notifications_state ON notifications (state, id);
CREATE INDEX notifications_expiry ON notifications (expires_at);
