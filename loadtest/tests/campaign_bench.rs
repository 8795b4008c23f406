//! The campaign benchmark end to end, small: `dialcast-loadtest campaign`
//! with 30 records runs `dialcast import`, `serve`, `campaign start|status`
//! against the farm, then the bare dialer, and reports both sides as one JSON
//! object. Ignored by default: it needs the `dialcast` binary in the same
//! target directory (`cargo build -p dialcast-portal-api`, or `--release` for
//! both) and takes about 40 s (the script talks for ~14 s per call).
//!
//! ```sh
//! cargo build --release -p dialcast-portal-api
//! cargo test --release -p dialcast-loadtest --test campaign_bench -- --ignored
//! ```

use std::process::Command;

#[test]
#[ignore = "needs the dialcast binary: cargo build -p dialcast-portal-api (same profile)"]
fn a_small_campaign_and_its_baseline_report_the_same_calls() {
    let exe = env!("CARGO_BIN_EXE_dialcast-loadtest");
    let output = Command::new(exe)
        .args([
            "campaign",
            "--records",
            "30",
            "--cps",
            "30",
            "--channels",
            "30",
            "--json",
        ])
        .output()
        .expect("dialcast-loadtest runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    for side in ["campaign", "bare_dialer"] {
        assert_eq!(report[side]["calls"], 30, "{side}: {report}");
        assert_eq!(report[side]["completed"], 30, "{side}: {report}");
        assert_eq!(report[side]["failed"], 0, "{side}: {report}");
        assert!(
            report[side]["cpu_s_per_call"].as_f64() > Some(0.0),
            "{report}"
        );
        assert!(report[side]["mean_talk_s"].as_f64() > Some(5.0), "{report}");
    }
    assert!(report["engine_overhead_ratio"].is_number(), "{report}");
    assert_eq!(report["target_overhead"], 0.25);
    assert_eq!(report["fairness"]["comparable"], true, "{report}");
}
