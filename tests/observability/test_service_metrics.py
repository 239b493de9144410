"""The metrics each service adds for operators, and the log format a person reads: the
container's memory limit and working set (cgroup v2, v1, none), the analyzer child's and
tree's RSS, and LOG_FORMAT; plus `make dev-observability`'s Prometheus configuration."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import psutil
import pytest
import yaml

from analyzer import metrics as analyzer_metrics
from flokraft_core.logs import configure_logging, get_logger
from flokraft_core.memory import ContainerMemoryCollector
from flokraft_devstack.stack import StackSettings, processes

MiB = 2**20


def samples(collector: ContainerMemoryCollector) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("source", "")): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_cgroup_v2_limit_and_working_set(tmp_path: Path) -> None:
    (tmp_path / "memory.max").write_text(f"{256 * MiB}\n")
    (tmp_path / "memory.current").write_text(f"{200 * MiB}\n")
    (tmp_path / "memory.stat").write_text(f"anon 1\nactive_file 2\ninactive_file {50 * MiB}\n")
    collector = ContainerMemoryCollector(tmp_path)
    collector.configured_limit = 999  # the cgroup's limit wins
    assert samples(collector) == {
        ("flokraft_memory_limit_bytes", "cgroup"): 256 * MiB,
        ("flokraft_memory_working_set_bytes", "cgroup"): 150 * MiB,
    }


def test_cgroup_v1_limit_and_working_set(tmp_path: Path) -> None:
    memory = tmp_path / "memory"
    memory.mkdir()
    (memory / "memory.limit_in_bytes").write_text(f"{2048 * MiB}\n")
    (memory / "memory.usage_in_bytes").write_text(f"{1024 * MiB}\n")
    (memory / "memory.stat").write_text(f"inactive_file 7\ntotal_inactive_file {24 * MiB}\n")
    assert samples(ContainerMemoryCollector(tmp_path)) == {
        ("flokraft_memory_limit_bytes", "cgroup"): 2048 * MiB,
        ("flokraft_memory_working_set_bytes", "cgroup"): 1000 * MiB,
    }


@pytest.mark.parametrize("unlimited", ["v2", "v1", "no cgroup"])
def test_without_a_cgroup_limit_the_configured_one_and_the_process_tree(
    tmp_path: Path, unlimited: str
) -> None:
    if unlimited == "v2":
        (tmp_path / "memory.max").write_text("max\n")
        (tmp_path / "memory.current").write_text("12345\n")
    elif unlimited == "v1":
        (tmp_path / "memory").mkdir()
        (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
        (tmp_path / "memory" / "memory.usage_in_bytes").write_text("12345\n")
    collector = ContainerMemoryCollector(tmp_path)
    assert set(samples(collector)) == {("flokraft_memory_working_set_bytes", "process")}

    collector.configured_limit = 2048 * MiB
    found = samples(collector)
    assert found[("flokraft_memory_limit_bytes", "config")] == 2048 * MiB
    own = psutil.Process().memory_info().rss
    assert found[("flokraft_memory_working_set_bytes", "process")] >= own * 0.5


def test_analyzer_child_gauges_follow_the_running_child() -> None:
    child = psutil.Process(os.getpid())
    assert _gauge("analyzer_child_tree_rss_bytes") == 0
    returned = analyzer_metrics.child_sampled(child, 300 * MiB)
    assert returned == 300 * MiB
    assert _gauge("analyzer_child_tree_rss_bytes") == 300 * MiB
    assert _gauge("analyzer_child_rss_bytes") == pytest.approx(child.memory_info().rss, rel=0.5)
    analyzer_metrics.child_ended(child)
    assert _gauge("analyzer_child_tree_rss_bytes") == 0
    assert _gauge("analyzer_child_rss_bytes") == 0


def _gauge(name: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(name)
    assert value is not None, name
    return value


def test_known_label_values_are_exported_at_zero() -> None:
    from prometheus_client import REGISTRY

    for name, labels in (
        ("analyzer_jobs_total", {"outcome": "failed"}),
        ("analyzer_child_kills_total", {"reason": "memory"}),
        ("analyzer_dead_letters_total", {"action": "marked_failed"}),
    ):
        assert REGISTRY.get_sample_value(name, labels) is not None, name


def _log_line(capsys: pytest.CaptureFixture[str], log_format: str) -> str:
    configure_logging("svc", log_format=log_format)  # type: ignore[arg-type]
    try:
        get_logger("t").info("hello", user="alice")
        return capsys.readouterr().out.strip().splitlines()[-1]
    finally:
        logging.getLogger().handlers[:] = []


def test_logs_are_json_unless_a_person_reads_them(capsys: pytest.CaptureFixture[str]) -> None:
    line = json.loads(_log_line(capsys, "auto"))  # captured stdout is no terminal
    assert (line["event"], line["user"], line["service"]) == ("hello", "alice", "svc")
    console = _log_line(capsys, "console")
    assert console.startswith("20")  # the timestamp first, as structlog's console has it
    assert "hello" in console
    assert "user=alice" in console
    # Cloud Logging's fields are for machines only: the console line is as it was.
    assert "severity" not in console
    assert "message=" not in console
    with pytest.raises(json.JSONDecodeError):
        json.loads(console)


def _json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]


def test_json_lines_carry_cloud_loggings_severity_and_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Cloud Logging reads `severity` and `message` from a container's JSON line; our own
    readers (tests, local tools) keep `level` and `event`."""
    configure_logging("svc", "DEBUG", log_format="json")
    try:
        log = get_logger("t")
        log.debug("d")
        log.info("i", user="alice")
        log.warning("w")
        log.error("e")
        log.critical("c")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        # A standard-library logger (uvicorn, the Google clients) goes through the same.
        logging.getLogger("uvicorn.error").warning("Shutting %s", "down")
        lines = _json_lines(capsys)
    finally:
        logging.getLogger().handlers[:] = []
    assert [(line["severity"], line["level"], line["message"], line["event"]) for line in lines][
        :5
    ] == [
        ("DEBUG", "debug", "d", "d"),
        ("INFO", "info", "i", "i"),
        ("WARNING", "warning", "w", "w"),
        ("ERROR", "error", "e", "e"),
        ("CRITICAL", "critical", "c", "c"),
    ]
    assert lines[1]["user"] == "alice"
    failed = lines[5]
    assert (failed["severity"], failed["event"]) == ("ERROR", "failed")
    # The traceback is in the message, where Error Reporting looks for it.
    assert isinstance(failed["message"], str)
    assert failed["message"].startswith("failed\nTraceback")
    assert "ValueError: boom" in failed["message"]
    foreign = lines[6]
    assert (foreign["severity"], foreign["message"], foreign["logger"]) == (
        "WARNING",
        "Shutting down",
        "uvicorn.error",
    )


def test_dev_observability_runs_prometheus_on_the_stack_with_a_valid_config(
    tmp_path: Path,
) -> None:
    if not shutil.which("prometheus") or not shutil.which("promtool"):
        pytest.fail("install Debian's `prometheus` package (.ci/run does)")
    settings = StackSettings(state_dir=tmp_path, prometheus=True, prometheus_port=19090)
    (prometheus,) = [p for p in processes(settings) if p.name == "prometheus"]
    assert "--web.listen-address=127.0.0.1:19090" in prometheus.cmd
    config_path = tmp_path / "prometheus" / "prometheus.yml"
    result = subprocess.run(
        ["promtool", "check", "config", str(config_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(config_path.read_text())
    labels = {
        static["labels"]["container"]: static["targets"]
        for static in config["scrape_configs"][0]["static_configs"]
    }
    assert labels == {
        "query-api": ["127.0.0.1:8001"],
        "rerun-api": ["127.0.0.1:8002"],
        "analyzer": ["127.0.0.1:8003"],
    }
    assert not [p for p in processes(StackSettings(state_dir=tmp_path)) if p.name == "prometheus"]
