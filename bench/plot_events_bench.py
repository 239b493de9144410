"""Draws docs/images/events-bench.png from bench/events_bench.py's JSON: the write-to-event
latency distribution, and query-api's RSS and CPU through the run's phases.

    uv run python bench/plot_events_bench.py [--json .local/bench-results/events.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

REPO = Path(__file__).resolve().parents[1]
PHASE_COLOURS = {
    "warm-up": "#eeeeee",
    "baseline": "#dde8f5",
    "opening": "#f5e6cc",
    "idle": "#dff0d8",
    "writes": "#f8d7da",
    "closed": "#eeeeee",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=REPO / ".local/bench-results/events.json")
    parser.add_argument("--out", type=Path, default=REPO / "docs/images/events-bench.png")
    args = parser.parse_args()
    result = json.loads(args.json.read_text())

    fig, (lat_ax, rss_ax) = plt.subplots(1, 2, figsize=(12, 4.2))
    latencies = sorted(result["latencies_ms"])
    lat_ax.hist(latencies, bins=40, color="#4a7ebb")
    for q, style in ((0.5, "--"), (0.99, ":")):
        value = result[f"latency_p{round(q * 100)}_ms"]
        lat_ax.axvline(
            value, color="black", linestyle=style, label=f"p{round(q * 100)} {value:.0f} ms"
        )
    lat_ax.set_xlabel("write start → event on the owner's stream (ms)")
    lat_ax.set_ylabel("changes")
    lat_ax.set_title(
        f"{result['events']} changes at {result['rate']:g}/s, {result['open']} streams open"
    )
    lat_ax.legend()

    samples = result["samples"]
    times = [s["t"] for s in samples]
    rss_mib = [s["rss"] / 2**20 for s in samples]
    start = 0
    for i in range(1, len(samples) + 1):
        if i == len(samples) or samples[i]["phase"] != samples[start]["phase"]:
            phase = samples[start]["phase"]
            end = samples[i]["t"] if i < len(samples) else samples[-1]["t"]
            rss_ax.axvspan(samples[start]["t"], end, color=PHASE_COLOURS.get(phase, "#fff"))
            rss_ax.text(
                (samples[start]["t"] + end) / 2,
                1.0,
                phase,
                ha="center",
                va="bottom",
                fontsize=8,
                transform=rss_ax.get_xaxis_transform(),
            )
            start = i
    rss_ax.plot(times, rss_mib, color="#333", label="RSS (MiB)")
    rss_ax.set_xlabel("seconds")
    rss_ax.set_ylabel("query-api RSS (MiB)")
    cpu_ax = rss_ax.twinx()
    cpu_pct = [0.0] + [
        100 * (b["cpu"] - a["cpu"]) / (b["t"] - a["t"]) for a, b in itertools.pairwise(samples)
    ]
    cpu_ax.plot(
        times, cpu_pct, color="#c0392b", alpha=0.6, linewidth=0.8, label="CPU (% of a core)"
    )
    cpu_ax.set_ylabel("query-api CPU (% of a core)")
    rss_ax.legend(loc="upper left", fontsize=8)
    cpu_ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
