-- Portal logins (issue 7, second slice): sessions, second factors, password
-- resets and the login-failure log the rate limits count.
-- Times are Unix seconds (UTC). No secret is stored in the clear except the
-- TOTP seed (see below): session tokens, reset tokens and one-time codes are
-- stored as hashes only.

-- The user's second factor, if any: 'totp', or a one-time code sent by
-- 'email' (to the login address) or 'sms' (to `phone`).
ALTER TABLE portal_users ADD COLUMN second_factor TEXT
    CHECK (second_factor IN ('totp', 'email', 'sms'));
-- E.164 number for SMS codes.
ALTER TABLE portal_users ADD COLUMN phone TEXT;
-- The confirmed TOTP seed (raw bytes). Stored as is: the verifier needs the
-- seed itself, so a hash cannot do; it is never logged nor returned after
-- enrolment. Protect the database file (it also holds every call record).
ALTER TABLE portal_users ADD COLUMN totp_secret BLOB;
-- A seed handed out by enrolment but not yet confirmed with a first code.
ALTER TABLE portal_users ADD COLUMN totp_pending_secret BLOB;
-- The last TOTP time step accepted: a code of this step or an earlier one
-- is refused (RFC 6238 section 5.2: a code is accepted once).
ALTER TABLE portal_users ADD COLUMN totp_last_step INTEGER;

CREATE TABLE portal_sessions (
    id              INTEGER PRIMARY KEY,
    -- SHA-256 of the 256-bit random cookie value.
    token_hash      BLOB NOT NULL UNIQUE,
    user_id         INTEGER NOT NULL REFERENCES portal_users(id),
    -- The organisation the session acts in (switch-org changes it).
    org_id          INTEGER NOT NULL REFERENCES portal_organisations(id),
    -- 'second_factor': the password was right, a second factor is awaited;
    -- 'active': logged in.
    stage           TEXT NOT NULL CHECK (stage IN ('second_factor', 'active')),
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    -- A one-time code sent by e-mail or SMS: SHA-256 of (cookie value, code),
    -- so that the database alone does not let one try the 10^6 codes.
    code_hash       BLOB,
    code_expires_at INTEGER,
    -- Wrong second-factor codes given in this session.
    code_attempts   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX portal_sessions_user ON portal_sessions (user_id);
CREATE INDEX portal_sessions_created ON portal_sessions (created_at);

CREATE TABLE portal_password_resets (
    id          INTEGER PRIMARY KEY,
    -- SHA-256 of the 256-bit random token sent in the link.
    token_hash  BLOB NOT NULL UNIQUE,
    -- NULL for a request naming an unknown address: the row is written all
    -- the same, so that both answers cost the same work.
    user_id     INTEGER REFERENCES portal_users(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX portal_password_resets_user ON portal_password_resets (user_id, expires_at);
CREATE INDEX portal_password_resets_expiry ON portal_password_resets (expires_at);

-- One row per failed login attempt, counted per user (the e-mail given,
-- lowercased) and per client address over a sliding window; rows older
-- than the window are pruned as new ones are written.
CREATE TABLE portal_login_failures (
    scope TEXT NOT NULL CHECK (scope IN ('user', 'address')),
    key   TEXT NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX portal_login_failures_key ON portal_login_failures (scope, key, at);
