//! The dashboards as files: all four are there, each is sound (unique ids,
//! a 24-column grid without overlap, every query through the `datasource`
//! variable, only defined variables), uids and titles are unique, and the
//! provisioning and Prometheus files point at what exists.

use dialcast_dashboards::grafana::{self, DASHBOARDS};
use dialcast_dashboards::root;

#[test]
fn every_dashboard_is_sound() {
    let dashboards = grafana::load_all(&root().join("grafana")).expect("dashboards load");
    assert_eq!(dashboards.len(), DASHBOARDS.len());
    let mut problems: Vec<String> = dashboards.iter().flat_map(|d| d.problems()).collect();
    problems.extend(grafana::cross_problems(&dashboards));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for d in &dashboards {
        assert!(
            d.queries().len() >= 5,
            "{} has only {} queries",
            d.name,
            d.queries().len()
        );
    }
}

#[test]
fn the_overview_shows_the_portal_home_view() {
    let overview = grafana::load(&root().join("grafana/overview.json")).expect("overview");
    let queries = overview.queries();
    let bars = &queries[0];
    assert!(
        bars.expr.contains("dialcast_call_attempts_total")
            && bars.expr.contains("by (colour)")
            && bars.expr.contains("offset 5m"),
        "the first panel is the 5-minute colour bars: {bars:?}"
    );
    assert_eq!(overview.json["time"]["from"], "now-4h");
    let panel = &overview.json["panels"][0];
    assert_eq!(panel["interval"], "5m", "one bar per statistics bucket");
    let overrides = panel["fieldConfig"]["overrides"].to_string();
    for colour in ["green", "yellow", "red"] {
        assert!(overrides.contains(colour), "{colour} bars: {overrides}");
    }
    for metric in [
        "dialcast_records_today",
        "dialcast_records_completed_total",
        "dialcast_script_paused",
    ] {
        assert!(
            queries.iter().any(|q| q.expr.contains(metric)),
            "the overview shows {metric}"
        );
    }
}

#[test]
fn provisioning_and_scrape_files_name_what_exists() {
    let read = |path: &str| std::fs::read_to_string(root().join(path)).expect(path);
    let providers = read("grafana/provisioning/dashboards/dialcast.yaml");
    assert!(providers.contains("type: file") && providers.contains("path:"));
    let datasources = read("grafana/provisioning/datasources/dialcast.yaml");
    assert!(datasources.contains("type: prometheus"));
    let scrape = read("prometheus/prometheus.yml");
    assert!(scrape.contains("job_name: dialcast") && scrape.contains("rules/dialcast.rules.yml"));
    assert!(root().join("prometheus/rules/dialcast.rules.yml").exists());
    // Every alert of the rule file has a promtool unit test.
    let rules = read("prometheus/rules/dialcast.rules.yml");
    let tests: String = std::fs::read_dir(root().join("prometheus/tests"))
        .expect("tests dir")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("test file"))
        .collect();
    for line in rules.lines() {
        if let Some(alert) = line.trim().strip_prefix("- alert: ") {
            assert!(
                tests.contains(&format!("alertname: {alert}")),
                "no promtool unit test for {alert}"
            );
        }
    }
}
