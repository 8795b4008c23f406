//! Second factors and the messages that carry codes: TOTP (RFC 6238, via
//! `totp-rs`), one-time codes sent by e-mail or SMS, and the [`CodeSender`]
//! through which those codes and password-reset links leave.
//!
//! The portal does not send mail or SMS itself: the engine's outbox does.
//! It asks for a [`CodeSender`]; [`crate::outbox::EngineOutbox`] queues on
//! the engine's `notifications` table, and `dialcast serve` and `dialcast
//! demo` wire it. Without one ([`NoCodeSender`]) logins that need an
//! e-mail or SMS code answer 503 and reset links are not sent (logged).
//!
//! TOTP: SHA-1, 6 digits, 30-second steps, one step of skew either way
//! (RFC 6238 section 5.2, what authenticator apps expect). The matched
//! step is stored and a code of that step or an earlier one is refused, so
//! a code is accepted once.
//!
//! One-time codes: 6 random digits, stored only as SHA-256 of the session
//! cookie value and the code (the database alone does not let anyone try
//! the million codes), valid [`crate::session::DEFAULT_SECOND_FACTOR_TIMEOUT_SECS`],
//! single-use, with a limited number of attempts per login.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder, Totp};
use utoipa::ToSchema;

use crate::session::Token;

/// Bytes of a TOTP seed (160 bits, RFC 4226 section 4).
pub const TOTP_SECRET_BYTES: usize = 20;
/// Digits of a TOTP or one-time code.
pub const CODE_DIGITS: u32 = 6;

/// A user's second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecondFactor {
    /// An authenticator app (RFC 6238).
    Totp,
    /// A one-time code sent to the login address.
    Email,
    /// A one-time code sent by SMS to the user's phone.
    Sms,
}

impl SecondFactor {
    pub fn as_str(self) -> &'static str {
        match self {
            SecondFactor::Totp => "totp",
            SecondFactor::Email => "email",
            SecondFactor::Sms => "sms",
        }
    }

    pub fn parse(s: &str) -> Option<SecondFactor> {
        [SecondFactor::Totp, SecondFactor::Email, SecondFactor::Sms]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    Email(String),
    /// An E.164 number.
    Sms(String),
}

/// What a message says. `Debug` hides the code and the link.
#[derive(Clone, PartialEq, Eq)]
pub enum Content {
    /// A login code, valid `valid_secs`.
    LoginCode { code: String, valid_secs: i64 },
    /// A password-reset link, valid `valid_secs`, usable once.
    PasswordReset { link: String, valid_secs: i64 },
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::LoginCode { valid_secs, .. } => {
                write!(f, "LoginCode {{ code: …, valid_secs: {valid_secs} }}")
            }
            Content::PasswordReset { valid_secs, .. } => {
                write!(f, "PasswordReset {{ link: …, valid_secs: {valid_secs} }}")
            }
        }
    }
}

/// One message for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub user_id: i64,
    pub channel: Channel,
    pub content: Content,
}

/// Why a message could not be handed over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("code sender: {0}")]
pub struct SendError(pub String);

/// The future [`CodeSender::send`] returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// Hands a message to whatever delivers it (the engine's outbox, in the
/// binary). Should return once the message is durably queued, not when it
/// is delivered, and must not log the content.
pub trait CodeSender: Send + Sync + 'static {
    fn send<'a>(&'a self, message: &'a Outbound) -> SendFuture<'a>;
}

/// A sender that refuses everything: the default until the binary wires
/// the outbox.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCodeSender;

impl CodeSender for NoCodeSender {
    fn send<'a>(&'a self, _: &'a Outbound) -> SendFuture<'a> {
        Box::pin(async { Err(SendError("no outbox is configured".to_owned())) })
    }
}

/// A fresh random 6-digit code.
pub fn generate_code() -> String {
    let n: u32 = rand::rng().random_range(0..10u32.pow(CODE_DIGITS));
    format!("{n:06}")
}

