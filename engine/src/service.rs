//! The long-lived service and its shell commands: `dialcast serve` runs every
//! campaign that is `running` in the store (and, at start and hourly, cleans
//! up imports and voicelogs: see [`crate::imports`] and
//! [`crate::voicelog::housekeeping`]); `dialcast import` and
//! `dialcast campaign start|status` change the store it reads (the same SQLite
//! file, from another process), so the shell drives a running service.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{NaiveDate, Utc};
use dialcast_media::{MediaConfig, MediaEngine};
use dialcast_scripts::{default_audio_root, AudioCatalog, Script};
use dialcast_sip::{InboundCalls, SipConfig, SipEndpoint};
use tokio_util::sync::CancellationToken;

use crate::campaign::callback::CallbackSettings;
use crate::campaign::target::Credentials;
use crate::campaign::{now_ms, Engine, EngineParts};
use crate::config::Config;
use crate::imports::{self, ValidationReport};
use crate::result_files::{self, ResultFileSettings};
use crate::results;
use crate::store::{
    BlocklistStore, CampaignSettings, CampaignState, Id, ImportStore, OrganisationCalendar,
    SqliteStore, Store, TrunkSettings,
};

/// How often `serve` looks for campaigns to start.
const CAMPAIGN_POLL: Duration = Duration::from_secs(1);
/// How often `serve` deletes archived import files past their retention.
const IMPORT_PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The built-in audio set, then the organisation's roots.
pub fn audio_catalog(extra_roots: &[PathBuf]) -> anyhow::Result<AudioCatalog> {
    let mut roots = vec![default_audio_root()];
    roots.extend(extra_roots.iter().cloned());
    AudioCatalog::from_roots(&roots).context("cannot read the audio directories")
}

pub async fn open_store(config: &Config) -> anyhow::Result<Arc<SqliteStore>> {
    let store = SqliteStore::open(&config.storage.database)
        .await
        .with_context(|| format!("cannot open {}", config.storage.database.display()))?;
    Ok(Arc::new(store))
}

/// The store for reading only (status), without migrations or writes.
pub async fn open_store_read_only(config: &Config) -> anyhow::Result<Arc<SqliteStore>> {
    let store = SqliteStore::open_read_only(&config.storage.database)
        .await
        .with_context(|| format!("cannot open {}", config.storage.database.display()))?;
    Ok(Arc::new(store))
}

/// Everything an import needs besides the file.
pub struct ImportTarget<'a> {
    pub organisation: &'a str,
    pub default_country: &'a str,
    pub calendar: OrganisationCalendar,
    pub trunk: TrunkSettings,
    pub settings: CampaignSettings,
    /// The script's file; its name (without `.toml`) names the script.
    pub script_path: &'a Path,
    /// Defaults to the script's name.
    pub campaign: Option<&'a str>,
    /// Where the original is archived.
    pub archive_dir: &'a Path,
}

/// What `dialcast import FILE` does after uploading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportMode {
    /// Only validate (the import stays `validated`, nothing is imported).
    pub validate_only: bool,
    /// Import the passing rows even when others fail.
    pub accept_partial: bool,
}

/// Validates the script, uploads the file into the campaign (created idle
/// if new), then validates it, or imports it (see [`crate::imports`] for
/// the rules). Returns the report; whether rows were imported is its
/// `status` (`finished`) and `inserted`.
pub async fn import_file<S: ImportStore + BlocklistStore>(
    store: &S,
    catalog: &AudioCatalog,
    file: &Path,
    target: ImportTarget<'_>,
    mode: ImportMode,
) -> anyhow::Result<ValidationReport> {
    let script = Script::load(target.script_path, catalog)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("script {} rejected", target.script_path.display()))?;
    let script_name = script.name().to_string();
    let source = std::fs::read_to_string(target.script_path)
        .with_context(|| format!("cannot read {}", target.script_path.display()))?;
    let script_file = target
        .script_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{script_name}.toml"));
    let campaign_name = target.campaign.unwrap_or(&script_name).to_string();
    let campaign = prepare_campaign(
        store,
        &CampaignSetup {
            organisation: target.organisation,
            default_country: target.default_country,
            calendar: &target.calendar,
            trunk: &target.trunk,
            settings: &target.settings,
            script_name: &script_name,
            script_file: &script_file,
            script_source: &source,
            campaign: &campaign_name,
        },
    )
    .await?;
    let organisation = store
        .ensure_organisation(target.organisation, target.default_country)
        .await?;
    let import = imports::upload(
        store,
        &imports::Upload {
            organisation,
            campaign,
            script: &script_name,
            file,
            name: None,
            archive_dir: target.archive_dir,
        },
        now_ms(),
    )
    .await?;
    let mut options = imports::PassOptions::new(target.default_country);
    options.accept_partial = mode.accept_partial;
    if mode.validate_only {
        imports::validate(store, import, &options).await
    } else {
        imports::confirm(store, import, &options).await
    }
}

