"""A real Prometheus against the real services: query-api, rerun-api and the analyzer run
as processes on the session's emulators, Debian's Prometheus scrapes them (labelled as the
chart's scrape paths label a pod) with the chart's own rules loaded, a short load and a few
analyses run, and then every dashboard query returns at least one series and every alert
expression evaluates with every one of its selectors matching series.

Queries over kube-state-metrics, cAdvisor and Pub/Sub (Cloud Monitoring) metrics, which no
local process exports, are listed and answered by synthetic series (synthetic.py); the
promtool unit tests check the alerts over those metrics fire and stay quiet.

OBSERVABILITY_PICTURES=docs/images OBSERVABILITY_LOAD_SECONDS=200 pytest ... also writes the
dashboards' pictures for docs/observability.md from this Prometheus, after a longer load.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.cloud import firestore as gfs

from analyzer.engine.synthetic import write_dance_video
from flokraft_core.messaging.topology import apply_topology, load_topology
from flokraft_devstack.components import LOG_DIR, service
from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess, free_port, wait_until
from flokraft_observability import pictures
from flokraft_observability.local import (
    LOCAL_NAMESPACE,
    RUNBOOKS,
    Target,
    command,
    write_config,
)
from flokraft_observability.names import fill
from flokraft_observability.queries import (
    DASHBOARD_DIR,
    alert_exprs,
    dashboards,
    is_external,
    panels,
    selectors,
    substitute,
)
from tests.observability import synthetic
from tests.observability.chart import rule_groups
from tests.query_api.conftest import PAGE_TOKEN_SECRET
from tests.rerun_api.support import seed
from tests.support.sse import EventStream

NS = LOCAL_NAMESPACE
SERVICES = ("query-api", "rerun-api", "analyzer")
LOAD_SECONDS = float(os.environ.get("OBSERVABILITY_LOAD_SECONDS", "12"))


@dataclass
class Observed:
    prometheus: str
    services: dict[str, ManagedProcess]
    firestore: ManagedProcess
    issuer: TestIssuer
    db: gfs.Client
    analyses: list[str]

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert response.status_code == 200, f"{expr}\n{body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.prometheus}{path}", timeout=10)
        response.raise_for_status()
        return response.json()["data"]


def _prometheus() -> str:
    found = shutil.which("prometheus")
    if not found:
        pytest.fail("prometheus is missing: install Debian's `prometheus` package (.ci/run does)")
    return found


@pytest.fixture
def observed(
    private_firestore: ManagedProcess,
    pubsub: ManagedProcess,
    issuer: TestIssuer,
    project_id: str,
    tmp_path: Path,
) -> Iterator[Observed]:
    apply_topology(project_id, load_topology())
    db = gfs.Client(project=project_id)
    videos = tmp_path / "videos"
    videos.mkdir()
    analyses = []
    for index in range(2):
        video = videos / f"clip{index}.mp4"
        write_dance_video(video, duration_seconds=2, bpm=120, dancers="mirrored", size=(160, 90))
        analysis_id = f"obs-{uuid.uuid4().hex[:10]}"
        seed(db, analysis_id, user="alice", video_url=video.as_uri())
        analyses.append(analysis_id)

    common = {
        "GOOGLE_CLOUD_PROJECT": project_id,
        "FIRESTORE_EMULATOR_HOST": private_firestore.host,
        "PUBSUB_EMULATOR_HOST": pubsub.host,
        "MEMORY_LOG_INTERVAL_SECONDS": "3600",
    }
    specs = {
        "query-api": (
            "query_api.main",
            {
                **issuer.env(),
                "PAGE_TOKEN_SECRET": PAGE_TOKEN_SECRET,
                # Low enough for the load below to meet 429s; short Firestore budgets so a
                # frozen emulator answers 503 quickly.
                "RATE_LIMIT": "30/minute",
                "FIRESTORE_TIMEOUT_SECONDS": "1",
                "FIRESTORE_RETRY_SECONDS": "0.5",
                # Two streams fill a replica, so the load meets the cap's refusals.
                "EVENTS_MAX_STREAMS": "2",
            },
        ),
        "rerun-api": ("rerun_api.main", {**issuer.env()}),
        "analyzer": (
            "analyzer.main",
            {
                "ALLOW_FILE_URLS": "true",
                "ALLOWED_FILE_ROOTS": json.dumps([str(videos)]),
                "HEARTBEAT_TIMEOUT_SECONDS": "120",
                # As make dev sets it: the limit the local stack enforces, exported.
                "MEMORY_LIMIT_BYTES": str(2 * 2**30),
            },
        ),
    }
    processes = {
        name: service(name, module, {**common, **env}) for name, (module, env) in specs.items()
    }
    with ThreadPoolExecutor(len(processes)) as pool:  # they import for seconds each
        list(pool.map(lambda p: p.start(ready_path="/healthz", timeout=90), processes.values()))
    pids = {name: p.process.pid for name, p in processes.items() if p.process}
    exporter, exporter_address = synthetic.serve(NS, pids)

    port = free_port()
    config = write_config(
        tmp_path / "prometheus",
        [Target(name, p.host) for name, p in processes.items()],
        interval="1s",
        honor_labels_targets=[exporter_address],
    )
    # The rules Prometheus loads are the chart's own (helm's rendering of them).
    (tmp_path / "prometheus" / "rules.yaml").write_text(json.dumps({"groups": rule_groups(NS)}))
    prometheus = ManagedProcess(
        name="prometheus",
        command=command(_prometheus(), config, tmp_path / "tsdb", f"127.0.0.1:{port}"),
        env={},
        port=port,
        log_path=LOG_DIR / f"prometheus-{port}.log",
    ).start(ready_path="/-/ready", timeout=30)
    try:
        yield Observed(prometheus.url, processes, private_firestore, issuer, db, analyses)
    finally:
        prometheus.stop()
        exporter.shutdown()
        for process in processes.values():
            process.stop(timeout=30)
        db.close()


def _drive(observed: Observed) -> None:
    """Polls as frontends do: a few users within the rate limit (each replaced by a fresh
    one every 20 s) and one greedy user above it (429s), with 304s from the ETag and 404s;
    reruns the analyses every 20 s; holds two event streams (query-api's cap here) and every
    30 s asks for a third, which is refused; then freezes Firestore for a moment so
    query-api answers 503."""
    query_api = observed.services["query-api"].url
    rerun_api = observed.services["rerun-api"].url
    alice = observed.issuer.headers("alice")
    statuses: set[int] = set()
    etags: dict[str, str] = {}
    events = f"{query_api}/analyses/events"
    streams = [EventStream(events, observed.issuer.headers(f"watcher{i}")).open() for i in range(2)]
    assert [s.status for s in streams] == [200, 200]
    refused: list[int | None] = []
    with httpx.Client(timeout=20) as http:
        started = time.monotonic()
        next_rerun = started
        next_refusal = started + 5
        reruns = 0
        step = 0
        while time.monotonic() - started < LOAD_SECONDS:
            now = time.monotonic()
            if now >= next_refusal:
                extra = EventStream(events, observed.issuer.headers("watcher-extra")).open()
                refused.append(extra.status)
                extra.close()
                next_refusal = now + 30
            if now >= next_rerun:
                analysis_id = observed.analyses[reruns % len(observed.analyses)]
                response = http.post(f"{rerun_api}/analyses/{analysis_id}/rerun", headers=alice)
                assert response.status_code == 202, response.text
                reruns += 1
                next_rerun = now + (0 if reruns < len(observed.analyses) else 20)
            # Steps 0-2: three ordinary users (1 request/s each); 3-5: alice (3/s).
            user = f"u{step % 3}-{int((now - started) / 20)}" if step % 6 < 3 else "alice"
            headers = observed.issuer.headers(user)
            if user in etags:
                headers["If-None-Match"] = etags[user]
            response = http.get(f"{query_api}/analyses", headers=headers)
            etags[user] = response.headers.get("ETag", etags.get(user, ""))
            statuses.add(response.status_code)
            if step % 12 == 0:
                http.get(f"{query_api}/analyses/no-such-analysis", headers=headers)
            step += 1
            time.sleep(max(0.0, started + step / 6 - time.monotonic()))
        assert {200, 304, 429} <= statuses, statuses
        assert refused, "no stream was refused"
        assert set(refused) == {503}, refused
        for stream in streams:
            stream.close()

        process = observed.firestore.process
        assert process is not None
        os.killpg(process.pid, signal.SIGSTOP)
        try:
            codes = [
                http.get(
                    f"{query_api}/analyses/x{i}", headers=observed.issuer.headers(f"v{i}")
                ).status_code
                for i in range(3)
            ]
        finally:
            os.killpg(process.pid, signal.SIGCONT)
        assert 503 in codes, codes


def test_every_dashboard_query_and_alert_answers_from_a_real_prometheus(
    observed: Observed, tmp_path: Path
) -> None:
    _drive(observed)
    done = f'sum(analyzer_jobs_total{{namespace="{NS}", outcome="done"}})'
    assert wait_until(
        lambda: float((observed.query(done) or [{"value": [0, "0"]}])[0]["value"][1]) >= 2, 120
    ), f"analyses not done\n{observed.services['analyzer'].tail()}"
    time.sleep(3)  # a few more scrapes after the last event

    targets = observed.get("/api/v1/targets")["activeTargets"]
    assert len(targets) == len(SERVICES) + 1
    assert all(t["health"] == "up" for t in targets), targets

    # The chart's rules are loaded, every one of them.
    loaded = {
        rule["name"] for group in observed.get("/api/v1/rules")["groups"] for rule in group["rules"]
    }
    assert loaded == set(alert_exprs())

    # The at-a-glance stats after the Firestore freeze: every service still up (a shared
    # dependency's outage shows as 5xx answers, not as pods gone), and the error ratio
    # counts query-api's 503s.
    glance = {
        p.title: p for p in panels(DASHBOARD_DIR / "flokraft-overview.json") if p.kind == "stat"
    }
    ((up_expr, _),) = glance["Is it up? Pods scraped"].targets
    up = {
        r["metric"]["container"]: float(r["value"][1])
        for r in observed.query(substitute(up_expr, NS))
    }
    assert up == dict.fromkeys(SERVICES, 1.0), up
    ((errors_expr, _),) = glance["Error ratio (5xx, 5 min)"].targets
    errors = {
        r["metric"]["container"]: float(r["value"][1])
        for r in observed.query(substitute(errors_expr, NS))
    }
    assert errors["query-api"] > 0, errors
    print(f"at a glance after the freeze: pods up {up}, 5xx ratio over 5 min {errors}")

    # Grafana's variable queries find this namespace.
    namespaces = httpx.get(
        f"{observed.prometheus}/api/v1/label/namespace/values",
        params={"match[]": 'up{container=~"query-api|rerun-api|analyzer"}'},
        timeout=10,
    ).json()["data"]
    assert namespaces == [NS]

    empty: list[str] = []
    external: list[str] = []
    for path in dashboards():
        for panel in panels(path):
            for expr, _ in panel.targets:
                if is_external(expr):
                    external.append(f"{path.stem} / {panel.title}: {expr}")
                if not observed.query(substitute(expr, NS)):
                    empty.append(f"{path.stem} / {panel.title}: {expr}")
    for name, expr in alert_exprs().items():
        rendered = substitute(fill(expr, NS, RUNBOOKS.as_uri()), NS)
        observed.query(rendered)  # parses and evaluates (a 400 fails in query())
        for selector in selectors(rendered):
            if not observed.query(f"count({selector})"):
                empty.append(f"alert {name}: {selector}")
    assert not empty, "no series for:\n" + "\n".join(empty)
    # Queries answered by synthetic series only: what no local process exports.
    print("queries over external metrics (synthetic here):\n" + "\n".join(external))
    assert external

    out = Path(os.environ.get("OBSERVABILITY_PICTURES") or tmp_path / "pictures")
    minutes = max(2.0, LOAD_SECONDS / 60 + 1)
    written = pictures.render_all(observed.prometheus, out, NS, minutes)
    assert [p.name for p in written] == [f"{p.stem}.png" for p in dashboards()]
    assert all(p.stat().st_size > 20_000 for p in written)
