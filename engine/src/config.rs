//! The service configuration of `dialcast serve`, `import` and `campaign`: one
//! typed [`Config`] read from a TOML file, then overridden by environment
//! variables `DIALCAST__SECTION__KEY` (e.g. `DIALCAST__SIP__BIND`). Unknown
//! keys are errors that name the key. Secrets (trunk passwords) are never in
//! the file: a trunk names the environment variable that holds its password.
//!
//! `engine/dialcast.example.toml` documents every key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use std::collections::BTreeMap;

use crate::campaign::schedule::{DialRules, WEEKDAY_KEYS};
use crate::campaign::AmdTuning;
use crate::store::{
    CampaignSettings, OrganisationCalendar, ScheduleSettings, TrunkSettings, DEFAULT_NUMBER_ORDER,
};
use crate::voicelog::{Policy, VoicelogSettings, DEFAULT_RETENTION_DAYS};
use dialcast_media::{AmdConfig, RtpSocketMode};

mod clock;
mod voice;

pub use clock::{LocalTime, TimeZone};
pub use voice::{ForwardMode, ForwardingConfig, VoicemailConfig};

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "DIALCAST__";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub storage: StorageConfig,
    #[serde(default)]
    pub sip: SipSection,
    #[serde(default)]
    pub media: MediaSection,
    pub organisation: OrganisationConfig,
    #[serde(default)]
    pub audio: AudioConfig,
    #[serde(default)]
    pub scripts: ScriptsConfig,
    #[serde(default)]
    pub results: ResultsConfig,
    #[serde(default)]
    pub imports: ImportsConfig,
    pub trunks: Vec<TrunkConfig>,
    pub campaign: CampaignDefaults,
    #[serde(default)]
    pub callbacks: CallbacksConfig,
    /// Call recordings (`[voicelogs]`).
    #[serde(default)]
    pub voicelogs: VoicelogsConfig,
    /// Answering-machine detector tuning for every campaign (`[amd]`; any
    /// field of [`AmdConfig`], the rest default).
    #[serde(default)]
    pub amd: AmdConfig,
    /// Per-script overrides of the campaign defaults, by script name.
    #[serde(default)]
    pub script_settings: BTreeMap<String, ScriptOverrides>,
    /// What a call does on an answering machine (`[voicemail]`).
    #[serde(default)]
    pub voicemail: VoicemailConfig,
    /// Where and when `forward` steps connect (`[forwarding]`).
    #[serde(default)]
    pub forwarding: ForwardingConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// The SQLite database file (created with its tables if missing).
    pub database: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSection {
    pub bind: SocketAddr,
    pub tcp: bool,
}

