//! The e-mail of every record imported with `SERVICES_EMAIL=Y`: the
//! script's `email_template` filled in for the record, in the record's
//! language, queued in the store's e-mail outbox.
//!
//! E-mail goes out on the day of the import, at once, whatever the hour
//! (see [`crate::campaign::channels`]), and whether voice is running or
//! paused. Records are marked pending when their import is published; this
//! task turns pending records into outbox rows. The store writes a batch's
//! rows, their events and the cleared pending marks in one transaction, so a
//! crash between two passes neither loses a message nor writes it twice:
//! whatever was not committed is still pending at the next pass.
//!
//! [`email_for`] is the decision, pure: queued with subject and text, or
//! failed with the reason (the script names no e-mail template, or a field
//! the template needs is blank) — a failed message is kept and shown, never
//! dropped.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use dialcast_scripts::{AudioCatalog, Script};
use tokio_util::sync::CancellationToken;

use crate::campaign::now_ms;
use crate::store::{
    Campaign, CampaignState, EmailOutcome, EpochMs, Id, PendingEmail, Store, StoreResult,
};

/// How often pending e-mails are looked for.
pub const POLL: Duration = Duration::from_secs(2);
/// Records read and queued per transaction.
pub const BATCH: usize = 500;

/// What to queue for one pending record under `script`.
pub fn email_for(script: &Script, pending: &PendingEmail) -> EmailOutcome {
    if pending.address.trim().is_empty() {
        return EmailOutcome::Failed {
            address: String::new(),
            template: script.email_template().map(|t| t.name().to_string()),
            reason: "the record has no CONTACT_EMAIL".to_string(),
        };
    }
    let Some(template) = script.email_template() else {
        return EmailOutcome::Failed {
            address: pending.address.clone(),
            template: None,
            reason: format!(
                "script \"{}\" has no email_template; the record asked for e-mail (SERVICES_EMAIL=Y)",
                script.name()
            ),
        };
    };
    let language = script.language_for(&pending.fields);
    match template.render(language, &pending.fields) {
        Ok(message) => EmailOutcome::Queued {
            address: pending.address.clone(),
            template: message.template,
            language: message.language,
            subject: message.subject.unwrap_or_default(),
            body: message.text,
        },
        Err(e) => EmailOutcome::Failed {
            address: pending.address.clone(),
            template: Some(template.name().to_string()),
            reason: e.to_string(),
        },
    }
}

/// Queues every pending e-mail of every campaign; returns how many
/// messages were written (queued or failed). A campaign whose script does
/// not load keeps its records pending (they go once it is mended) and is
/// reported once in `warned`.
pub async fn queue_pending<S: Store>(
    store: &S,
    catalog: &AudioCatalog,
    now: EpochMs,
    warned: &mut HashSet<Id>,
) -> StoreResult<u64> {
    let mut written = 0;
    for state in [
        CampaignState::Idle,
        CampaignState::Running,
        CampaignState::Paused,
        CampaignState::Finished,
    ] {
        for campaign in store.campaigns_in_state(state).await? {
            written += queue_campaign(store, catalog, &campaign, now, warned).await?;
        }
    }
    Ok(written)
}

async fn queue_campaign<S: Store>(
    store: &S,
    catalog: &AudioCatalog,
    campaign: &Campaign,
    now: EpochMs,
    warned: &mut HashSet<Id>,
) -> StoreResult<u64> {
    let mut written = 0;
    let mut script: Option<Script> = None;
    loop {
        let pending = store.pending_emails(campaign.id, BATCH).await?;
        if pending.is_empty() {
            return Ok(written);
        }
        if script.is_none() {
            match Script::parse(&campaign.script_source, &campaign.script_file, catalog) {
                Ok(s) => script = Some(s),
                Err(e) => {
                    if warned.insert(campaign.id) {
                        tracing::warn!(
                            campaign = %campaign.name,
                            "e-mails wait: the script does not load: {e}"
                        );
                    }
                    return Ok(written);
                }
            }
        }
        let Some(script) = script.as_ref() else {
            return Ok(written);
        };
        let items: Vec<(Id, EmailOutcome)> = pending
            .iter()
            .map(|p| (p.record, email_for(script, p)))
            .collect();
        let ids = store.queue_emails(campaign.id, &items, now).await?;
        written += ids.len() as u64;
        if pending.len() < BATCH {
            return Ok(written);
        }
    }
}

