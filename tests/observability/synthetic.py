"""Series of the cluster that no local process exports, served for the real-Prometheus test
the way kube-state-metrics, cAdvisor and GKE managed Prometheus's Cloud Monitoring bridge
label them (Prometheus scrapes this exporter with honor_labels, as it does
kube-state-metrics). Values are made up, except the "cAdvisor" working set, which is each
service process's real RSS."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import psutil
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from tests.support.processes import free_port

LIMITS = {"query-api": 256 * 2**20, "rerun-api": 256 * 2**20, "analyzer": 2 * 2**30}


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
            available.add_metric([ns, f"flokraft-{container}"], 1)
            for name, value in (
                ("status_current_replicas", 1),
                ("status_desired_replicas", 1),
                ("spec_max_replicas", 10),
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
        yield from hpa.values()
        yield from (limits, terminated, waiting, restarts, working_set)
        pubsub = {
            name: GaugeMetricFamily(
                f"pubsub_googleapis_com:subscription_{name}", "", labels=["subscription_id"]
            )
            for name in ("num_undelivered_messages", "oldest_unacked_message_age")
        }
        for subscription in ("analysis-jobs-analyzer", "analysis-jobs-dead-letter-analyzer"):
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