impl Default for SipSection {
    fn default() -> Self {
        SipSection {
            bind: SocketAddr::from(([0, 0, 0, 0], 5060)),
            tcp: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSection {
    pub bind_ip: IpAddr,
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    pub inactivity_timeout_s: u64,
    /// RTP scheduler threads, calls spread round robin (default 1). One
    /// thread carries about 215 calls/s of the reminder flow on a 2-vCPU
    /// EPYC host (loadtest/RESULTS.md); more need as many spare cores.
    #[serde(default = "default_media_threads")]
    pub threads: usize,
    /// `per_call` (default): a socket and SDP port per call, for any peer.
    /// `per_thread`: one socket per media thread for all its calls, told
    /// apart by source address and SSRC, with batched system calls (about
    /// half the kernel's cost per packet); for trunks and SBCs that use a
    /// port per call or announce SSRCs (`media/src/demux.rs`).
    #[serde(default)]
    pub rtp_socket: RtpSocketMode,
    /// With `per_thread`: packets for one address leave as one UDP GSO
    /// buffer and come in through UDP GRO where the kernel allows (default
    /// true). It pays off when a peer takes many calls on one port (another
    /// media server, the callee farm); with a port per call it changes
    /// nothing. `media/src/send_batch.rs` has the figures.
    #[serde(default = "default_udp_offload")]
    pub udp_offload: bool,
}

fn default_media_threads() -> usize {
    1
}

fn default_udp_offload() -> bool {
    true
}

impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            bind_ip: IpAddr::from([0, 0, 0, 0]),
            rtp_port_min: 20000,
            rtp_port_max: 29999,
            inactivity_timeout_s: 30,
            threads: default_media_threads(),
            rtp_socket: RtpSocketMode::default(),
            udp_offload: default_udp_offload(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationConfig {
    pub name: String,
    /// ISO 3166-1 alpha-2 country for numbers without a country code.
    pub default_country: String,
    /// The organisation's time zone: its calendar, statistics days and
    /// result-file days are local days of this zone; UTC when absent.
    #[serde(default)]
    pub time_zone: TimeZone,
    /// Days on which calls are made, e.g. `["mon", "tue"]`.
    #[serde(default = "default_workdays")]
    pub workdays: Vec<String>,
    /// Holidays on one date only, `YYYY-MM-DD`.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Holidays every year, `MM-DD`.
    #[serde(default)]
    pub yearly_holidays: Vec<String>,
}

fn default_workdays() -> Vec<String> {
    WEEKDAY_KEYS[..5].iter().map(|d| d.to_string()).collect()
}

impl OrganisationConfig {
    /// The calendar the store keeps; errors name the key.
    pub fn calendar(&self) -> anyhow::Result<OrganisationCalendar> {
        let mut workdays = [false; 7];
        for day in &self.workdays {
            let at = WEEKDAY_KEYS
                .iter()
                .position(|key| key.eq_ignore_ascii_case(day))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "organisation.workdays: {day:?} is not one of {}",
                        WEEKDAY_KEYS.join(", ")
                    )
                })?;
            workdays[at] = true;
        }
        Ok(OrganisationCalendar {
            time_zone: self.time_zone.0.name().to_string(),
            workdays,
            holidays: self.holidays.clone(),
            yearly_holidays: self.yearly_holidays.clone(),
        })
    }
}

/// Call windows per weekday, each `HH:MM-HH:MM` local time; a day left out
/// has none.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeekWindows {
    #[serde(default)]
    pub mon: Vec<String>,
    #[serde(default)]
    pub tue: Vec<String>,
    #[serde(default)]
    pub wed: Vec<String>,
    #[serde(default)]
    pub thu: Vec<String>,
    #[serde(default)]
    pub fri: Vec<String>,
    #[serde(default)]
    pub sat: Vec<String>,
    #[serde(default)]
    pub sun: Vec<String>,
}

impl WeekWindows {
    fn days(&self) -> [Vec<String>; 7] {
        [
            self.mon.clone(),
            self.tue.clone(),
            self.wed.clone(),
            self.thu.clone(),
            self.fri.clone(),
            self.sat.clone(),
            self.sun.clone(),
        ]
    }
}

/// People who call back after a missed call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbacksConfig {
    /// A call from a number dialled within this many days is matched to
    /// its record.
    pub match_days: u32,
}

impl Default for CallbacksConfig {
    fn default() -> Self {
        CallbacksConfig { match_days: 14 }
    }
}

/// What one script does differently from `[campaign]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptOverrides {
    pub windows: Option<WeekWindows>,
    pub priority: Option<u32>,
    pub cps: Option<u32>,
    pub max_attempts_per_day: Option<u32>,
    /// The script's detector tuning: `[script_settings.<name>.amd]` keys
    /// over `[amd]` (merged when the file is read, see [`Config::parse`]).
    pub amd: Option<AmdConfig>,
    /// `[voicemail] wait_ms` for this script.
    pub voicemail_wait_ms: Option<u32>,
    /// `[script_settings.<name>.forwarding]` keys over `[forwarding]`.
    pub forwarding: Option<ForwardingConfig>,
    /// The script's voicelog policy, over `[voicelogs] policy`.
    pub voicelog: Option<Policy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoicelogsConfig {
    /// Where recordings are written (default: `voicelogs` beside the
    /// database file).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Which calls are recorded for scripts without their own
    /// `[script_settings.<name>] voicelog`: `none`, `all`, `from_success`
    /// (from the point of success on) or `forwarded` (from the start of a
    /// forward on).
    #[serde(default)]
    pub policy: Policy,
    /// Recordings older than this many days are deleted.
    #[serde(default = "default_voicelog_retention_days")]
    pub retention_days: u32,
}

