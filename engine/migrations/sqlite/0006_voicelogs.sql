-- Voicelogs: one row per recorded call (a stereo WAV under the voicelog
-- directory; `path` is relative to it). Written when the recording starts
-- (state 'recording'), settled when the call ends ('complete'), or at the
-- next start after a crash ('repaired' with the sizes fixed, 'missing' when
-- the file is gone). Deleted with the file after the retention period.
-- policy: why the call was recorded (all, from_success, forwarded).
-- Portable like 0001.
CREATE TABLE voicelogs (
    id             INTEGER PRIMARY KEY,
    attempt_id     BIGINT  NOT NULL REFERENCES attempts (id),
    record_id      BIGINT  NOT NULL REFERENCES records (id),
    script_name    TEXT    NOT NULL,
    policy         TEXT    NOT NULL,
    path           TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    started_at     BIGINT  NOT NULL,
    ended_at       BIGINT,
    duration_ms    BIGINT,
    bytes          BIGINT,
    frames_filled  BIGINT,
    blocks_dropped BIGINT
);
CREATE INDEX voicelogs_state ON voicelogs (state);
CREATE INDEX voicelogs_started ON voicelogs (started_at);
CREATE INDEX voicelogs_script ON voicelogs (script_name, started_at);
CREATE INDEX voicelogs_attempt ON voicelogs (attempt_id);
