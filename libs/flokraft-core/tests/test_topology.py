from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from flokraft_core.messaging.topology import DEFAULT_FILE, Topology, load_topology


def test_the_shared_definition_matches_the_design() -> None:
    topology = load_topology(DEFAULT_FILE)
    jobs = topology.subscription("analysis-jobs-analyzer")
    assert jobs.topic == "analysis-jobs"
    assert jobs.ack_deadline_seconds == 60
    assert jobs.enable_message_ordering
    assert jobs.dead_letter_policy is not None
    assert jobs.dead_letter_policy.max_delivery_attempts == 5
    assert jobs.dead_letter_policy.dead_letter_topic == "analysis-jobs-dead-letter"
    assert jobs.retry_policy is not None
    assert {t.name for t in topology.topics} >= {"analysis-jobs", "analysis-jobs-dead-letter"}
    dead = topology.subscription("analysis-jobs-dead-letter-analyzer")
    assert dead.topic == "analysis-jobs-dead-letter"


def test_out_of_range_values_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "topics: [{name: t}]\nsubscriptions: [{name: s, topic: t, ackDeadlineSeconds: 5}]\n"
    )
    with pytest.raises(ValidationError):
        load_topology(path)
    with pytest.raises(ValidationError):
        Topology.model_validate({"topics": [], "subscriptions": [], "extra": 1})
