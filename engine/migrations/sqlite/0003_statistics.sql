-- Statistics kept as they happen, and the result files written.
--
-- Portable like 0001: BIGINT milliseconds since the Unix epoch (UTC), plain
-- TEXT, and the upsert `INSERT ... ON CONFLICT ... DO UPDATE SET n = n + excluded.n`
-- that PostgreSQL reads the same way.

-- One counter of one campaign in one 5-minute bucket (bucket_start = UTC ms
-- floored to 5 minutes). Counters are added to in the same transaction as
-- the change they count (an attempt ended, records imported, an inbound
-- call matched, a forward, a callback), never recomputed from the attempts.
-- Counter names (see engine/src/stats/counters.rs): attempts, dialled,
-- colour.green|yellow|red|other, status.<call status>, voicemail_left,
-- records_done, records_imported, inbound, forwards, callbacks,
-- imported.voice|sms|email.
-- Attempt counters go to the bucket of the attempt's start (as result files
-- do); import and event counters to the bucket of the moment they happened.
CREATE TABLE stats_counters (
    campaign_id  BIGINT NOT NULL REFERENCES campaigns (id),
    bucket_start BIGINT NOT NULL,
    counter      TEXT   NOT NULL,
    n            BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, bucket_start, counter)
);

-- Result files written (one per script, day and format; a rewrite of the
-- same day replaces its row and its file, never adds a second one).
-- day is the organisation's local date, YYYY-MM-DD.
CREATE TABLE result_files (
    id           INTEGER PRIMARY KEY,
    script_id    BIGINT NOT NULL REFERENCES scripts (id),
    day          TEXT   NOT NULL,
    format       TEXT   NOT NULL,
    path         TEXT   NOT NULL,
    outbox_path  TEXT,
    size         BIGINT NOT NULL,
    rows         BIGINT NOT NULL,
    written_at   BIGINT NOT NULL,
    UNIQUE (script_id, day, format)
);
