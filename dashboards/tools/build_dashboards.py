#!/usr/bin/env python3
"""Writes the Grafana dashboards of dashboards/grafana/*.json.

The JSON files are the product (Grafana provisions them as they are); this
script is how they are written, so that the four dashboards share one
datasource variable, one layout rule and one way of writing a panel. Edit
here, run `python3 dashboards/tools/build_dashboards.py`, commit both.
The test `cargo test -p dialcast-dashboards` checks the structure of what
is written (ids, grid, datasource variable) and the `prometheus` feature's
test runs every expression against a real Prometheus.

Layout: panels are placed left to right in rows of 24 grid columns; a panel
that does not fit starts a new row.
"""

import json
import pathlib

OUT = pathlib.Path(__file__).resolve().parent.parent / "grafana"
DS = {"type": "prometheus", "uid": "${datasource}"}
S = 'script=~"$script"'
T = 'trunk=~"$trunk"'

COLOURS = {
    "green": "green",
    "yellow": "yellow",
    "red": "red",
    "other": "#8e8e8e",
}


def datasource_var():
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
    }


def query_var(name, label, metric):
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": f"label_values({metric}, {name})",
        "query": {"query": f"label_values({metric}, {name})", "refId": f"{name}-values"},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "regex": "",
        "options": [],
    }


def target(expr, legend, ref, **extra):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}
    t.update(extra)
    return t


def targets(*pairs):
    return [target(e, l, chr(ord("A") + i)) for i, (e, l) in enumerate(pairs)]


def timeseries(title, w, h, tgts, unit="short", desc="", stack=False, bars=False,
               overrides=None, interval=None, max_points=None, min_zero=True):
    custom = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 80 if bars else 10,
        "showPoints": "never",
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "spanNulls": False,
    }
    p = {
        "type": "timeseries",
        "title": title,
        "description": desc,
        "w": w,
        "h": h,
        "targets": tgts,
        "fieldConfig": {
            "defaults": {"unit": unit, "custom": custom, "color": {"mode": "palette-classic"}},
            "overrides": overrides or [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }
    if min_zero:
        p["fieldConfig"]["defaults"]["min"] = 0
    if interval:
        p["interval"] = interval
    if max_points:
        p["maxDataPoints"] = max_points
    return p


def stat(title, w, h, tgts, unit="short", desc="", thresholds=None, instant=True):
    for t in tgts:
        t["instant"] = instant
        t["range"] = not instant
    return {
        "type": "stat",
        "title": title,
        "description": desc,
        "w": w,
        "h": h,
        "targets": tgts,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "color": {"mode": "thresholds"},
                "thresholds": thresholds
                or {"mode": "absolute", "steps": [{"color": "blue", "value": None}]},
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value_and_name",
        },
    }


def table(title, w, h, tgts, desc=""):
    for t in tgts:
        t["instant"] = True
        t["range"] = False
        t["format"] = "table"
    return {
        "type": "table",
        "title": title,
        "description": desc,
        "w": w,
        "h": h,
        "targets": tgts,
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": True},
        "transformations": [{"id": "merge", "options": {}}],
    }


def colour_overrides(label_values=COLOURS):
    return [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": colour}}],
        }
        for name, colour in label_values.items()
    ]


def quantiles(metric, by, selector, legend_prefix=""):
    """p50 and p95 of a histogram, per `by`."""
    sel = "{" + selector + "}" if selector else ""
    group = f"le, {by}" if by else "le"
    legend = f"{legend_prefix}{{{{{by}}}}} " if by else legend_prefix
    return [
        (f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{sel}[$__rate_interval])))",
         f"{legend}p{int(q * 100)}")
        for q in (0.5, 0.95)
    ]


