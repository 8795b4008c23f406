//! The Grafana dashboards as data: loading, the structure rules every
//! dashboard must keep, and the list of panel expressions ready for
//! Prometheus (template variables substituted). Pure apart from reading
//! the files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Width of Grafana's grid, in columns.
pub const GRID_COLUMNS: u64 = 24;
/// The variable every panel and query takes its datasource from.
pub const DATASOURCE_VARIABLE: &str = "datasource";
/// The dashboards, by file stem, in the order of the README.
pub const DASHBOARDS: [&str; 4] = ["overview", "voice", "trunks-media", "engine-health"];
/// Grafana's own variables the panel expressions may use.
pub const BUILT_IN_VARIABLES: [&str; 3] = ["__rate_interval", "__interval", "__range"];

/// Why a dashboard could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// One dashboard file.
#[derive(Clone, Debug)]
pub struct Dashboard {
    /// The file stem (`overview`).
    pub name: String,
    pub json: Value,
}

/// One query of one panel.
#[derive(Clone, Debug, PartialEq)]
pub struct PanelQuery {
    pub dashboard: String,
    pub panel_id: u64,
    pub panel_title: String,
    pub ref_id: String,
    /// The expression as written in the dashboard.
    pub expr: String,
}

/// Reads `<dir>/<name>.json` for each of [`DASHBOARDS`].
pub fn load_all(dir: &Path) -> Result<Vec<Dashboard>, LoadError> {
    DASHBOARDS
        .iter()
        .map(|name| load(&dir.join(format!("{name}.json"))))
        .collect()
}

/// Reads one dashboard file.
pub fn load(path: &Path) -> Result<Dashboard, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let json = serde_json::from_str(&text).map_err(|source| LoadError::Json {
        path: path.to_owned(),
        source,
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Dashboard { name, json })
}

impl Dashboard {
    fn panels(&self) -> &[Value] {
        self.json["panels"].as_array().map_or(&[], Vec::as_slice)
    }

    /// The names of the dashboard's template variables.
    pub fn variables(&self) -> BTreeSet<String> {
        self.json["templating"]["list"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|v| v["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// Every query of every panel.
    pub fn queries(&self) -> Vec<PanelQuery> {
        let mut out = Vec::new();
        for panel in self.panels() {
            for target in panel["targets"].as_array().map_or(&[][..], Vec::as_slice) {
                out.push(PanelQuery {
                    dashboard: self.name.clone(),
                    panel_id: panel["id"].as_u64().unwrap_or(0),
                    panel_title: panel["title"].as_str().unwrap_or("").to_owned(),
                    ref_id: target["refId"].as_str().unwrap_or("").to_owned(),
                    expr: target["expr"].as_str().unwrap_or("").to_owned(),
                });
            }
        }
        out
    }

    /// Everything wrong with the dashboard's structure; empty when it is
    /// sound.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut say = |what: String| problems.push(format!("{}: {what}", self.name));
        for key in ["uid", "title"] {
            if self.json[key].as_str().is_none_or(str::is_empty) {
                say(format!("no {key}"));
            }
        }

        // The datasource variable.
        let variables = self.json["templating"]["list"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        match variables.iter().find(|v| v["name"] == DATASOURCE_VARIABLE) {
            Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
            Some(v) => say(format!(
                "variable {DATASOURCE_VARIABLE} must be of type datasource, query prometheus: {v}"
            )),
            None => say(format!("no variable named {DATASOURCE_VARIABLE}")),
        }
        let known = self.variables();
        for v in variables {
            let name = v["name"].as_str().unwrap_or("");
            if v["type"] == "query" && !uses_datasource_variable(&v["datasource"]) {
                say(format!("variable {name} does not query ${{datasource}}"));
            }
        }

        // Panels: ids, grid, datasource, queries.
        let mut ids = BTreeSet::new();
        let mut placed: Vec<(u64, Rect)> = Vec::new();
        for panel in self.panels() {
            let title = panel["title"].as_str().unwrap_or("(untitled)");
            let Some(id) = panel["id"].as_u64() else {
                say(format!("panel {title:?} has no numeric id"));
                continue;
            };
            if !ids.insert(id) {
                say(format!("panel id {id} ({title:?}) is used twice"));
            }
            match Rect::of(&panel["gridPos"]) {
                Some(rect) => {
                    if rect.w == 0 || rect.h == 0 || rect.x + rect.w > GRID_COLUMNS {
                        say(format!(
                            "panel {id} ({title:?}) lies outside the {GRID_COLUMNS}-column grid: {rect:?}"
                        ));
                    }
                    for (other, other_rect) in &placed {
                        if rect.overlaps(other_rect) {
                            say(format!("panels {other} and {id} overlap"));
                        }
                    }
                    placed.push((id, rect));
                }
                None => say(format!("panel {id} ({title:?}) has no gridPos")),
            }
            if !uses_datasource_variable(&panel["datasource"]) {
                say(format!(
                    "panel {id} ({title:?}) does not use ${{{DATASOURCE_VARIABLE}}}"
                ));
            }
            let targets = panel["targets"].as_array().map_or(&[][..], Vec::as_slice);
            if targets.is_empty() {
                say(format!("panel {id} ({title:?}) has no query"));
            }
            let mut ref_ids = BTreeSet::new();
            for target in targets {
                let ref_id = target["refId"].as_str().unwrap_or("");
                if ref_id.is_empty() || !ref_ids.insert(ref_id) {
                    say(format!(
                        "panel {id} ({title:?}): refId {ref_id:?} is empty or repeated"
                    ));
                }
                if !uses_datasource_variable(&target["datasource"]) {
                    say(format!(
                        "panel {id} ({title:?}) query {ref_id} does not use ${{{DATASOURCE_VARIABLE}}}"
                    ));
                }
                let expr = target["expr"].as_str().unwrap_or("");
                if expr.trim().is_empty() {
                    say(format!("panel {id} ({title:?}) query {ref_id} is empty"));
                }
                for var in variables_in(expr) {
                    if !known.contains(&var) && !BUILT_IN_VARIABLES.contains(&var.as_str()) {
                        say(format!(
                            "panel {id} ({title:?}) query {ref_id} uses ${var}, which is not defined"
                        ));
                    }
                }
            }
        }
        problems
    }
}

/// Problems across dashboards: uids and titles must be unique.
pub fn cross_problems(dashboards: &[Dashboard]) -> Vec<String> {
    let mut problems = Vec::new();
    for key in ["uid", "title"] {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for d in dashboards {
            let value = d.json[key].as_str().unwrap_or("");
            if let Some(first) = seen.insert(value, &d.name) {
                problems.push(format!(
                    "{} and {} share the {key} {value:?}",
                    first, d.name
                ));
            }
        }
    }
    problems
}

fn uses_datasource_variable(datasource: &Value) -> bool {
    let wanted = format!("${{{DATASOURCE_VARIABLE}}}");
    datasource["uid"] == wanted.as_str() || *datasource == Value::String(wanted)
}

/// The `$name` and `${name}` variables an expression uses.
pub fn variables_in(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let (name, after) = match rest.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => break,
            },
            None => {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        // Label names inside `{{ }}` legends are not variables; in
        // PromQL a `$` only starts a Grafana variable.
        if !name.is_empty() {
            out.insert(name.to_owned());
        }
        rest = after;
    }
    out
}

/// `expr` with every variable replaced by its value in `values`; longer
/// names first, so that `$__rate_interval` is not taken for `$__range`
/// followed by text. Variables not in `values` are left as they are.
pub fn substitute(expr: &str, values: &BTreeMap<&str, &str>) -> String {
    let mut names: Vec<&&str> = values.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let mut out = expr.to_owned();
    for name in names {
        let value = values[*name];
        out = out.replace(&format!("${{{name}}}"), value);
        out = out.replace(&format!("${name}"), value);
    }
    out
}

/// A panel's place on the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rect {
    x: u64,
    y: u64,
    w: u64,
    h: u64,
}

impl Rect {
    fn of(grid: &Value) -> Option<Rect> {
        Some(Rect {
            x: grid["x"].as_u64()?,
            y: grid["y"].as_u64()?,
            w: grid["w"].as_u64()?,
            h: grid["h"].as_u64()?,
        })
    }

    fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn panel(id: u64, x: u64, y: u64, w: u64, h: u64, expr: &str) -> Value {
        let ds = json!({"type": "prometheus", "uid": "${datasource}"});
        json!({
            "id": id, "title": format!("p{id}"), "type": "timeseries", "datasource": ds,
            "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "targets": [{"refId": "A", "expr": expr, "datasource": ds}],
        })
    }

    fn dashboard(panels: Vec<Value>) -> Dashboard {
        Dashboard {
            name: "t".into(),
            json: json!({
                "uid": "t", "title": "T",
                "templating": {"list": [
                    {"name": "datasource", "type": "datasource", "query": "prometheus"},
                    {"name": "script", "type": "query",
                     "datasource": {"type": "prometheus", "uid": "${datasource}"}},
                ]},
                "panels": panels,
            }),
        }
    }

    #[test]
    fn a_sound_dashboard_has_no_problems() {
        let d = dashboard(vec![
            panel(1, 0, 0, 12, 8, "up"),
            panel(
                2,
                12,
                0,
                12,
                8,
                "rate(x{script=~\"$script\"}[$__rate_interval])",
            ),
            panel(3, 0, 8, 24, 8, "up"),
        ]);
        assert_eq!(d.problems(), Vec::<String>::new());
    }

    #[test]
    fn overlaps_repeated_ids_and_overflow_are_found() {
        let d = dashboard(vec![
            panel(1, 0, 0, 12, 8, "up"),
            panel(1, 6, 4, 12, 8, "up"),
            panel(3, 20, 20, 8, 8, "up"),
        ]);
        let problems = d.problems().join("\n");
        assert!(problems.contains("panel id 1"), "{problems}");
        assert!(problems.contains("panels 1 and 1 overlap"), "{problems}");
        assert!(
            problems.contains("outside the 24-column grid"),
            "{problems}"
        );
    }

    #[test]
    fn a_fixed_datasource_and_unknown_variables_are_found() {
        let mut p = panel(1, 0, 0, 12, 8, "x{trunk=~\"$trunk\"}");
        p["datasource"] = json!({"type": "prometheus", "uid": "abc123"});
        let problems = dashboard(vec![p]).problems().join("\n");
        assert!(
            problems.contains("does not use ${datasource}"),
            "{problems}"
        );
        assert!(problems.contains("uses $trunk"), "{problems}");
        let mut d = dashboard(vec![panel(1, 0, 0, 1, 1, "up")]);
        d.json["templating"]["list"][0]["type"] = json!("query");
        assert!(d.problems().join("\n").contains("type datasource"));
    }

    #[test]
    fn variables_are_found_and_substituted_longest_first() {
        let expr = "rate(x{script=~\"$script\"}[$__rate_interval]) + y[${__range}]";
        assert_eq!(
            variables_in(expr).into_iter().collect::<Vec<_>>(),
            ["__range", "__rate_interval", "script"]
        );
        let values = BTreeMap::from([
            ("script", ".*"),
            ("__rate_interval", "30s"),
            ("__range", "1h"),
        ]);
        assert_eq!(
            substitute(expr, &values),
            "rate(x{script=~\".*\"}[30s]) + y[1h]"
        );
    }
}