/// Runs [`queue_pending`] every [`POLL`] until `cancel` fires.
pub async fn run<S: Store>(store: Arc<S>, catalog: Arc<AudioCatalog>, cancel: CancellationToken) {
    let mut warned = HashSet::new();
    loop {
        match queue_pending(&*store, &catalog, now_ms(), &mut warned).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("{n} e-mails queued"),
            Err(e) => tracing::error!("e-mails not queued: {e}"),
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const SCRIPT: &str = r#"name = "notice"
default_language = "en"
languages = ["en", "nl"]
email_template = "notice"

[[steps]]
step = "hangup"

[templates.notice]
channel = "email"
subject.en = "Invoice {INVOICE_NUMBER}"
subject.nl = "Factuur {INVOICE_NUMBER}"
text.en = "Dear {PERSON_FIRST_NAME|customer}, please pay {INVOICE_AMOUNT_OPEN}."
text.nl = "Beste {PERSON_FIRST_NAME|klant}, betaal {INVOICE_AMOUNT_OPEN}."
"#;

    fn script(source: &str) -> Script {
        Script::parse(source, "notice.toml", &AudioCatalog::new()).unwrap()
    }

    fn pending(fields: &[(&str, &str)]) -> PendingEmail {
        let fields: BTreeMap<String, String> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PendingEmail {
            record: 7,
            record_id: "R7".into(),
            address: "jan@example.org".into(),
            fields,
        }
    }

    #[test]
    fn a_record_gets_the_template_in_its_language() {
        let outcome = email_for(
            &script(SCRIPT),
            &pending(&[
                ("INVOICE_NUMBER", "F-1"),
                ("INVOICE_AMOUNT_OPEN", "49.95"),
                ("PERSON_LANGUAGE", "NL-be"),
            ]),
        );
        assert_eq!(
            outcome,
            EmailOutcome::Queued {
                address: "jan@example.org".into(),
                template: "notice".into(),
                language: "nl".into(),
                subject: "Factuur F-1".into(),
                body: "Beste klant, betaal 49.95.".into(),
            }
        );
        // A language the script does not write: its default.
        let outcome = email_for(
            &script(SCRIPT),
            &pending(&[
                ("INVOICE_NUMBER", "F-1"),
                ("INVOICE_AMOUNT_OPEN", "49.95"),
                ("PERSON_LANGUAGE", "de"),
            ]),
        );
        assert!(matches!(outcome, EmailOutcome::Queued { language, .. } if language == "en"));
    }

    #[test]
    fn a_blank_field_or_no_template_fails_the_message_with_the_reason() {
        let outcome = email_for(&script(SCRIPT), &pending(&[("INVOICE_NUMBER", "F-1")]));
        let EmailOutcome::Failed {
            template, reason, ..
        } = outcome
        else {
            panic!("{outcome:?}")
        };
        assert_eq!(template.as_deref(), Some("notice"));
        assert!(reason.contains("INVOICE_AMOUNT_OPEN"), "{reason}");

        let without = "name = \"plain\"\ndefault_language = \"en\"\n[[steps]]\nstep = \"hangup\"\n";
        let outcome = email_for(&script(without), &pending(&[]));
        let EmailOutcome::Failed {
            template, reason, ..
        } = outcome
        else {
            panic!("{outcome:?}")
        };
        assert_eq!(template, None);
        assert!(reason.contains("no email_template"), "{reason}");

        let mut without_address = pending(&[("INVOICE_NUMBER", "F-1")]);
        without_address.address = " ".into();
        let outcome = email_for(&script(SCRIPT), &without_address);
        assert!(
            matches!(&outcome, EmailOutcome::Failed { reason, .. } if reason.contains("no CONTACT_EMAIL")),
            "{outcome:?}"
        );
    }
}
