//! Dialcast's dashboards and alerts, and what checks them.
//!
//! The product is the files beside this crate: the Grafana dashboards
//! (`grafana/*.json`, written by `tools/build_dashboards.py`), Grafana's
//! provisioning files, the Prometheus scrape config, the alert rules and
//! their promtool unit tests (`prometheus/`). This crate owns the checks:
//! [`grafana`] reads the dashboards, checks their structure (unique ids, a
//! 24-column grid without overlap, every query through the `datasource`
//! variable) and lists every panel expression with the template variables
//! substituted; [`prometheus`] is the small client the `prometheus`
//! feature's test uses to run those expressions against a real Prometheus
//! scraping a real engine.

pub mod grafana;
pub mod prometheus;

use std::path::PathBuf;

/// The `dashboards/` directory (this crate's root).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