fn default_voicelog_retention_days() -> u32 {
    DEFAULT_RETENTION_DAYS
}

impl Default for VoicelogsConfig {
    fn default() -> Self {
        VoicelogsConfig {
            dir: None,
            policy: Policy::None,
            retention_days: DEFAULT_RETENTION_DAYS,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioConfig {
    /// Directories with the organisation's own recordings, `<root>/<lang>/<clip>.wav`;
    /// later ones override earlier ones, and all override the built-in set.
    #[serde(default)]
    pub roots: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptsConfig {
    /// Where `dialcast import --script NAME` finds `NAME.toml`.
    pub dir: PathBuf,
}

impl Default for ScriptsConfig {
    fn default() -> Self {
        ScriptsConfig {
            dir: PathBuf::from("scripts"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsConfig {
    /// Where result files are written.
    pub dir: PathBuf,
    /// When `serve` writes the previous local day's files.
    #[serde(default = "default_nightly_at")]
    pub nightly_at: LocalTime,
    /// The organisation's outbox: a copy of every result file goes here.
    #[serde(default)]
    pub outbox_dir: Option<PathBuf>,
    /// Write XML result files beside the CSV for every script.
    #[serde(default)]
    pub xml: bool,
    /// Scripts that get XML result files even when `xml` is false.
    #[serde(default)]
    pub xml_scripts: Vec<String>,
}

fn default_nightly_at() -> LocalTime {
    LocalTime(chrono::NaiveTime::MIN + chrono::Duration::hours(2))
}

impl Default for ResultsConfig {
    fn default() -> Self {
        ResultsConfig {
            dir: PathBuf::from("results"),
            nightly_at: default_nightly_at(),
            outbox_dir: None,
            xml: false,
            xml_scripts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportsConfig {
    /// Where the original of every import file is kept (default: `imports`
    /// beside the database file).
    #[serde(default)]
    pub archive_dir: Option<PathBuf>,
    /// Archived originals older than this many days are deleted.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// The organisation's inbox (what an SFTP drop writes to): files in
    /// `<inbox_dir>/<script>/` are imported into that script's campaign.
    #[serde(default)]
    pub inbox_dir: Option<PathBuf>,
    /// Local times (organisation's zone) at which the inbox is picked up;
    /// empty: every [`crate::inbox::POLL_WITHOUT_TIMES`].
    #[serde(default)]
    pub inbox_times: Vec<LocalTime>,
    /// Import an inbox file's good rows even when others fail (otherwise
    /// such a file is not imported and moves to `failed/`).
    #[serde(default)]
    pub inbox_accept_partial: bool,
    /// The largest file the portal accepts as an upload, in bytes (larger
    /// ones are refused with 413 while they stream).
    #[serde(default = "default_max_upload_bytes")]
    pub max_upload_bytes: u64,
}

fn default_retention_days() -> u32 {
    92
}

fn default_max_upload_bytes() -> u64 {
    512 * 1024 * 1024
}

impl Default for ImportsConfig {
    fn default() -> Self {
        ImportsConfig {
            archive_dir: None,
            retention_days: default_retention_days(),
            inbox_dir: None,
            inbox_times: Vec::new(),
            inbox_accept_partial: false,
            max_upload_bytes: default_max_upload_bytes(),
        }
    }
}

impl ImportsConfig {
    /// The retention period in milliseconds.
    pub fn retention_ms(&self) -> i64 {
        i64::from(self.retention_days) * 24 * 3600 * 1000
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    pub name: String,
    pub uri: String,
    #[serde(default = "default_transport")]
    pub transport: String,
    pub max_cps: u32,
    pub max_channels: u32,
    pub caller_id: Option<String>,
    pub username: Option<String>,
    /// The environment variable holding the password (never the password).
    pub password_env: Option<String>,
}

impl std::fmt::Debug for TrunkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkConfig")
            .field("name", &self.name)
            .field("uri", &self.uri)
            .field("transport", &self.transport)
            .field("max_cps", &self.max_cps)
            .field("max_channels", &self.max_channels)
            .finish_non_exhaustive()
    }
}

fn default_transport() -> String {
    "udp".to_string()
}

impl TrunkConfig {
    pub fn settings(&self) -> TrunkSettings {
        TrunkSettings {
            name: self.name.clone(),
            uri: self.uri.clone(),
            transport: self.transport.clone(),
            max_cps: self.max_cps,
            max_channels: self.max_channels,
            caller_id: self.caller_id.clone(),
        }
    }

    /// The password from the environment variable the trunk names.
    pub fn password(&self) -> anyhow::Result<Option<String>> {
        match &self.password_env {
            None => Ok(None),
            Some(var) => std::env::var(var).map(Some).with_context(|| {
                format!(
                    "trunk {}: password_env names {var}, which is not set",
                    self.name
                )
            }),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignDefaults {
    /// The trunk new campaigns dial through (a `[[trunks]]` name).
    pub trunk: String,
    pub max_attempts: u32,
    pub retry_delay_s: u64,
    pub ring_timeout_s: u64,
    pub max_call_s: u64,
    pub amd: bool,
    /// Call windows; default Monday to Saturday 09:00-20:00.
    pub windows: Option<WeekWindows>,
    /// Attempts per record per local day (0: no limit).
    #[serde(default = "default_per_day")]
    pub max_attempts_per_day: u32,
    /// Dialled attempts per record in any rolling 7 days.
    #[serde(default = "default_weekly_cap")]
    pub weekly_cap: u32,
    /// Number columns in the order attempts try them.
    #[serde(default = "default_number_order")]
    pub number_order: Vec<String>,
    /// The normal rate of a campaign (calls/s); default the trunk's.
    pub cps: Option<u32>,
    /// Share of the trunk against other campaigns (1 or more).
    #[serde(default = "default_priority")]
    pub priority: u32,
}

fn default_per_day() -> u32 {
    ScheduleSettings::default().max_attempts_per_day
}

fn default_weekly_cap() -> u32 {
    ScheduleSettings::default().weekly_cap
}

fn default_number_order() -> Vec<String> {
    DEFAULT_NUMBER_ORDER.iter().map(|c| c.to_string()).collect()
}

fn default_priority() -> u32 {
    1
}

impl Config {
    /// The settings of a campaign of `script`: `[campaign]` with the
    /// script's `[script_settings.<script>]` over it.
    pub fn campaign_settings(&self, script: &str) -> CampaignSettings {
        let defaults = &self.campaign;
        let overrides = self
            .script_settings
            .get(script)
            .cloned()
            .unwrap_or_default();
        let windows = overrides
            .windows
            .as_ref()
            .or(defaults.windows.as_ref())
            .map_or_else(|| ScheduleSettings::default().windows, WeekWindows::days);
        CampaignSettings {
            max_attempts: defaults.max_attempts.max(1),
            retry_delay_ms: (defaults.retry_delay_s * 1000) as i64,
            ring_timeout_ms: (defaults.ring_timeout_s * 1000) as i64,
            max_call_ms: (defaults.max_call_s * 1000) as i64,
            amd: defaults.amd,
            schedule: ScheduleSettings {
                windows,
                max_attempts_per_day: overrides
                    .max_attempts_per_day
                    .unwrap_or(defaults.max_attempts_per_day),
                weekly_cap: defaults.weekly_cap,
                number_order: defaults.number_order.clone(),
                cps: overrides.cps.or(defaults.cps),
                priority: overrides.priority.unwrap_or(defaults.priority).max(1),
            },
        }
    }
}

impl Config {
    /// Reads the file, applies the environment overrides and checks it.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        Config::parse(&text, &path.display().to_string(), std::env::vars())
    }

    /// Parses `text` (named `origin` in errors) with `env` as the environment.
    pub fn parse(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("{origin}: {e}"))?;
        for (name, value) in env {
            let Some(path) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            apply_override(&mut table, path, &value)
                .with_context(|| format!("environment variable {name}"))?;
        }
        inherit_amd(&mut table);
        let config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("{origin}: {e}"))?;
        config.check(origin)?;
        Ok(config)
    }

    /// The detector tuning of each script with its own, and of the rest.
    pub fn amd_tuning(&self) -> AmdTuning {
        AmdTuning::new(
            self.amd,
            self.script_settings
                .iter()
                .filter_map(|(name, o)| o.amd.map(|amd| (name.clone(), amd))),
        )
    }

    fn check(&self, origin: &str) -> anyhow::Result<()> {
        self.voice_tuning()
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        self.amd
            .check()
            .map_err(|e| anyhow::anyhow!("{origin}: amd.{e}"))?;
        for (name, o) in &self.script_settings {
            if let Some(amd) = &o.amd {
                amd.check()
                    .map_err(|e| anyhow::anyhow!("{origin}: script_settings.{name}.amd.{e}"))?;
            }
        }
        anyhow::ensure!(
            (1..=64).contains(&self.media.threads),
            "{origin}: media.threads must be between 1 and 64, not {}",
            self.media.threads
        );
        anyhow::ensure!(
            self.media.rtp_port_min < self.media.rtp_port_max,
            "{origin}: media.rtp_port_min must be below media.rtp_port_max"
        );
        anyhow::ensure!(
            self.organisation.default_country.len() == 2,
            "{origin}: organisation.default_country must be an ISO 3166-1 alpha-2 code such as NL"
        );
        for trunk in &self.trunks {
            trunk
                .transport
                .parse::<dialcast_sip::Transport>()
                .map_err(|e| anyhow::anyhow!("{origin}: trunks.{}.transport: {e}", trunk.name))?;
            anyhow::ensure!(
                trunk.max_cps > 0 && trunk.max_channels > 0,
                "{origin}: trunks.{}: max_cps and max_channels must be above 0",
                trunk.name
            );
        }
        anyhow::ensure!(
            self.trunk(&self.campaign.trunk).is_some(),
            "{origin}: campaign.trunk names {:?}, which is not in [[trunks]]",
            self.campaign.trunk
        );
        for trunk in &self.trunks {
            anyhow::ensure!(
                trunk
                    .caller_id
                    .as_deref()
                    .is_some_and(|id| !id.trim().is_empty()),
                "{origin}: trunks.{}.caller_id is missing; every call must present a caller ID",
                trunk.name
            );
        }
        let calendar = self
            .organisation
            .calendar()
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        let scripts = std::iter::once(("campaign".to_string(), String::new())).chain(
            self.script_settings
                .keys()
                .map(|name| (format!("script_settings.{name}"), name.clone())),
        );
        for (key, script) in scripts {
            let settings = self.campaign_settings(&script);
            DialRules::new(&calendar, &settings.schedule).map_err(|e| {
                let organisation_key = e.field == "time_zone" || e.field.contains("holidays");
                let section = if organisation_key {
                    "organisation".to_string()
                } else {
                    key.clone()
                };
                anyhow::anyhow!("{origin}: {section}.{e}")
            })?;
        }
        Ok(())
    }

    /// Where voicelogs are written.
    pub fn voicelog_dir(&self) -> PathBuf {
        self.voicelogs.dir.clone().unwrap_or_else(|| {
            self.storage
                .database
                .parent()
                .unwrap_or(Path::new("."))
                .join("voicelogs")
        })
    }

    /// The voicelog policy of every script, the directory and retention.
    pub fn voicelog_settings(&self) -> VoicelogSettings {
        VoicelogSettings {
            dir: self.voicelog_dir(),
            default_policy: self.voicelogs.policy,
            scripts: self
                .script_settings
                .iter()
                .filter_map(|(name, o)| o.voicelog.map(|p| (name.clone(), p)))
                .collect(),
            retention_days: self.voicelogs.retention_days,
        }
    }

    /// Where import originals are archived.
    pub fn import_archive_dir(&self) -> PathBuf {
        self.imports.archive_dir.clone().unwrap_or_else(|| {
            self.storage
                .database
                .parent()
                .unwrap_or(Path::new("."))
                .join("imports")
        })
    }

    pub fn trunk(&self, name: &str) -> Option<&TrunkConfig> {
        self.trunks.iter().find(|t| t.name == name)
    }
}

/// Each `[script_settings.<name>.amd]` table takes the `[amd]` keys it does
/// not set itself (tables such as `beep` key by key), so a script's tuning is
/// `[amd]` with its own changes, not the built-in defaults with them.
fn inherit_amd(table: &mut toml::Table) {
    fn merge(child: &mut toml::Table, parent: &toml::Table) {
        for (key, value) in parent {
            match (child.get_mut(key), value) {
                (Some(toml::Value::Table(c)), toml::Value::Table(p)) => merge(c, p),
                (Some(_), _) => {}
                (None, _) => {
                    child.insert(key.clone(), value.clone());
                }
            }
        }
    }
    let Some(toml::Value::Table(global)) = table.get("amd").cloned() else {
        return;
    };
    let Some(toml::Value::Table(scripts)) = table.get_mut("script_settings") else {
        return;
    };
    for (_, script) in scripts.iter_mut() {
        if let toml::Value::Table(script) = script {
            if let Some(toml::Value::Table(amd)) = script.get_mut("amd") {
                merge(amd, &global);
            }
        }
    }
}

/// `SECTION__KEY=value` sets `[section] key = value`; the value is read as a
/// TOML value when it is one (`30`, `true`), else as a string.
fn apply_override(table: &mut toml::Table, path: &str, value: &str) -> anyhow::Result<()> {
    let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
    let [section, key] = parts.as_slice() else {
        anyhow::bail!("expected DIALCAST__SECTION__KEY");
    };
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let entry = table
        .entry(section.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let toml::Value::Table(section_table) = entry else {
        anyhow::bail!("{section} is not a section");
    };
    section_table.insert(key.clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/dialcast.example.toml"
        ))
        .unwrap_or_default()
    }

    #[test]
    fn the_example_config_parses() {
        let config = Config::parse(&example(), "dialcast.example.toml", Vec::new());
        assert!(config.is_ok(), "{config:?}");
    }

    #[test]
    fn forwarding_and_voicemail_per_script() {
        let text = example().replace(
            "# uri = \"sip:queue@callcentre.example.net:5060\"",
            "uri = \"sip:queue@10.0.0.9:5060\"",
        ) + "\n[script_settings.night]\nvoicemail_wait_ms = 3000\n[script_settings.night.forwarding]\nreference_header = \"X-Case\"\n";
        let config = Config::parse(&text, "x.toml", Vec::new()).expect("parses");
        let tuning = config.voice_tuning().expect("valid");
        let night = tuning.for_script("night");
        assert_eq!(night.voicemail_wait_ms, 3000);
        let target = night.forward.expect("a call centre");
        assert_eq!(target.uri, "sip:queue@10.0.0.9:5060");
        assert_eq!(target.reference_header, "X-Case");
        assert_eq!(target.ring_timeout_ms, 20_000);
        assert!(target.opening_hours.is_some_and(|h| h[5].is_empty()));
        let other = tuning.for_script("other");
        assert_eq!(other.voicemail_wait_ms, 5000);
        assert_eq!(
            other.forward.map(|f| f.reference_header),
            Some("X-Dialcast-Reference".to_string())
        );

        let refer = text.replace("mode = \"bridge\"", "mode = \"refer\"");
        let config = Config::parse(&refer, "x.toml", Vec::new()).expect("parses");
        let target = config
            .voice_tuning()
            .expect("valid")
            .for_script("x")
            .forward;
        assert_eq!(target.map(|t| t.mode), Some(ForwardMode::Refer));
    }

    #[test]
    fn media_threads_default_to_one_and_zero_is_refused() {
        let config = Config::parse(&example(), "x.toml", Vec::new()).expect("parses");
        assert_eq!(config.media.threads, 1);
        let two = vec![("DIALCAST__MEDIA__THREADS".to_string(), "2".to_string())];
        let config = Config::parse(&example(), "x.toml", two).expect("parses");
        assert_eq!(config.media.threads, 2);
        let zero = vec![("DIALCAST__MEDIA__THREADS".to_string(), "0".to_string())];
        let err = Config::parse(&example(), "x.toml", zero).expect_err("refused");
        assert!(err.to_string().contains("media.threads"), "{err}");
    }

    #[test]
    fn rtp_socket_defaults_to_per_call_and_takes_per_thread() {
        let config = Config::parse(&example(), "x.toml", Vec::new()).expect("parses");
        assert_eq!(config.media.rtp_socket, RtpSocketMode::PerCall);
        let shared = vec![(
            "DIALCAST__MEDIA__RTP_SOCKET".to_string(),
            "per_thread".to_string(),
        )];
        let config = Config::parse(&example(), "x.toml", shared).expect("parses");
        assert_eq!(config.media.rtp_socket, RtpSocketMode::PerThread);
        let bad = vec![("DIALCAST__MEDIA__RTP_SOCKET".to_string(), "one".to_string())];
        let err = Config::parse(&example(), "x.toml", bad).expect_err("refused");
        assert!(format!("{err:#}").contains("rtp_socket"), "{err:#}");
    }

    #[test]
    fn udp_offload_defaults_to_on_and_can_be_turned_off() {
        let config = Config::parse(&example(), "x.toml", Vec::new()).expect("parses");
        assert!(config.media.udp_offload);
        let off = vec![(
            "DIALCAST__MEDIA__UDP_OFFLOAD".to_string(),
            "false".to_string(),
        )];
        let config = Config::parse(&example(), "x.toml", off).expect("parses");
        assert!(!config.media.udp_offload);
    }

    #[test]
    fn environment_overrides_a_key() {
        let env = vec![
            (
                "DIALCAST__SIP__BIND".to_string(),
                "127.0.0.1:5070".to_string(),
            ),
            (
                "DIALCAST__CAMPAIGN__MAX_ATTEMPTS".to_string(),
                "7".to_string(),
            ),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let config = Config::parse(&example(), "x.toml", env).expect("parses");
        assert_eq!(config.sip.bind, SocketAddr::from(([127, 0, 0, 1], 5070)));
        assert_eq!(config.campaign.max_attempts, 7);
    }

    #[test]
    fn voicelog_policies_come_per_script_over_the_default() {
        let config = Config::parse(&example(), "x.toml", Vec::new()).expect("parses");
        let v = config.voicelog_settings();
        assert_eq!(v.default_policy, Policy::None);
        assert_eq!(v.policy_for("appointment_reminder"), Policy::FromSuccess);
        assert_eq!(v.policy_for("payment_reminder"), Policy::None);
        assert_eq!(v.retention_days, 90);
        let env = vec![("DIALCAST__VOICELOGS__POLICY".to_string(), "all".to_string())];
        let config = Config::parse(&example(), "x.toml", env).expect("parses");
        assert_eq!(config.voicelog_settings().policy_for("other"), Policy::All);
        let text = example().replace("policy = \"none\"", "policy = \"everything\"");
        let err = Config::parse(&text, "x.toml", Vec::new())
            .expect_err("rejected")
            .to_string();
        assert!(
            err.contains("voicelogs") || err.contains("everything"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_key_is_named() {
        let text = example().replace("[sip]", "[sip]\nbindd = 1");
        let err = Config::parse(&text, "x.toml", Vec::new())
            .expect_err("rejected")
            .to_string();
        assert!(err.contains("bindd"), "{err}");
        assert!(err.contains("x.toml"), "{err}");
    }

    #[test]
    fn a_campaign_trunk_must_exist() {
        let text = example().replace("trunk = \"main\"", "trunk = \"nope\"");
        let err = Config::parse(&text, "x.toml", Vec::new())
            .expect_err("rejected")
            .to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn scripts_override_the_campaign_windows_and_priority() {
        let text = format!(
            "{}\n[script_settings.night]\npriority = 3\nwindows = {{ sun = [\"10:00-12:00\"] }}\n",
            example()
        );
        let config = Config::parse(&text, "x.toml", Vec::new()).expect("parses");
        let night = config.campaign_settings("night");
        assert_eq!(night.schedule.priority, 3);
        assert_eq!(night.schedule.windows[6], vec!["10:00-12:00".to_string()]);
        assert!(night.schedule.windows[0].is_empty());
        let other = config.campaign_settings("payment_reminder");
        assert_eq!(other.schedule.priority, 1);
        assert!(!other.schedule.windows[0].is_empty());
    }

    #[test]
    fn a_scripts_amd_tuning_is_amd_with_its_own_changes() {
        let text = example()
            .replace("beep_wait_ms = 1200", "beep_wait_ms = 950")
            .replace("max_hz = 2050.0", "max_hz = 1900.0")
            + "\n[script_settings.night]\n[script_settings.night.amd]\nmax_greeting_ms = 5000\n[script_settings.night.amd.beep]\nmin_ms = 100\n";
        let config = Config::parse(&text, "x.toml", Vec::new()).expect("parses");
        let tuning = config.amd_tuning();
        let night = tuning.for_script("night");
        // Its own keys, [amd]'s for the rest (tables key by key), and the
        // built-in defaults for what neither sets.
        assert_eq!(night.max_greeting_ms, 5000);
        assert_eq!(night.beep.min_ms, 100);
        assert_eq!(night.beep_wait_ms, 950);
        assert_eq!(night.beep.max_hz, 1900.0);
        let reminder = tuning.for_script("appointment_reminder");
        assert_eq!(
            (reminder.beep_wait_ms, reminder.beep.max_hz),
            (1500, 1900.0)
        );
        let other = tuning.for_script("payment_reminder");
        assert_eq!(other, config.amd);
        assert_eq!(other.beep_wait_ms, 950);
        // Without an [amd] table the built-in defaults hold.
        let start = example().find("[amd]").expect("[amd] in the example");
        let end = example().find("# Per script").expect("script section");
        let mut bare = example();
        bare.replace_range(start..end, "");
        let config = Config::parse(&bare, "x.toml", Vec::new()).expect("parses");
        assert_eq!(config.amd, dialcast_media::AmdConfig::default());
        // The environment reaches [amd] like any section.
        let env = vec![(
            "DIALCAST__AMD__BEEP_WAIT_MS".to_string(),
            "1000".to_string(),
        )];
        let config = Config::parse(&bare, "x.toml", env).expect("parses");
        assert_eq!(config.amd.beep_wait_ms, 1000);
    }

    #[test]
    fn bad_amd_keys_and_values_are_named() {
        let text = example().replace("beep_wait_ms = 1200", "beep_wait = 1200");
        let err = Config::parse(&text, "x.toml", Vec::new())
            .expect_err("rejected")
            .to_string();
        assert!(err.contains("beep_wait"), "{err}");
        let text = example() + "\n[script_settings.night.amd]\nshort_greeting_ms = 9000\n";
        let err = Config::parse(&text, "x.toml", Vec::new())
            .expect_err("rejected")
            .to_string();
        assert!(
            err.contains("script_settings.night.amd.short_greeting_ms"),
            "{err}"
        );
    }

    #[test]
    fn bad_windows_and_zones_name_their_key() {
        let text = format!(
            "{}\n[script_settings.night]\nwindows = {{ tue = [\"21:00-08:00\"] }}\n",
            example()
        );
        let err = Config::parse(&text, "x.toml", Vec::new())
            .expect_err("rejected")
            .to_string();
        assert!(err.contains("script_settings.night.windows.tue"), "{err}");
        let text = example().replace("Europe/Amsterdam", "Europe/Atlantis");
        let err = Config::parse(&text, "x.toml", Vec::new())
            .expect_err("rejected")
            .to_string();
        assert!(err.contains("organisation.time_zone"), "{err}");
    }

    #[test]
    fn a_trunk_without_caller_id_is_refused() {
        let text = example().replace("caller_id = \"+31201234567\"", "");
        let err = Config::parse(&text, "x.toml", Vec::new())
            .expect_err("rejected")
            .to_string();
        assert!(err.contains("caller_id"), "{err}");
    }

    #[test]
    fn debug_output_has_no_password_variable_value() {
        let config = Config::parse(&example(), "x.toml", Vec::new()).expect("parses");
        let shown = format!("{config:?}");
        assert!(!shown.contains("password"), "{shown}");
    }
}
