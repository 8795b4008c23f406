//! [`NotificationStore`] on SQLite: the `notifications` table (migration
//! 0009).

use sqlx::Row as _;

use super::SqliteStore;
use crate::store::notifications::{
    NewNotification, Notification, NotificationChannel, NotificationStore,
};
use crate::store::{EpochMs, Id, StoreError, StoreResult};

impl NotificationStore for SqliteStore {
    async fn queue_notification(&self, message: &NewNotification, now: EpochMs) -> StoreResult<Id> {
        let mut tx = self.begin_write().await?;
        // Expired rows go with each new one: the table holds only messages
        // still worth sending (on the notifications_expiry index).
        sqlx::query(
            "DELETE FROM notifications WHERE state = 'queued' AND expires_at IS NOT NULL \
             AND expires_at <= ?",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let id: Id = sqlx::query_scalar(
            "INSERT INTO notifications (channel, recipient, subject, body, purpose, state, \
             created_at, expires_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?) RETURNING id",
        )
        .bind(message.channel.as_str())
        .bind(&message.recipient)
        .bind(&message.subject)
        .bind(&message.body)
        .bind(&message.purpose)
        .bind(now)
        .bind(message.expires_at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn queued_notifications(&self, limit: u32) -> StoreResult<Vec<Notification>> {
        let rows = sqlx::query(
            "SELECT id, channel, recipient, subject, body, purpose, state, created_at, \
             expires_at FROM notifications WHERE state = 'queued' ORDER BY id LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let channel: String = r.try_get("channel")?;
                Ok(Notification {
                    id: r.try_get("id")?,
                    channel: NotificationChannel::parse(&channel).ok_or_else(|| {
                        StoreError::Corrupt(format!("notification channel {channel:?}"))
                    })?,
                    recipient: r.try_get("recipient")?,
                    subject: r.try_get("subject")?,
                    body: r.try_get("body")?,
                    purpose: r.try_get("purpose")?,
                    state: r.try_get("state")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn code(to: &str, expires_at: Option<EpochMs>) -> NewNotification {
        NewNotification {
            channel: NotificationChannel::Email,
            recipient: to.to_owned(),
            subject: "Your login code".to_owned(),
            body: "123456".to_owned(),
            purpose: "login_code".to_owned(),
            expires_at,
        }
    }

    #[tokio::test]
    async fn queued_notifications_are_read_back_oldest_first() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let a = store
            .queue_notification(&code("a@example.org", Some(5_000)), 1_000)
            .await
            .unwrap();
        let sms = NewNotification {
            channel: NotificationChannel::Sms,
            recipient: "+31612345678".to_owned(),
            subject: String::new(),
            expires_at: None,
            ..code("", None)
        };
        let b = store.queue_notification(&sms, 2_000).await.unwrap();
        let queued = store.queued_notifications(10).await.unwrap();
        assert_eq!(queued.iter().map(|n| n.id).collect::<Vec<_>>(), [a, b]);
        assert_eq!(queued[0].recipient, "a@example.org");
        assert_eq!(queued[0].state, "queued");
        assert_eq!(queued[0].created_at, 1_000);
        assert_eq!(queued[0].expires_at, Some(5_000));
        assert_eq!(queued[1].channel, NotificationChannel::Sms);
        assert_eq!(store.queued_notifications(1).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn expired_notifications_go_with_the_next_one() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        store
            .queue_notification(&code("old@example.org", Some(5_000)), 1_000)
            .await
            .unwrap();
        let forever = store
            .queue_notification(&code("keep@example.org", None), 1_000)
            .await
            .unwrap();
        let new = store
            .queue_notification(&code("new@example.org", Some(9_000)), 5_000)
            .await
            .unwrap();
        let ids: Vec<Id> = store
            .queued_notifications(10)
            .await
            .unwrap()
            .iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(ids, [forever, new]);
    }

    #[test]
    fn debug_leaves_out_the_body() {
        let n = code("a@example.org", None);
        let shown = format!("{n:?}");
        assert!(!shown.contains("123456"), "{shown}");
        assert!(!shown.contains("a@example.org"), "{shown}");
    }
}
