"""Writes the dashboards' JSON into the chart: python -m flokraft_observability [--check]."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from flokraft_observability import analyzer, dashboard

REPO_ROOT = Path(__file__).resolve().parents[4]
OUTPUT_DIR = REPO_ROOT / "helm" / "flokraft" / "dashboards"
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    dashboard.UID: dashboard.build,
    analyzer.UID: analyzer.build,
}


def _without_nulls(value: Any) -> Any:
    """Grafana's importer trips over `"options": null`; absent means default. A threshold
    step's `"value": null` stays: it is how Grafana writes the base step (-Infinity)."""
    if isinstance(value, dict):
        step = set(value) == {"color", "value"}
        return {
            k: _without_nulls(v)
            for k, v in value.items()
            if v is not None or (step and k == "value")
        }
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def render(uid: str) -> str:
    model = json.loads(json.dumps(DASHBOARDS[uid]().build(), cls=JSONEncoder))
    return json.dumps(_without_nulls(model), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for uid in DASHBOARDS:
        path = OUTPUT_DIR / f"{uid}.json"
        text = render(uid)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        sys.exit(f"stale: {', '.join(stale)}: run python -m flokraft_observability")


if __name__ == "__main__":
    main()
