"""Series of the cluster that no local process exports, served for the real-Prometheus test
the way kube-state-metrics, cAdvisor and GKE managed Prometheus's Cloud Monitoring bridge
label them (Prometheus scrapes this exporter with honor_labels, as it does
kube-state-metrics). No cluster runs here, so these are synthetic, and the pictures say so
on every panel that reads them. Where the local run has the fact, they report it: a
replica is available while its process runs, the "cAdvisor" working set is the process's
real RSS, the limits and the autoscalers' maximum are the chart's values, and no process
was restarted. The Pub/Sub backlog (Cloud Monitoring) has no local source and reads 0, on
the subscriptions the chart names (flokraft_observability.names)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import psutil
import yaml
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from flokraft_devstack.processes import free_port
from flokraft_observability.names import VALUES, subscriptions

_SERVICES = yaml.safe_load(VALUES.read_text())["services"]
# The chart's memory limits and autoscaling maximum per service.
LIMITS = {
    name: int(svc["resources"]["limits"]["memory"].rstrip("GMi"))
    * (2**30 if svc["resources"]["limits"]["memory"].endswith("Gi") else 2**20)
    for name, svc in _SERVICES.items()
}
MAX_REPLICAS = {name: int(svc["autoscaling"]["maxReplicas"]) for name, svc in _SERVICES.items()}


class ClusterState(Collector):
    def __init__(self, namespace: str, pids: Mapping[str, int]) -> None:
        self.namespace = namespace
        self.pids = pids  # container -> pid of the real process

    def _pod(self, container: str) -> list[str]:
        return [self.namespace, f"{container}-local", container]

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        pod_labels = ["namespace", "pod", "container"]
        ns = self.namespace
        available = GaugeMetricFamily(
            "kube_deployment_status_replicas_available", "", labels=["namespace", "deployment"]
        )
        desired = GaugeMetricFamily(
            "kube_deployment_spec_replicas", "", labels=["namespace", "deployment"]
        )
        hpa = {
            name: GaugeMetricFamily(
                f"kube_horizontalpodautoscaler_{name}",
                "",
                labels=["namespace", "horizontalpodautoscaler"],
            )
            for name in ("status_current_replicas", "status_desired_replicas", "spec_max_replicas")
        }
        limits = GaugeMetricFamily(
            "kube_pod_container_resource_limits", "", labels=[*pod_labels, "resource", "unit"]
        )
        terminated = GaugeMetricFamily(
            "kube_pod_container_status_last_terminated_reason", "", labels=[*pod_labels, "reason"]
        )
        waiting = GaugeMetricFamily(
            "kube_pod_container_status_waiting_reason", "", labels=[*pod_labels, "reason"]
        )
        restarts = CounterMetricFamily("kube_pod_container_status_restarts", "", labels=pod_labels)
        working_set = GaugeMetricFamily("container_memory_working_set_bytes", "", labels=pod_labels)
        for container, pid in self.pids.items():
            running = 1 if psutil.pid_exists(pid) else 0
            available.add_metric([ns, f"flokraft-{container}"], running)
            desired.add_metric([ns, f"flokraft-{container}"], 1)
            for name, value in (
                ("status_current_replicas", running),
                ("status_desired_replicas", 1),
                ("spec_max_replicas", MAX_REPLICAS[container]),
            ):
                hpa[name].add_metric([ns, f"flokraft-{container}"], value)
            limits.add_metric([*self._pod(container), "memory", "byte"], LIMITS[container])
            terminated.add_metric([*self._pod(container), "OOMKilled"], 0)
            waiting.add_metric([*self._pod(container), "CrashLoopBackOff"], 0)
            restarts.add_metric(self._pod(container), 0)
            try:
                rss = psutil.Process(pid).memory_info().rss
            except psutil.Error:
                continue
            working_set.add_metric(self._pod(container), rss)
        yield available
        yield desired
        yield from hpa.values()
        yield from (limits, terminated, waiting, restarts, working_set)
        pubsub = {
            name: GaugeMetricFamily(
                f"pubsub_googleapis_com:subscription_{name}", "", labels=["subscription_id"]
            )
            for name in ("num_undelivered_messages", "oldest_unacked_message_age")
        }
        names = subscriptions()
        for subscription in (names.job, names.dead_letter):
            for family in pubsub.values():
                family.add_metric([subscription], 0)
        yield from pubsub.values()


def serve(namespace: str, pids: Mapping[str, int]) -> tuple[HTTPServer, str]:
    """Serves the text format only: prometheus_client's OpenMetrics output (which
    Prometheus asks for first) rewrites the colons of GMP's names to underscores."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterState(namespace, pids))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = generate_latest(registry)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}"
