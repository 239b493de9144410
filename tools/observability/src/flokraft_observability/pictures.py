"""Renders each dashboard's panels to one PNG, from a running Prometheus's data, laid out
on Grafana's grid (matplotlib). docs/observability.md shows the result. Time series are
drawn as lines; stat panels as their last values, coloured by the panel's thresholds as
Grafana colours them. A panel whose queries read metrics no local process exports
(kube-state-metrics, cAdvisor, Cloud Monitoring) says so in its title: its series are
synthetic because no cluster runs here.

    python -m flokraft_observability.pictures --prometheus http://127.0.0.1:9090 \\
        --namespace flokraft-local --minutes 15 --out docs/images
"""

from __future__ import annotations

import argparse
import math
import textwrap
import time
from pathlib import Path

import httpx
import matplotlib
import matplotlib.patches

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from flokraft_observability.local import LOCAL_NAMESPACE
from flokraft_observability.queries import (
    Panel,
    dashboards,
    is_external,
    panels,
    substitute,
)

Series = tuple[str, list[float], list[float]]  # legend, unix times, values


def _legend(template: str, labels: dict[str, str]) -> str:
    if not template or template == "__auto":
        return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"
    out = template
    for key, value in labels.items():
        out = out.replace("{{" + key + "}}", value)
    return out


def query_range(
    client: httpx.Client, expr: str, start: float, end: float, step: float
) -> list[tuple[dict[str, str], list[float], list[float]]]:
    response = client.get(
        "/api/v1/query_range", params={"query": expr, "start": start, "end": end, "step": step}
    )
    response.raise_for_status()
    out = []
    for result in response.json()["data"]["result"]:
        times = [float(t) for t, _ in result["values"]]
        values = [float(v) for _, v in result["values"]]
        out.append((result["metric"], times, values))
    return out


def _unit_formatter(unit: str) -> FuncFormatter:
    def fmt(value: float, _: object) -> str:
        if unit == "bytes":
            for size, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
                if abs(value) >= size:
                    return f"{value / size:.3g} {suffix}"
            return f"{value:.0f} B"
        if unit == "percentunit":
            return f"{value * 100:.3g}%"
        if unit == "s":
            return f"{value * 1000:.3g} ms" if abs(value) < 1 and value else f"{value:.3g} s"
        if unit in ("reqps", "ops"):
            return f"{value:.3g}/s"
        return f"{value:.3g}"

    return FuncFormatter(fmt)


SYNTHETIC = " [synthetic: no cluster here]"
# Grafana's named colours, for the stat panels.
COLOURS = {"green": "#56a64b", "orange": "#ff9830", "red": "#e02f44"}


