//! Picking up the inbox in `serve`: at each pickup time, every ready file
//! is imported like `dialcast import FILE --script <its folder>` (validated,
//! then imported when no row fails, or with `inbox_accept_partial` the good
//! rows), then moved to `done/` or `failed/` with its report beside it as
//! `<file>.report.json`. A file whose script does not exist fails with the
//! reason in its report. A file leaves the folder once handled; one handled
//! twice (a crash between its import and its move) adds nothing the second
//! time, since a campaign keeps each RECORD_ID once.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use chrono::Utc;
use dialcast_scripts::AudioCatalog;
use tokio_util::sync::CancellationToken;

use super::{destination, next_pickup, ready_files, InboxFile, POLL_WITHOUT_TIMES};
use crate::config::Config;
use crate::service::{import_file, ImportMode, ImportTarget};
use crate::store::{BlocklistStore, ImportStatus, ImportStore};

/// Runs until `cancel`: waits for each pickup time and handles the ready
/// files.
pub async fn run<S: ImportStore + BlocklistStore>(
    store: Arc<S>,
    catalog: Arc<AudioCatalog>,
    config: Arc<Config>,
    cancel: CancellationToken,
) {
    let Some(inbox) = config.imports.inbox_dir.clone() else {
        return;
    };
    let times: Vec<_> = config.imports.inbox_times.iter().map(|t| t.0).collect();
    let zone = config.organisation.time_zone.0;
    tracing::info!(inbox = %inbox.display(), "watching the import inbox");
    loop {
        let wait = match next_pickup(Utc::now(), &times, zone) {
            Some(at) => (at - Utc::now()).to_std().unwrap_or_default(),
            None => POLL_WITHOUT_TIMES,
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        if let Err(e) = pick_up(&*store, &catalog, &config, &inbox).await {
            tracing::error!(inbox = %inbox.display(), "inbox pickup failed: {e:#}");
        }
    }
}

/// Handles every file that is ready now; returns how many were handled.
pub async fn pick_up<S: ImportStore + BlocklistStore>(
    store: &S,
    catalog: &AudioCatalog,
    config: &Config,
    inbox: &Path,
) -> anyhow::Result<usize> {
    let files = ready_files(inbox, SystemTime::now())
        .with_context(|| format!("cannot read the inbox {}", inbox.display()))?;
    for file in &files {
        handle(store, catalog, config, file).await?;
    }
    Ok(files.len())
}

/// Imports one file and moves it with its report.
async fn handle<S: ImportStore + BlocklistStore>(
    store: &S,
    catalog: &AudioCatalog,
    config: &Config,
    file: &InboxFile,
) -> anyhow::Result<()> {
    let script_path = config.scripts.dir.join(format!("{}.toml", file.script));
    let outcome = match config.trunk(&config.campaign.trunk) {
        None => Err(anyhow::anyhow!("the campaign trunk is not configured")),
        Some(trunk) => {
            import_file(
                store,
                catalog,
                &file.path,
                ImportTarget {
                    organisation: &config.organisation.name,
                    default_country: &config.organisation.default_country,
                    trunk: trunk.settings(),
                    calendar: config.organisation.calendar()?,
                    settings: config.campaign_settings(&file.script),
                    script_path: &script_path,
                    campaign: None,
                    archive_dir: &config.import_archive_dir(),
                },
                ImportMode {
                    validate_only: false,
                    accept_partial: config.imports.inbox_accept_partial,
                },
            )
            .await
        }
    };
    let (succeeded, report) = match outcome {
        Ok(report) => (
            report.status == ImportStatus::Finished,
            serde_json::to_value(&report)?,
        ),
        Err(e) => (false, serde_json::json!({ "error": format!("{e:#}") })),
    };
    let target = destination(&file.path, succeeded, Utc::now());
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let report_path = target.with_file_name(format!(
        "{}.report.json",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    std::fs::write(&report_path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("cannot write {}", report_path.display()))?;
    std::fs::rename(&file.path, &target).with_context(|| {
        format!(
            "cannot move {} to {}",
            file.path.display(),
            target.display()
        )
    })?;
    tracing::info!(
        script = %file.script,
        file = %target.display(),
        imported = succeeded,
        "inbox file handled"
    );
    Ok(())
}
