"""Draws docs/images/events-bench.png from bench/events_bench.py's JSON: the write-to-event
latency distribution of the paced run, and query-api's RSS through each run (paced and
burst opens) against the container limit and the memory alert line.

    uv run --group bench python bench/plot_events_bench.py [--json .local/bench-results/events.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

REPO = Path(__file__).resolve().parents[1]
MIB = 2**20
RUN_COLOURS = {"paced": "#4a7ebb", "burst": "#c0392b"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=REPO / ".local/bench-results/events.json")
    parser.add_argument("--out", type=Path, default=REPO / "docs/images/events-bench.png")
    args = parser.parse_args()
    data = json.loads(args.json.read_text())
    limit = float(data["limit_mib"])
    runs = data["runs"]

    fig, (lat_ax, rss_ax) = plt.subplots(1, 2, figsize=(12, 4.2))
    paced = next((run for run in runs if "latencies_ms" in run), None)
    if paced is not None:
        lat_ax.hist(sorted(paced["latencies_ms"]), bins=40, color="#4a7ebb")
        for q, style in ((0.5, "--"), (0.99, ":")):
            value = paced[f"latency_p{round(q * 100)}_ms"]
            lat_ax.axvline(
                value, color="black", linestyle=style, label=f"p{round(q * 100)} {value:.0f} ms"
            )
        lat_ax.set_title(
            f"{paced['events']} changes at {paced['rate']:g}/s, {paced['open']} streams open"
        )
        lat_ax.legend()
    lat_ax.set_xlabel("write start → event on the owner's stream (ms)")
    lat_ax.set_ylabel("changes")

    for run in runs:
        samples = run["samples"]
        opening = next((s["t"] for s in samples if s["phase"] == "opening"), 0.0)
        shown = [s for s in samples if s["phase"] in ("baseline", "opening", "idle")]
        rss_ax.plot(
            [s["t"] - opening for s in shown],
            [s["rss"] / MIB for s in shown],
            color=RUN_COLOURS.get(run["mode"], "#333"),
            label=f"{run['mode']}: {run['open']} streams, peak {run['peak_rss'] / MIB:.0f} MiB",
        )
    rss_ax.axhline(limit, color="black", label=f"limit {limit:g} MiB")
    rss_ax.axhline(limit * 0.85, color="black", linestyle="--", label="alert line (85 %)")
    rss_ax.axvline(0, color="#999", linewidth=0.8)
    rss_ax.set_xlabel("seconds since the first open")
    rss_ax.set_ylabel("query-api RSS (MiB)")
    rss_ax.set_ylim(0, limit * 1.08)
    rss_ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
