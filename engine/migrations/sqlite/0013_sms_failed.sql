-- Issue 7, message templates: an sms step's template is filled in for the
-- record when the step runs; when a field the text needs is blank the
-- message is stored as failed (state 'failed') with the reason here, so the
-- SMS list shows why nothing was sent instead of losing the message. NULL
-- for messages queued before templates had texts. Portable like 0001.
ALTER TABLE sms_outbox ADD COLUMN error TEXT;