def layout(panels):
    """Places panels left to right in rows of 24 columns; gives ids."""
    x = y = row_h = 0
    out = []
    for i, p in enumerate(panels, start=1):
        w, h = p.pop("w"), p.pop("h")
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        p["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        p["id"] = i
        p["datasource"] = DS
        x += w
        row_h = max(row_h, h)
        out.append(p)
    return out


def dashboard(uid, title, desc, panels, variables, time_from="now-1h", tags=()):
    return {
        "uid": uid,
        "title": title,
        "description": desc,
        "tags": ["dialcast", *tags],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "annotations": {"list": []},
        "links": [
            {"type": "dashboards", "tags": ["dialcast"], "asDropdown": True, "title": "Dialcast",
             "includeVars": False, "keepTime": True}
        ],
        "templating": {"list": [datasource_var(), *variables]},
        "panels": layout(panels),
    }


def exact_increase(selector, by, window):
    """How much counters grew over `window`, exactly: the difference of the
    counter (see OVERVIEW_BARS below for why not increase())."""
    return f"sum by ({by}) (({selector} - {selector} offset {window}) >= 0 or {selector})" if by \
        else f"sum(({selector} - {selector} offset {window}) >= 0 or {selector})"


# The Overview bars: attempts that ended in the 5 minutes before each step.
# With the panel's 5-minute interval Grafana asks for steps on multiples of
# 5 minutes (UTC), so each bar covers one of the engine's statistics
# buckets (drawn at the bucket's end; the engine files an attempt under the
# bucket it started in, the bar under the one it ended in). `x - x offset 5m` is exact, unlike
# increase(), which extrapolates; `or x` counts a series that did not exist
# 5 minutes earlier from zero (a process that started in the bucket); the
# `>= 0` drops the difference across a restart, so that bucket shows the
# attempts since the restart.
ATTEMPTS = f'dialcast_call_attempts_total{{{S}}}'
OVERVIEW_BARS = f"sum by (colour) (({ATTEMPTS} - {ATTEMPTS} offset 5m) >= 0 or {ATTEMPTS})"


def overview():
    panels = [
        timeseries(
            "Call attempts per 5 minutes",
            24, 9,
            [target(OVERVIEW_BARS, "{{colour}}", "A", interval="5m")],
            desc="Ended attempts in each 5-minute statistics bucket (UTC), by colour: "
            "green delivered, yellow not reached, red invalid number, grey other. "
            "Each bar counts the attempts that ended in its 5 minutes and is drawn at the "
            "bucket's end. `dialcast stats --buckets` files an attempt under the bucket it "
            "started in, so a call in progress across a bucket edge is one bar later here; "
            "totals are equal.",
            stack=True, bars=True, overrides=colour_overrides(), interval="5m", max_points=48,
        ),
        stat("Records today, voice", 4, 4,
             targets(('sum(dialcast_records_today{service="voice"})', "voice")),
             desc="Records of today for voice calls, all scripts."),
        stat("Records today, SMS", 4, 4,
             targets(('sum(dialcast_records_today{service="sms"})', "sms"))),
        stat("Records today, e-mail", 4, 4,
             targets(('sum(dialcast_records_today{service="email"})', "email"))),
        stat("Voice records completed", 4, 4,
             targets((exact_increase(f"dialcast_records_completed_total{{{S}}}", "", "$__range"),
                      "completed")),
             desc="Records that got their final status in the selected time range."),
        stat("Paused scripts", 4, 4,
             targets((f"sum(dialcast_script_paused{{{S}}})", "paused")),
             thresholds={"mode": "absolute", "steps": [
                 {"color": "green", "value": None}, {"color": "orange", "value": 1}]},
             desc="Scripts whose calls are paused now."),
        stat("Calls in progress", 4, 4,
             targets(("sum(dialcast_active_calls)", "calls"))),
        table("Paused now, by script", 12, 6,
              targets((f"max by (script) (dialcast_script_paused{{{S}}})", "calls paused"),
                      (f"max by (script) (dialcast_forwarding_paused{{{S}}})", "forwarding paused")),
              desc="1 = paused."),
        timeseries("Delivered share of attempts", 12, 6,
                   targets((f"sum by (script) (rate(dialcast_call_attempts_total{{{S},colour=\"green\"}}[$__rate_interval])) "
                            f"/ sum by (script) (rate(dialcast_call_attempts_total{{{S}}}[$__rate_interval]))",
                            "{{script}}")),
                   unit="percentunit"),
    ]
    return dashboard(
        "dialcast-overview", "Dialcast / Overview",
        "The portal's home view: attempts in 5-minute colour buckets, today's records, "
        "completion and paused scripts.",
        panels, [query_var("script", "Script", "dialcast_call_attempts_total")],
        time_from="now-4h", tags=("overview",))


def voice():
    panels = [
        timeseries("Ended attempts by status", 12, 8,
                   targets((f"sum by (status) (rate(dialcast_calls_ended_total{{{S}}}[$__rate_interval])) * 60",
                            "{{status}}")),
                   unit="cpm", stack=True),
        timeseries("Success points and voicemails left", 12, 8,
                   targets((f"sum by (script) (rate(dialcast_success_points_total{{{S}}}[$__rate_interval])) * 60",
                            "{{script}} success point"),
                           (f"sum by (script) (rate(dialcast_voicemail_left_total{{{S}}}[$__rate_interval])) * 60",
                            "{{script}} voicemail left")),
                   unit="cpm"),
        timeseries("Answered calls by AMD result", 12, 8,
                   targets((f"sum by (amd) (rate(dialcast_calls_answered_total{{{S}}}[$__rate_interval])) * 60",
                            "{{amd}}")),
                   unit="cpm", stack=True),
        timeseries("AMD decision time", 12, 8,
                   quantiles_targets("dialcast_amd_decision_seconds", "result", ""),
                   unit="s"),
        timeseries("Forwards by outcome", 12, 7,
                   targets((f"sum by (outcome) (rate(dialcast_forwards_total{{{S}}}[$__rate_interval])) * 60",
                            "{{outcome}}")),
                   unit="cpm", stack=True),
        timeseries("Callbacks", 12, 7,
                   targets(("sum by (outcome) (rate(dialcast_callbacks_total[$__rate_interval])) * 60",
                            "{{outcome}}")),
                   unit="cpm", stack=True),
        timeseries("Call setup time (INVITE to first response)", 8, 8,
                   quantiles_targets("dialcast_call_setup_seconds", "trunk", T), unit="s"),
        timeseries("Ring time (INVITE to answer)", 8, 8,
                   quantiles_targets("dialcast_call_ring_seconds", "trunk", T), unit="s"),
        timeseries("Talk time", 8, 8,
                   quantiles_targets("dialcast_call_talk_seconds", "script", S), unit="s"),
        table("Attempts in the time range, by script and status", 24, 8,
              targets((exact_increase(f"dialcast_calls_ended_total{{{S}}}", "script, status", "$__range"),
                       "{{script}} {{status}}"))),
    ]
    return dashboard(
        "dialcast-voice", "Dialcast / Voice",
        "Per script: outcomes, answering-machine detection, forwards, callbacks, "
        "setup, ring and talk times.",
        panels,
        [query_var("script", "Script", "dialcast_calls_ended_total"),
         query_var("trunk", "Trunk", "dialcast_trunk_channels")],
        tags=("voice",))


def quantiles_targets(metric, by, selector):
    return targets(*quantiles(metric, by, selector))


def trunks_media():
    panels = [
        timeseries("Trunk up (OPTIONS health)", 8, 7,
                   targets((f"max by (trunk) (dialcast_trunk_up{{{T}}})", "{{trunk}}")),
                   desc="1 when the trunk answers OPTIONS keep-alives."),
        timeseries("Channels in use and limit", 8, 7,
                   targets((f"sum by (trunk) (dialcast_active_calls{{{T}}})", "{{trunk}} in use"),
                           (f"max by (trunk) (dialcast_trunk_channels{{{T}}})", "{{trunk}} limit"))),
        timeseries("Calls per second, achieved and target", 8, 7,
                   targets((f"sum by (trunk) (rate(dialcast_pacer_dialled_total{{{T}}}[$__rate_interval]))",
                            "{{trunk}} achieved"),
                           (f"max by (trunk) (dialcast_pacer_target_cps{{{T}}})", "{{trunk}} target")),
                   unit="reqps"),
        timeseries("Final responses to INVITE by class", 12, 7,
                   targets((f"sum by (trunk, code) (rate(dialcast_trunk_responses_total{{{T}}}[$__rate_interval]))",
                            "{{trunk}} {{code}}")),
                   unit="reqps", stack=True),
        timeseries("Back-offs (503, 480)", 12, 7,
                   targets((f"sum by (trunk, code) (rate(dialcast_trunk_backoffs_total{{{T}}}[$__rate_interval])) * 60",
                            "{{trunk}} {{code}}")),
                   unit="cpm"),
        timeseries("RTP packets", 12, 7,
                   targets(("sum(rate(dialcast_rtp_packets_sent_total[$__rate_interval]))", "sent"),
                           ("sum(rate(dialcast_rtp_packets_received_total[$__rate_interval]))", "received")),
                   unit="pps"),
        timeseries("RTP late, lost and malformed", 12, 7,
                   targets(("sum(rate(dialcast_rtp_packets_late_total[$__rate_interval])) "
                            "/ sum(rate(dialcast_rtp_packets_sent_total[$__rate_interval]))", "late (of sent)"),
                           ("sum(rate(dialcast_rtp_packets_lost_total[$__rate_interval])) "
                            "/ sum(rate(dialcast_rtp_packets_received_total[$__rate_interval]))", "lost (of received)"),
                           ("sum(rate(dialcast_rtp_packets_malformed_total[$__rate_interval]))", "malformed per s")),
                   unit="percentunit",
                   desc="Late: sent more than 5 ms after its deadline. Lost: sequence gaps."),
        timeseries("RTP jitter per call", 12, 7,
                   quantiles_targets("dialcast_rtp_jitter_seconds", "", ""), unit="s"),
        timeseries("SIP retransmissions and malformed messages", 12, 7,
                   targets(("sum(rate(dialcast_sip_retransmissions_total[$__rate_interval]))", "retransmissions"),
                           ("sum by (kind) (rate(dialcast_sip_messages_malformed_total[$__rate_interval]))",
                            "malformed {{kind}}")),
                   unit="pps"),
    ]
    return dashboard(
        "dialcast-trunks-media", "Dialcast / Trunks and media",
        "Trunk health, channels, calls per second, SIP responses and RTP quality.",
        panels, [query_var("trunk", "Trunk", "dialcast_trunk_channels")], tags=("trunks", "media"))


def engine_health():
    panels = [
        timeseries("Import rows by result", 12, 7,
                   targets(("sum by (result) (increase(dialcast_import_rows_total[$__rate_interval]))",
                            "{{result}}")),
                   stack=True, bars=True),
        timeseries("Imports by outcome", 12, 7,
                   targets(("sum by (outcome) (increase(dialcast_imports_total[$__rate_interval]))",
                            "{{outcome}}")),
                   stack=True, bars=True),
        timeseries("Queue depth", 12, 7,
                   targets(("max by (queue) (dialcast_queue_depth)", "{{queue}}"))),
        timeseries("Queue latency (oldest item's wait)", 12, 7,
                   targets(("max by (queue) (dialcast_queue_oldest_wait_seconds)", "{{queue}}")),
                   unit="s"),
        timeseries("Store operation latency", 12, 7,
                   quantiles_targets("dialcast_store_operation_seconds", "operation", ""), unit="s"),
        timeseries("Errors by component", 12, 7,
                   targets(("sum by (component) (rate(dialcast_errors_total[$__rate_interval])) * 60",
                            "{{component}}")),
                   unit="cpm"),
        timeseries("Result files written", 12, 7,
                   targets((exact_increase("dialcast_result_files_written_total", "format", "$__range"),
                            "{{format}}"))),
        timeseries("CPU", 8, 7,
                   targets(('rate(process_cpu_seconds_total{job="$job"}[$__rate_interval])', "{{instance}}")),
                   unit="percentunit"),
        timeseries("Resident memory", 8, 7,
                   targets(('process_resident_memory_bytes{job="$job"}', "{{instance}}")), unit="bytes"),
        timeseries("Open file descriptors", 8, 7,
                   targets(('process_open_fds{job="$job"}', "{{instance}}"))),
        table("Instances", 24, 6,
              targets(('max by (instance, version) (dialcast_build_info)', "build"),
                      ('max by (instance) (time() - process_start_time_seconds{job="$job"})', "uptime"),
                      ('max by (instance) (up{job="$job"})', "up"))),
    ]
    job = {
        "name": "job",
        "label": "Job",
        "type": "query",
        "datasource": DS,
        "definition": "label_values(dialcast_build_info, job)",
        "query": {"query": "label_values(dialcast_build_info, job)", "refId": "job-values"},
        "refresh": 2,
        "includeAll": False,
        "multi": False,
        "current": {},
        "sort": 1,
        "hide": 0,
        "regex": "",
        "options": [],
    }
    return dashboard(
        "dialcast-engine-health", "Dialcast / Engine health",
        "Imports, queues, store latency, errors and the process.",
        panels, [job], tags=("engine",))


def main():
    for name, build in [("overview", overview), ("voice", voice),
                        ("trunks-media", trunks_media), ("engine-health", engine_health)]:
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(build(), indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
