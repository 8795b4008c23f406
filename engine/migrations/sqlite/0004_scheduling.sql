-- Scheduling: the organisation's calendar (time zone, workdays, holidays),
-- each campaign's call windows and retry policy, pause bookkeeping, the
-- forwarding switch, and the direction of an attempt (inbound callbacks).
-- Portable: ALTER TABLE ... ADD COLUMN with constant defaults.

ALTER TABLE organisations ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE organisations ADD COLUMN calendar_json TEXT NOT NULL DEFAULT '{}';

ALTER TABLE campaigns ADD COLUMN schedule_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE campaigns ADD COLUMN paused_at BIGINT;
ALTER TABLE campaigns ADD COLUMN resumed_at BIGINT;
ALTER TABLE campaigns ADD COLUMN forwarding_paused INTEGER NOT NULL DEFAULT 0;

ALTER TABLE attempts ADD COLUMN direction TEXT NOT NULL DEFAULT 'out';

-- The 7-day cap and attempts per day read a record's recent attempts.
CREATE INDEX attempts_record_started ON attempts (record_id, started_at);
-- Inbound callbacks look up who dialled a number recently.
CREATE INDEX attempts_number_started ON attempts (number, started_at);

-- What an import has staged so far, counted batch by batch in the staging
-- transactions, so that publishing adds it to the statistics without
-- reading the records again.
ALTER TABLE imports ADD COLUMN staged_records BIGINT NOT NULL DEFAULT 0;
ALTER TABLE imports ADD COLUMN staged_voice BIGINT NOT NULL DEFAULT 0;
ALTER TABLE imports ADD COLUMN staged_sms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE imports ADD COLUMN staged_email BIGINT NOT NULL DEFAULT 0;
ALTER TABLE imports ADD COLUMN staged_invalid BIGINT NOT NULL DEFAULT 0;
ALTER TABLE imports ADD COLUMN staged_blocked BIGINT NOT NULL DEFAULT 0;
