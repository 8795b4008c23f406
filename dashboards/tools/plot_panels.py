#!/usr/bin/env python3
"""Draws each Dialcast dashboard as a PNG from real Prometheus data.

Grafana is not needed: every panel's queries are run through Prometheus's
query API (the same expressions as the dashboard JSON, variables set to
"All") and drawn with matplotlib in the dashboard's grid layout, into
dashboards/img/<dashboard>.png. For the README; not part of CI.

Data: either a running Prometheus (--prometheus URL), or the TSDB kept by
the dashboards test (--tsdb DIR: a Prometheus is started on it, on a free
loopback port, and stopped afterwards):

    DIALCAST_DASHBOARDS_KEEP=/tmp/dash-run cargo test -p dialcast-dashboards \
        --features prometheus --test prometheus -- --test-threads=1
    python3 -m venv /tmp/plot && /tmp/plot/bin/pip install matplotlib
    /tmp/plot/bin/python dashboards/tools/plot_panels.py --tsdb /tmp/dash-run/tsdb

The time range is the scraped run (first to last sample of `up`), unless
--start/--end (Unix seconds) are given.
"""

import argparse
import datetime
import json
import pathlib
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
DASHBOARDS = ["overview", "voice", "trunks-media", "engine-health"]
VARIABLES = {
    "__rate_interval": "30s",
    "__interval": "15s",
    "__range": "15m",
    "script": ".*",
    "trunk": ".*",
    "job": "dialcast",
}
COLOURS = {"green": "#37872d", "yellow": "#e0b400", "red": "#c4162a", "other": "#8e8e8e"}
ROW_HEIGHT_IN = 0.5  # inches per Grafana grid row


def substitute(expr):
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", VARIABLES[name]).replace("$" + name, VARIABLES[name])
    return expr


class Prometheus:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def api(self, path, **params):
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=30) as reply:
            body = json.load(reply)
        if body["status"] != "success":
            raise RuntimeError(f"{params}: {body}")
        return body["data"]

    def range(self, expr, start, end, step):
        return self.api("/api/v1/query_range", query=expr, start=start, end=end, step=step)["result"]

    def instant(self, expr, at):
        return self.api("/api/v1/query", query=expr, time=at)["result"]


def start_on_tsdb(tsdb):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False)
    config.write("global:\n  scrape_interval: 1m\n")
    config.close()
    process = subprocess.Popen(
        ["prometheus", f"--config.file={config.name}", f"--storage.tsdb.path={tsdb}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
         "--storage.tsdb.retention.time=10y"],
        stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/-/ready", timeout=1)
            return process, Prometheus(url)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("Prometheus did not start on " + str(tsdb))


def run_range(prom):
    """First and last scrape of the engine in the TSDB."""
    now = time.time()
    series = prom.instant('up{job="dialcast"}[2w]', now)
    stamps = [float(t) for s in series for t, _ in s["values"]]
    if not stamps:
        raise RuntimeError("no samples of up{job=\"dialcast\"} in the last two weeks")
    return min(stamps), max(stamps)


def legend(fmt, metric):
    out = fmt or ""
    for k, v in metric.items():
        out = out.replace("{{" + k + "}}", v)
    return out.replace("{{", "").replace("}}", "").strip() or "value"


def draw_timeseries(ax, panel, prom, start, end):
    bars = panel["fieldConfig"]["defaults"]["custom"]["drawStyle"] == "bars"
    step = 300 if panel.get("interval") == "5m" else max(1, int((end - start) / 150))
    if bars and step == 300:
        start = start - start % 300
        end = end - end % 300 + 300
    bottoms = {}
    for target in panel["targets"]:
        for s in prom.range(substitute(target["expr"]), start, end, step):
            name = legend(target.get("legendFormat"), s["metric"])
            xs = [datetime.datetime.fromtimestamp(float(t), datetime.timezone.utc) for t, _ in s["values"]]
            ys = [float(v) for _, v in s["values"]]
            if bars:
                # Drawn over the bucket they count (the step before t).
                width = datetime.timedelta(seconds=step)
                left = [x - width for x in xs]
                bottom = [bottoms.get(x, 0.0) for x in xs]
                ax.bar(left, ys, width=width * 0.9, bottom=bottom, align="edge", label=name,
                       color=COLOURS.get(s["metric"].get("colour")))
                for x, y in zip(xs, ys):
                    bottoms[x] = bottoms.get(x, 0.0) + (0.0 if y != y else y)
            else:
                ax.plot(xs, ys, label=name, linewidth=1.2)
    ax.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%H:%M:%S" if end - start < 900 else "%H:%M"))
    ax.tick_params(labelsize=7)
    unit = panel["fieldConfig"]["defaults"].get("unit", "")
    if unit and unit != "short":
        ax.set_ylabel(unit, fontsize=7)
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=6, loc="upper left", ncol=2)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)


def draw_values(ax, panel, prom, at):
    lines = []
    for target in panel["targets"]:
        for s in prom.instant(substitute(target["expr"]), at):
            value = float(s["value"][1])
            name = legend(target.get("legendFormat"), s["metric"])
            if panel["type"] == "table":
                labels = " ".join(v for k, v in sorted(s["metric"].items()) if k != "__name__")
                name = f"{labels} {name}".strip() if "{{" not in (target.get("legendFormat") or "") else name
            lines.append(f"{name}: {value:,.6g}")
    ax.axis("off")
    size = 20 if panel["type"] == "stat" and len(lines) == 1 else 8
    ax.text(0.5, 0.5, "\n".join(lines[:12]) or "no data", ha="center", va="center",
            fontsize=size, transform=ax.transAxes, family="monospace" if size == 8 else None)


def plot(name, prom, start, end, out):
    dashboard = json.loads((ROOT / "grafana" / f"{name}.json").read_text())
    panels = dashboard["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    fig = plt.figure(figsize=(16, rows * ROW_HEIGHT_IN + 0.6))
    grid = fig.add_gridspec(rows, 24, hspace=6.0, wspace=1.5)
    for panel in panels:
        g = panel["gridPos"]
        ax = fig.add_subplot(grid[g["y"]:g["y"] + g["h"], g["x"]:g["x"] + g["w"]])
        ax.set_title(panel["title"], fontsize=9)
        if panel["type"] == "timeseries":
            draw_timeseries(ax, panel, prom, start, end)
        else:
            draw_values(ax, panel, prom, end)
    when = datetime.datetime.fromtimestamp(end, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    fig.suptitle(f"{dashboard['title']}  (Prometheus query results, {when}; "
                 "drawn by dashboards/tools/plot_panels.py)", fontsize=11)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prometheus", help="URL of a running Prometheus")
    parser.add_argument("--tsdb", help="a Prometheus data directory to start a Prometheus on")
    parser.add_argument("--start", type=float)
    parser.add_argument("--end", type=float)
    parser.add_argument("--out", default=str(ROOT / "img"))
    args = parser.parse_args()
    process = None
    if args.tsdb:
        process, prom = start_on_tsdb(args.tsdb)
    elif args.prometheus:
        prom = Prometheus(args.prometheus)
    else:
        parser.error("give --prometheus URL or --tsdb DIR")
    try:
        start, end = run_range(prom)
        start, end = args.start or start, args.end or end
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name in DASHBOARDS:
            plot(name, prom, start, end, out)
    finally:
        if process:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