/// What is stored for a one-time code sent during the login named by
/// `session`.
pub fn code_hash(session: &Token, code: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(session.expose().as_bytes());
    h.update(b":");
    h.update(code.trim().as_bytes());
    h.finalize().to_vec()
}

/// Compares a presented code with the stored hash in constant time.
pub fn code_matches(session: &Token, code: &str, stored: &[u8]) -> bool {
    code_hash(session, code).ct_eq(stored).into()
}

/// A new random TOTP seed.
pub fn generate_totp_secret() -> Vec<u8> {
    let mut s = vec![0u8; TOTP_SECRET_BYTES];
    rand::rng().fill_bytes(&mut s);
    s
}

fn totp(secret: &[u8], account: &str, issuer: &str) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(CODE_DIGITS as u8)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        // A ':' is not allowed in the label's parts.
        .with_account_name(account.replace(':', "_"))
        .with_issuer(Some(issuer.replace(':', "_")))
        .build()
        .ok()
}

/// The `otpauth://totp/…` URI for authenticator apps, and the seed in
/// base32 (for typing in).
pub fn totp_uri(secret: &[u8], account: &str, issuer: &str) -> Option<(String, String)> {
    let t = totp(secret, account, issuer)?;
    Some((t.to_url().ok()?, t.secret().to_base32()))
}

/// The time step `code` is valid for at `now` (one step of skew either
/// way), if it is valid.
pub fn totp_check(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let now = u64::try_from(now).ok()?;
    let t = totp(secret, "", "Dialcast")?;
    t.check(code.trim(), now)
        .and_then(|s| i64::try_from(s).ok())
}

/// The code of `secret` at `now`: for tests and the demo.
pub fn totp_code(secret: &[u8], now: i64) -> String {
    totp(secret, "", "Dialcast")
        .map(|t| {
            t.generate(u64::try_from(now).unwrap_or_default())
                .to_string()
        })
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 seed "12345678901234567890", last 6 of
    /// the 8-digit values.
    #[test]
    fn rfc6238_vectors() {
        let seed = b"12345678901234567890";
        for (t, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(totp_code(seed, t), code, "t={t}");
            assert_eq!(totp_check(seed, code, t), Some(t / 30), "t={t}");
        }
    }

    #[test]
    fn skew_is_one_step() {
        let seed = generate_totp_secret();
        let code = totp_code(&seed, 3000);
        assert_eq!(totp_check(&seed, &code, 3000 + 30), Some(100));
        assert_eq!(totp_check(&seed, &code, 3000 - 30), Some(100));
        assert_eq!(totp_check(&seed, &code, 3000 + 60), None);
        assert_eq!(totp_check(&seed, "abc", 3000), None);
    }

    #[test]
    fn uri_names_issuer_and_account() {
        let (uri, b32) = totp_uri(&[7; 20], "ann@example.org", "Dialcast").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Dialcast:ann%40example.org?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={b32}")), "{uri}");
        assert!(uri.contains("issuer=Dialcast"), "{uri}");
    }

    #[test]
    fn codes_are_six_digits_and_hashed_per_session() {
        let c = generate_code();
        assert_eq!(c.len(), 6);
        assert!(c.bytes().all(|b| b.is_ascii_digit()));
        let s1 = Token::generate();
        let s2 = Token::generate();
        let h = code_hash(&s1, &c);
        assert!(code_matches(&s1, &c, &h));
        assert!(!code_matches(&s2, &c, &h));
    }

    #[test]
    fn content_debug_hides_secrets() {
        let c = Content::LoginCode {
            code: "123456".into(),
            valid_secs: 300,
        };
        assert!(!format!("{c:?}").contains("123456"));
        let r = Content::PasswordReset {
            link: "https://x/reset?token=abc".into(),
            valid_secs: 1800,
        };
        assert!(!format!("{r:?}").contains("abc"));
    }
}
