-- The portal's SMS list (issue 7) searches an organisation's text messages
-- by number, by record and by date, newest first by id (a keyset cursor),
-- as the calls list does for attempts. An index on one column holds the
-- rowid too, so `number = ? AND id < ? ORDER BY id DESC` reads only the
-- matching rows, newest first, and stops at the page size. A state alone
-- reads the existing sms_outbox_state (state, id). Portable like 0001.
CREATE INDEX sms_outbox_number ON sms_outbox (number);
CREATE INDEX sms_outbox_record ON sms_outbox (record_id);
CREATE INDEX sms_outbox_created ON sms_outbox (created_at);
