"""Plots of `make bench-query`'s figures (the JSON it writes), for docs/benchmarks.md.

    uv run --group bench python bench/plot_query_bench.py [--json .local/bench-results/query.json]
        [--out docs/images]

Three PNGs per collection size: the latency distribution of every arm, the query-api CPU
and Firestore documents read per poll of every arm, and query-api's RSS through each arm.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

REPO = Path(__file__).resolve().parents[1]


def _names(arms: list[dict[str, Any]]) -> list[str]:
    return [str(a["name"]) for a in arms]


def latency(size: dict[str, Any], out: Path) -> Path:
    arms = size["arms"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.boxplot(
        [a["latencies_ms"] for a in arms],
        orientation="horizontal",
        whis=(1, 99),
        showfliers=False,
        tick_labels=_names(arms),
    )
    ax.set_xscale("log")
    ax.set_xlabel("latency, ms (log; box p25 to p75, whiskers p1 to p99)")
    ax.set_title(f"GET /analyses latency per arm — {size['documents']:,} analyses")
    ax.invert_yaxis()
    fig.tight_layout()
    path = out / f"query-bench-latency-{size['documents']}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cost(size: dict[str, Any], out: Path) -> Path:
    arms = [a for a in size["arms"] if a["reads_per_poll"] is not None]
    names = _names(arms)
    fig, (cpu_ax, reads_ax) = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    cpu = [a["cpu_ms_per_poll"] or 0.0 for a in arms]
    reads = [a["reads_per_poll"] for a in arms]
    cpu_ax.barh(names, cpu, color="#4c72b0")
    cpu_ax.set_xlabel("server CPU ms per poll (query-api; old backend: gunicorn)")
    reads_ax.barh(names, reads, color="#dd8452")
    reads_ax.set_xscale("symlog", linthresh=1)
    reads_ax.set_xlabel("Firestore documents read per poll (symlog)")
    for ax, values in ((cpu_ax, cpu), (reads_ax, reads)):
        for y, value in enumerate(values):
            ax.annotate(f" {value:.2f}", (value, y), va="center", fontsize=8)
    cpu_ax.invert_yaxis()
    fig.suptitle(
        f"Cost per poll — {size['documents']:,} analyses "
        "(raw query: no server; old backend: gunicorn)"
    )
    fig.tight_layout()
    path = out / f"query-bench-cost-{size['documents']}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rss(size: dict[str, Any], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4))
    offset = 0.0
    for arm in size["arms"]:
        samples = arm["rss_samples"]
        if not samples:
            continue
        start = samples[0][0]
        xs = [offset + t - start for t, _ in samples]
        ax.plot(xs, [value / 2**20 for _, value in samples], label=arm["name"])
        offset = xs[-1] + 1
    ax.set_xlabel("seconds (arms one after the other)")
    ax.set_ylabel("server RSS, MiB (process tree)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"Server RSS through the arms — {size['documents']:,} analyses")
    fig.tight_layout()
    path = out / f"query-bench-rss-{size['documents']}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--json", type=Path, default=REPO / ".local/bench-results/query.json")
    parser.add_argument("--out", type=Path, default=REPO / "docs/images")
    args = parser.parse_args()
    figures = json.loads(args.json.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    for size in figures["sizes"]:
        for draw in (latency, cost, rss):
            print(draw(size, args.out))


if __name__ == "__main__":
    main()
