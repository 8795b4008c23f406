//! What the store keeps of notifications: messages to a person that are not
//! campaign messages (a portal user's login code or password-reset link).
//! The engine knows nothing of who asks for them; it queues them, and the
//! messaging adapters (a later issue) send them, as `sms_outbox`'s rows
//! wait today.
//!
//! ```text
//! (new) ──queue_notification──► queued ──(messaging adapters)──► sent | failed
//! queued, past expires_at ──(the next queue_notification)──► (row gone)
//! ```
//!
//! A body may hold a secret (a one-time code, a reset link): it is never
//! logged, and `Debug` leaves it out.

use std::fmt;
use std::future::Future;

use super::{EpochMs, Id, StoreResult};

/// How a notification travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotificationChannel {
    Email,
    Sms,
}

impl NotificationChannel {
    /// The name stored in `notifications.channel`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationChannel::Email => "email",
            NotificationChannel::Sms => "sms",
        }
    }

    /// The channel named `s`, if it is one.
    pub fn parse(s: &str) -> Option<NotificationChannel> {
        [NotificationChannel::Email, NotificationChannel::Sms]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// A message to queue.
#[derive(Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub channel: NotificationChannel,
    /// An e-mail address or an E.164 number.
    pub recipient: String,
    /// E-mail subject; empty for SMS.
    pub subject: String,
    pub body: String,
    /// What it is (`login_code`, `password_reset`).
    pub purpose: String,
    /// After this it is not worth sending, and it is deleted if still queued.
    pub expires_at: Option<EpochMs>,
}

impl fmt::Debug for NewNotification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewNotification")
            .field("channel", &self.channel)
            .field("purpose", &self.purpose)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A queued notification as read back (by the sender, and tests).
#[derive(Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: Id,
    pub channel: NotificationChannel,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub purpose: String,
    pub state: String,
    pub created_at: EpochMs,
    pub expires_at: Option<EpochMs>,
}

impl fmt::Debug for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notification")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("purpose", &self.purpose)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The notifications outbox.
pub trait NotificationStore: Send + Sync + 'static {
    /// Queues `message` at `now` and, in the same transaction, deletes the
    /// queued notifications that expired by `now`; returns the new id.
    fn queue_notification(
        &self,
        message: &NewNotification,
        now: EpochMs,
    ) -> impl Future<Output = StoreResult<Id>> + Send;

    /// The queued notifications, oldest first, at most `limit`.
    fn queued_notifications(
        &self,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<Notification>>> + Send;
}
