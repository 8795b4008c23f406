//! Reads a service's Prometheus text exposition: one GET over plain HTTP
//! (the benchmark talks to its own child on loopback, so no client crate),
//! and the count, mean and bucket quantiles of one histogram series. The
//! campaign benchmark uses it for the store's operation times
//! (`dialcast_store_operation_seconds`), which say whether the claim path
//! or the media threads bound the calls per second.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

/// `GET /metrics` from `addr`; the body.
pub fn fetch(addr: SocketAddr) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("metrics: cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .with_context(|| format!("metrics: cannot read the answer of {addr}"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .with_context(|| format!("metrics: {addr} sent no HTTP header"))?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "metrics: {addr} answered {:?}",
        head.lines().next().unwrap_or_default()
    );
    Ok(body.to_string())
}

/// One histogram series, summarised.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HistogramSummary {
    pub count: u64,
    pub mean_ms: f64,
    /// Upper bound of the bucket that holds the median / the 99th
    /// percentile (the exposition keeps no finer figure).
    pub p50_le_ms: Option<f64>,
    pub p99_le_ms: Option<f64>,
}

/// The series of histogram `name` by the value of `label`, each summarised.
pub fn histograms_by(text: &str, name: &str, label: &str) -> BTreeMap<String, HistogramSummary> {
    #[derive(Default)]
    struct Series {
        buckets: Vec<(f64, u64)>,
        count: u64,
        sum: f64,
    }
    let mut all: BTreeMap<String, Series> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Some(rest) = series.strip_prefix(name) else {
            continue;
        };
        let (suffix, labels) = match rest.split_once('{') {
            Some((suffix, labels)) => (suffix, labels.trim_end_matches('}')),
            None => (rest, ""),
        };
        let labels = parse_labels(labels);
        let Some(key) = labels.get(label) else {
            continue;
        };
        let entry = all.entry(key.clone()).or_default();
        match suffix {
            "_bucket" => {
                let le = labels.get("le").map(String::as_str);
                let le = match le {
                    Some("+Inf") => f64::INFINITY,
                    Some(v) => v.parse().unwrap_or(f64::NAN),
                    None => continue,
                };
                entry
                    .buckets
                    .push((le, value.parse::<f64>().unwrap_or(0.0) as u64));
            }
            "_count" => entry.count = value.parse::<f64>().unwrap_or(0.0) as u64,
            "_sum" => entry.sum = value.parse().unwrap_or(0.0),
            _ => {}
        }
    }
    all.into_iter()
        .map(|(key, mut s)| {
            s.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let quantile = |q: f64| {
                let rank = (q * s.count as f64).ceil() as u64;
                s.buckets
                    .iter()
                    .find(|(_, cumulative)| *cumulative >= rank.max(1))
                    .map(|(le, _)| le * 1000.0)
                    .filter(|le| le.is_finite())
            };
            let summary = HistogramSummary {
                count: s.count,
                mean_ms: if s.count == 0 {
                    0.0
                } else {
                    s.sum / s.count as f64 * 1000.0
                },
                p50_le_ms: quantile(0.5),
                p99_le_ms: quantile(0.99),
            };
            (key, summary)
        })
        .collect()
}

/// `a="x",b="y"` (values without escaped quotes, as ours are).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    text.split("\",")
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.trim().to_string(), value.trim_matches('"').to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP dialcast_store_operation_seconds Store calls.
# TYPE dialcast_store_operation_seconds histogram
dialcast_store_operation_seconds_bucket{operation=\"claim\",le=\"0.001\"} 10
dialcast_store_operation_seconds_bucket{operation=\"claim\",le=\"0.005\"} 95
dialcast_store_operation_seconds_bucket{operation=\"claim\",le=\"0.025\"} 100
dialcast_store_operation_seconds_bucket{operation=\"claim\",le=\"+Inf\"} 100
dialcast_store_operation_seconds_sum{operation=\"claim\"} 0.3
dialcast_store_operation_seconds_count{operation=\"claim\"} 100
dialcast_store_operation_seconds_bucket{operation=\"next_due\",le=\"0.001\"} 0
dialcast_store_operation_seconds_bucket{operation=\"next_due\",le=\"+Inf\"} 2
dialcast_store_operation_seconds_sum{operation=\"next_due\"} 4
dialcast_store_operation_seconds_count{operation=\"next_due\"} 2
dialcast_other_bucket{operation=\"claim\",le=\"1\"} 7
";

    #[test]
    fn summarises_each_operation() {
        let all = histograms_by(TEXT, "dialcast_store_operation_seconds", "operation");
        assert_eq!(all.len(), 2);
        let claim = &all["claim"];
        assert_eq!(claim.count, 100);
        assert!((claim.mean_ms - 3.0).abs() < 1e-9);
        assert_eq!(claim.p50_le_ms, Some(5.0));
        assert_eq!(claim.p99_le_ms, Some(25.0));
        // Beyond the last finite bucket: no bound to report.
        assert_eq!(all["next_due"].p99_le_ms, None);
        assert!((all["next_due"].mean_ms - 2000.0).abs() < 1e-9);
    }

    #[test]
    fn other_metrics_and_labels_are_ignored() {
        assert!(histograms_by(TEXT, "dialcast_store_operation_seconds", "trunk").is_empty());
        assert!(histograms_by(TEXT, "dialcast_nothing", "operation").is_empty());
    }
}
