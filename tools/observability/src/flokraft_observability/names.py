"""Names the dashboards and alerts hold as placeholders, and where they come from.

The Pub/Sub subscriptions are written once, in helm/flokraft/files/pubsub-topology.yaml:
the chart (templates/_helpers.tpl, flokraft.jobSubscription and
flokraft.deadLetterSubscription) fills the placeholders from it at render time, and the
local tools (make dev-observability, the pictures, tests/observability) fill them the same
way here, by the same rule: pubsub.jobSubscription / deadLetterSubscription of values.yaml
when set, else the one subscription with a deadLetterPolicy and the one subscription on its
dead-letter topic. tests/observability checks both agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[4]
CHART = REPO_ROOT / "helm" / "flokraft"
TOPOLOGY = CHART / "files" / "pubsub-topology.yaml"
VALUES = CHART / "values.yaml"

# Placeholders of files/alerts.yaml and the dashboards' JSON, filled by the chart.
NAMESPACE = "__NAMESPACE__"
RUNBOOKS = "__RUNBOOKS__"
JOB_SUBSCRIPTION = "__JOB_SUBSCRIPTION__"
DEAD_LETTER_SUBSCRIPTION = "__DEAD_LETTER_SUBSCRIPTION__"


@dataclass(frozen=True)
class Subscriptions:
    job: str
    dead_letter: str


def _one(candidates: list[str], what: str) -> str:
    if len(candidates) != 1:
        raise ValueError(f"{TOPOLOGY.name}: {len(candidates)} {what} ({', '.join(candidates)})")
    return candidates[0]


def subscriptions(topology: Path = TOPOLOGY, values: Path = VALUES) -> Subscriptions:
    """The job and dead-letter subscriptions, as the chart picks them."""
    subs: list[dict[str, Any]] = yaml.safe_load(topology.read_text())["subscriptions"]
    pubsub: dict[str, str] = yaml.safe_load(values.read_text()).get("pubsub", {})
    by_name = {s["name"]: s for s in subs}
    job = pubsub.get("jobSubscription") or _one(
        [s["name"] for s in subs if s.get("deadLetterPolicy")],
        "subscriptions with a deadLetterPolicy",
    )
    dead_letter_topic = by_name[job]["deadLetterPolicy"]["deadLetterTopic"]
    dead = pubsub.get("deadLetterSubscription") or _one(
        [s["name"] for s in subs if s["topic"] == dead_letter_topic],
        f"subscriptions on {dead_letter_topic}",
    )
    for name in (job, dead):
        if name not in by_name:
            raise ValueError(f"subscription {name!r} is not in {topology}")
    return Subscriptions(job=job, dead_letter=dead)


def fill(text: str, namespace: str, runbooks_url: str, subs: Subscriptions | None = None) -> str:
    """The placeholders filled as templates/observability.yaml fills them."""
    subs = subs or subscriptions()
    return (
        text.replace(NAMESPACE, namespace)
        .replace(RUNBOOKS, runbooks_url)
        .replace(JOB_SUBSCRIPTION, subs.job)
        .replace(DEAD_LETTER_SUBSCRIPTION, subs.dead_letter)
    )
