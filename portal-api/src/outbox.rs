//! The [`CodeSender`] on the engine's notifications outbox: a login code or
//! a password-reset link becomes one queued row of the engine's
//! `notifications` table ([`NotificationStore::queue_notification`]),
//! which the engine's messaging adapters send (a later issue; until then
//! the rows wait, as `sms_outbox`'s do). `send` returns once the row is
//! committed.
//!
//! The text is written here, not in the engine: the engine knows nothing
//! of logins. Each row expires with what it carries (a code after the
//! second-factor timeout, a link after the reset lifetime) and the engine
//! deletes it if it is still queued then, so a secret does not outlive its
//! use in the database. Nothing here logs the code, the link or the
//! recipient.

use dialcast_engine::store::{
    NewNotification, NotificationChannel, NotificationStore, SqliteStore,
};

use crate::second_factor::{Channel, CodeSender, Content, Outbound, SendError, SendFuture};

/// Sends codes and reset links through the engine's notifications outbox.
#[derive(Clone)]
pub struct EngineOutbox {
    store: SqliteStore,
    product: String,
}

impl EngineOutbox {
    /// The outbox of `store`; messages name the product "Dialcast".
    pub fn new(store: SqliteStore) -> EngineOutbox {
        EngineOutbox {
            store,
            product: "Dialcast".to_owned(),
        }
    }
}

/// The row for `message`, queued at `now_ms`.
pub fn render(message: &Outbound, product: &str, now_ms: i64) -> NewNotification {
    let (channel, recipient) = match &message.channel {
        Channel::Email(to) => (NotificationChannel::Email, to.clone()),
        Channel::Sms(to) => (NotificationChannel::Sms, to.clone()),
    };
    let (subject, body, purpose, valid_secs) = match &message.content {
        Content::LoginCode { code, valid_secs } => (
            format!("Your {product} login code"),
            format!(
                "Your {product} login code is {code}. It works once, for {}.",
                minutes(*valid_secs)
            ),
            "login_code",
            *valid_secs,
        ),
        Content::PasswordReset { link, valid_secs } => (
            format!("Reset your {product} password"),
            format!(
                "To choose a new {product} password, open {link} within {}. The link works \
                 once. If you did not ask for it, ignore this message.",
                minutes(*valid_secs)
            ),
            "password_reset",
            *valid_secs,
        ),
    };
    NewNotification {
        channel,
        recipient,
        subject: match channel {
            NotificationChannel::Email => subject,
            NotificationChannel::Sms => String::new(),
        },
        body,
        purpose: purpose.to_owned(),
        expires_at: Some(now_ms.saturating_add(valid_secs.saturating_mul(1000))),
    }
}

fn minutes(secs: i64) -> String {
    let m = (secs + 59) / 60;
    if m == 1 {
        "1 minute".to_owned()
    } else {
        format!("{m} minutes")
    }
}

impl CodeSender for EngineOutbox {
    fn send<'a>(&'a self, message: &'a Outbound) -> SendFuture<'a> {
        Box::pin(async move {
            let now = chrono::Utc::now().timestamp_millis();
            let row = render(message, &self.product, now);
            self.store
                .queue_notification(&row, now)
                .await
                .map(|_| ())
                .map_err(|e| SendError(format!("engine outbox: {e}")))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn a_login_code_by_email_expires_with_the_code() {
        let m = Outbound {
            user_id: 1,
            channel: Channel::Email("ann@example.org".into()),
            content: Content::LoginCode {
                code: "123456".into(),
                valid_secs: 300,
            },
        };
        let row = render(&m, "Dialcast", 1_000);
        assert_eq!(row.channel, NotificationChannel::Email);
        assert_eq!(row.recipient, "ann@example.org");
        assert_eq!(row.subject, "Your Dialcast login code");
        assert!(row.body.contains("123456") && row.body.contains("5 minutes"));
        assert_eq!(row.purpose, "login_code");
        assert_eq!(row.expires_at, Some(301_000));
    }

    #[test]
    fn an_sms_has_no_subject() {
        let m = Outbound {
            user_id: 1,
            channel: Channel::Sms("+31612345678".into()),
            content: Content::PasswordReset {
                link: "https://portal/reset?token=abc".into(),
                valid_secs: 1800,
            },
        };
        let row = render(&m, "Dialcast", 0);
        assert_eq!(row.channel, NotificationChannel::Sms);
        assert_eq!(row.subject, "");
        assert!(row.body.contains("token=abc") && row.body.contains("30 minutes"));
        assert_eq!(row.purpose, "password_reset");
    }
}
