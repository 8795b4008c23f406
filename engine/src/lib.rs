//! The Dialcast engine: campaigns, records, imports, storage, pacing, the
//! per-call controller that wires `sip`, `media` and `scripts` together, and
//! result files. The single-call controller behind `dialcast dial` and
//! `dialcast listen` lives in [`single_call`].
//!
//! The command line is [`cli`], defined here once: the `dialcast` binary
//! (built by the portal crate, `portal-api/src/bin/dialcast/`) adds the portal to it through [`cli::Extension`],
//! and this crate's `dialcast-engine` binary runs it as it is for the
//! engine's integration tests.

pub mod amd_files;
pub mod blocklist;
pub mod campaign;
pub mod cli;
pub mod config;
pub mod demo;
pub mod import;
pub mod imports;
pub mod inbox;
pub mod loopback;
pub mod messaging;
pub mod metrics;
pub mod result_files;
pub mod results;
pub mod service;
pub mod single_call;
pub mod stats;
pub mod store;
pub mod voicelog;