def query_instant(client: httpx.Client, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
    response = client.get("/api/v1/query", params={"query": expr, "time": at})
    response.raise_for_status()
    return [(r["metric"], float(r["value"][1])) for r in response.json()["data"]["result"]]


def draw(
    client: httpx.Client, path: Path, out: Path, namespace: str, start: float, end: float
) -> Path:
    items = list(panels(path))
    top = min(p.grid[1] for p in items)  # the first row header's line stays out
    rows = max(p.grid[1] + p.grid[3] for p in items) - top
    step = max(1.0, (end - start) / 200)
    height = rows * 0.42  # inches
    fig = plt.figure(figsize=(16, height), dpi=80)
    grid = fig.add_gridspec(
        rows, 24, hspace=2.2, wspace=1.2, top=1 - 0.9 / height, bottom=0.3 / height
    )
    for panel in items:
        x, y, w, h = panel.grid
        ax = fig.add_subplot(grid[y - top : y - top + h - 1, x : x + w])
        if panel.kind == "stat":
            _stat(ax, client, panel, namespace, start, end, step)
        else:
            _plot(ax, client, panel, namespace, start, end, step)
    title = path.stem.replace("-", " ")
    fig.suptitle(f"{title} (namespace {namespace})", fontsize=14, y=0.995)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{path.stem}.png"
    fig.savefig(target, bbox_inches="tight")
    plt.close(fig)
    return target


def _format(unit: str, value: float) -> str:
    text: str = _unit_formatter(unit)(value, None)
    return text


def _colour(panel: Panel, value: float) -> str:
    colour = panel.thresholds[0][1] if panel.thresholds else "green"
    for start, name in panel.thresholds:
        if value >= start:
            colour = name
    return COLOURS.get(colour, colour)


def _stat(
    ax: Axes,
    client: httpx.Client,
    panel: Panel,
    namespace: str,
    start: float,
    end: float,
    step: float,
) -> None:
    """The last value of each series (lastNotNull), one coloured box per series."""
    window = f"{max(1, round((end - start) / 60))}m"
    values: list[tuple[str, float]] = []
    for expr, legend in panel.targets:
        promql = substitute(expr, namespace, rate_interval="1m", time_range=window)
        if panel.instant:
            found = query_instant(client, promql, end)
        else:
            found = [
                (labels, next((v for v in reversed(vs) if math.isfinite(v)), math.nan))
                for labels, _, vs in query_range(client, promql, start, end, step)
            ]
        values += [(_legend(legend, labels), value) for labels, value in found]
    external = any(is_external(expr) for expr, _ in panel.targets)
    # Stat panels are narrow: the note goes on a line of its own.
    title = panel.title + ("\n" + SYNTHETIC.strip() if external else "")
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_axis_off()
    if not values:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return
    width = 1 / len(values)
    for index, (name, value) in enumerate(sorted(values)):
        box = matplotlib.patches.FancyBboxPatch(
            (index * width + 0.01, 0.02),
            width - 0.02,
            0.9,
            boxstyle="round,pad=0,rounding_size=0.02",
            transform=ax.transAxes,
            color=_colour(panel, value) if math.isfinite(value) else "#999999",
        )
        ax.add_patch(box)
        centre = index * width + width / 2
        label = _format(panel.unit, value) if math.isfinite(value) else "n/a"
        ax.text(centre, 0.55, label, ha="center", va="center", fontsize=13, color="white",
                weight="bold", transform=ax.transAxes)  # fmt: skip
        ax.text(centre, 0.2, textwrap.fill(name, 16), ha="center", va="center", fontsize=6,
                color="white", transform=ax.transAxes)  # fmt: skip


def _plot(
    ax: Axes,
    client: httpx.Client,
    panel: Panel,
    namespace: str,
    start: float,
    end: float,
    step: float,
) -> None:
    external = any(is_external(expr) for expr, _ in panel.targets)
    drawn = 0
    for expr, legend in panel.targets:
        for labels, times, values in query_range(
            client, substitute(expr, namespace, rate_interval="1m"), start, end, step
        ):
            minutes = [(t - end) / 60 for t in times]
            clean = [v if math.isfinite(v) else float("nan") for v in values]
            ax.plot(minutes, clean, label=_legend(legend, labels), linewidth=1.2)
            drawn += 1
    note = SYNTHETIC if external else ""
    ax.set_title(panel.title + note, fontsize=9, loc="left")
    ax.yaxis.set_major_formatter(_unit_formatter(panel.unit))
    ax.tick_params(labelsize=7)
    ax.set_xlabel("minutes", fontsize=7)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=6, loc="upper left", ncol=2, framealpha=0.6)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)


def render_all(prometheus: str, out: Path, namespace: str, minutes: float) -> list[Path]:
    end = time.time()
    start = end - minutes * 60
    with httpx.Client(base_url=prometheus, timeout=30) as client:
        return [draw(client, path, out, namespace, start, end) for path in dashboards()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--namespace", default=LOCAL_NAMESPACE)
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args(argv)
    for path in render_all(args.prometheus, args.out, args.namespace, args.minutes):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