/// What a campaign is made of.
pub struct CampaignSetup<'a> {
    pub organisation: &'a str,
    pub default_country: &'a str,
    pub calendar: &'a OrganisationCalendar,
    pub trunk: &'a TrunkSettings,
    pub settings: &'a CampaignSettings,
    pub script_name: &'a str,
    pub script_file: &'a str,
    pub script_source: &'a str,
    pub campaign: &'a str,
}

/// Stores the organisation with its calendar, the trunk and the script
/// (updating them if they exist) and creates the campaign if new (idle; an
/// existing one takes the new schedule). Returns the campaign's id.
pub async fn prepare_campaign<S: Store>(
    store: &S,
    setup: &CampaignSetup<'_>,
) -> anyhow::Result<Id> {
    let organisation = store
        .ensure_organisation(setup.organisation, setup.default_country)
        .await?;
    store
        .set_organisation_calendar(organisation, setup.calendar)
        .await?;
    let trunk = store.upsert_trunk(organisation, setup.trunk).await?;
    let script = store
        .upsert_script(
            organisation,
            setup.script_name,
            setup.script_file,
            setup.script_source,
        )
        .await?;
    Ok(store
        .ensure_campaign(organisation, setup.campaign, script, trunk, setup.settings)
        .await?)
}

/// Writes the result file of `campaign` alone for the local `day` of
/// `time_zone` into `dir`, atomically (a temporary file renamed into
/// place), without registering it. Returns its path. `serve` and
/// `dialcast campaign results` write per script instead, see
/// [`crate::result_files`].
pub async fn write_result_file<S: Store>(
    store: &S,
    campaign: Id,
    script_name: &str,
    day: NaiveDate,
    time_zone: chrono_tz::Tz,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let range = crate::stats::range::day_range(day, time_zone)
        .with_context(|| format!("no range for day {day}"))?;
    let rows = store.result_rows(campaign, range.from, range.to).await?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(results::file_name(script_name, day, "csv"));
    let temporary = path.with_extension("csv.partial");
    {
        let file = std::fs::File::create(&temporary)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        let mut out = std::io::BufWriter::new(file);
        results::write_csv(&rows, &mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, &path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    crate::metrics::result_file_written("csv");
    Ok(path)
}

/// Starts SIP and media as configured.
pub async fn start_network(
    config: &Config,
) -> anyhow::Result<(SipEndpoint, InboundCalls, MediaEngine)> {
    let (sip, inbound) = SipEndpoint::start(SipConfig {
        bind: config.sip.bind,
        tcp: config.sip.tcp,
        ..SipConfig::default()
    })
    .await
    .with_context(|| format!("cannot listen for SIP on {}", config.sip.bind))?;
    let media = MediaEngine::start_with_threads(
        MediaConfig {
            bind_ip: config.media.bind_ip,
            port_min: config.media.rtp_port_min,
            port_max: config.media.rtp_port_max,
            inactivity_timeout: Duration::from_secs(config.media.inactivity_timeout_s),
            rtp_socket: config.media.rtp_socket,
            udp_offload: config.media.udp_offload,
            ..MediaConfig::default()
        },
        config.media.threads,
    )?;
    Ok((sip, inbound, media))
}

/// Holds `<database>.serve.lock` exclusively while a service runs on that
/// database. Recovery at start marks every attempt still dialing as
/// interrupted, which is only right when no other service is dialing them,
/// so a second `serve` on the same file must refuse to start.
pub struct ServeLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl ServeLock {
    pub fn acquire(database: &Path) -> anyhow::Result<ServeLock> {
        let path = PathBuf::from(format!("{}.serve.lock", database.display()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(ServeLock { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another `dialcast serve` is running on {} (it holds {})",
                database.display(),
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `dialcast serve`: runs running campaigns until `cancel`, writing each
/// campaign's result file when it finishes.
pub async fn serve(
    config: Config,
    stats: crate::stats::StatsFeed,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let _lock = ServeLock::acquire(&config.storage.database)?;
    let store = open_store(&config).await?;
    let catalog = audio_catalog(&config.audio.roots)?;
    let (sip, mut inbound, media) = start_network(&config).await?;
    let mut credentials = HashMap::new();
    for trunk in &config.trunks {
        crate::metrics::register_trunk(&trunk.name);
        credentials.insert(
            trunk.name.clone(),
            Credentials {
                username: trunk.username.clone(),
                password: trunk.password()?,
            },
        );
    }
    let engine = Engine::new(EngineParts {
        store: Arc::clone(&store),
        sip: sip.clone(),
        media,
        catalog,
        credentials,
        rtp_bind: config.media.bind_ip,
        amd: config.amd_tuning(),
        voice: config.voice_tuning()?,
        voicelogs: config.voicelog_settings(),
        stats,
    })?;
    let recovered = engine.recover().await?;
    if recovered > 0 {
        tracing::warn!("{recovered} attempts were cut off by the last stop: marked interrupted");
    }
    let voicelog_dir = config.voicelog_dir();
    let voicelog_retention_ms = config.voicelog_settings().retention_ms();
    let settled =
        crate::voicelog::housekeeping::repair_unsettled(&*store, &voicelog_dir, now_ms()).await?;
    if settled != Default::default() {
        tracing::warn!(
            repaired = settled.repaired,
            intact = settled.intact,
            missing = settled.missing,
            "voicelogs cut off by the last stop settled"
        );
    }
    let interrupted = imports::recover_imports(&*store, now_ms()).await?;
    if interrupted > 0 {
        tracing::warn!("{interrupted} imports were cut off by the last stop: marked failed");
    }
    let mut purged_at: Option<tokio::time::Instant> = None;
    tracing::info!(sip = %sip.local_addr(), "dialcast serving");
    let files = Arc::new(ResultFileSettings::from_config(&config));
    let nightly = tokio::spawn(result_files::nightly::run(
        Arc::clone(&store),
        (*files).clone(),
        config.results.nightly_at.0,
        cancel.child_token(),
    ));

    let organisation = store
        .ensure_organisation(
            &config.organisation.name,
            &config.organisation.default_country,
        )
        .await?;
    let callbacks = Arc::new(CallbackSettings {
        organisation,
        default_country: config.organisation.default_country.clone(),
        match_days: config.callbacks.match_days,
    });
    let inbox_task = tokio::spawn(crate::inbox::pickup::run(
        Arc::clone(&store),
        Arc::new(audio_catalog(&config.audio.roots)?),
        Arc::new(config.clone()),
        cancel.child_token(),
    ));
    let email_task = tokio::spawn(crate::messaging::email::run(
        Arc::clone(&store),
        Arc::new(audio_catalog(&config.audio.roots)?),
        cancel.child_token(),
    ));
    let inbound_task = {
        let engine = Arc::clone(&engine);
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let calls = tokio_util::task::TaskTracker::new();
            loop {
                let call = tokio::select! {
                    call = inbound.next() => call,
                    _ = cancel.cancelled() => None,
                };
                let Some(call) = call else { break };
                let engine = Arc::clone(&engine);
                let callbacks = Arc::clone(&callbacks);
                calls.spawn(async move { engine.answer_callback(call, &callbacks).await });
            }
            calls.close();
            calls.wait().await;
        })
    };

    let mut running: HashMap<Id, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        if purged_at.is_none_or(|at| at.elapsed() >= IMPORT_PURGE_EVERY) {
            purged_at = Some(tokio::time::Instant::now());
            match imports::purge_expired_import_files(
                &*store,
                config.imports.retention_ms(),
                now_ms(),
            )
            .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!("{n} import files past their retention deleted"),
                Err(e) => tracing::error!("import files not purged: {e:#}"),
            }
            match crate::voicelog::housekeeping::purge_expired(
                &*store,
                &voicelog_dir,
                voicelog_retention_ms,
                now_ms(),
            )
            .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!("{n} voicelogs past their retention deleted"),
                Err(e) => tracing::error!("voicelogs not purged: {e:#}"),
            }
        }
        engine
            .sample_engine_gauges(config.organisation.time_zone.0)
            .await;
        running.retain(|_, task| !task.is_finished());
        for campaign in store.campaigns_in_state(CampaignState::Running).await? {
            if running.contains_key(&campaign.id) {
                continue;
            }
            let engine = Arc::clone(&engine);
            let cancel = cancel.child_token();
            let files = Arc::clone(&files);
            let id = campaign.id;
            running.insert(
                id,
                tokio::spawn(async move {
                    let name = campaign.name.clone();
                    if let Err(e) = engine.run_campaign(campaign, cancel).await {
                        tracing::error!(campaign = %name, "campaign stopped: {e:#}");
                        return;
                    }
                    let finished = engine
                        .store()
                        .campaign_by_name(&name)
                        .await
                        .is_ok_and(|c| c.state == CampaignState::Finished);
                    if finished {
                        match write_today(&**engine.store(), &files, id).await {
                            Ok(paths) => {
                                tracing::info!(campaign = %name, "result files {paths:?}")
                            }
                            Err(e) => {
                                tracing::error!(campaign = %name, "result file not written: {e:#}")
                            }
                        }
                    }
                }),
            );
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(CAMPAIGN_POLL) => {}
        }
    }
    tracing::info!("stopping: waiting for calls in progress");
    for (_, task) in running {
        task.await.ok();
    }
    inbound_task.await.ok();
    inbox_task.await.ok();
    email_task.await.ok();
    nightly.await.ok();
    sip.shutdown();
    Ok(())
}

/// Writes the files of the campaign's script for today so far (local day).
pub async fn write_today<S: Store>(
    store: &S,
    settings: &ResultFileSettings,
    campaign: Id,
) -> anyhow::Result<Vec<String>> {
    let now = Utc::now();
    let day = crate::stats::range::today(now, settings.time_zone);
    let script = store.script_of_campaign(campaign).await?;
    let files =
        result_files::write_script_day(store, settings, &script, day, now.timestamp_millis())
            .await?;
    Ok(files.into_iter().map(|f| f.path).collect())
}
