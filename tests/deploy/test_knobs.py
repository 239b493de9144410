"""Each operator knob, set in values/knobs.yaml (or another variant), found in the rendered
pods; and the settings other parts of flokraft read, found in each service's environment."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import pytest
import yaml

from .conftest import CHART, kinds

Docs = list[dict[str, Any]]


def deployment(docs: Docs, name: str) -> dict[str, Any]:
    (found,) = [d for d in kinds(docs, "Deployment") if d["metadata"]["name"] == name]
    return found


def pod(docs: Docs, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = deployment(docs, name)["spec"]["template"]
    return spec


def environment(docs: Docs, name: str) -> dict[str, Any]:
    """The container's variables as the kubelet resolves them: ConfigMaps of envFrom
    first, then env; a Secret reference stays ("secret", name, key)."""
    container = pod(docs, name)["spec"]["containers"][0]
    configmaps = {c["metadata"]["name"]: c.get("data", {}) for c in kinds(docs, "ConfigMap")}
    out: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            out.update(configmaps[source["configMapRef"]["name"]])
    for var in container["env"]:
        if "value" in var:
            out[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            out[var["name"]] = ("secret", ref["name"], ref["key"])
    return out


# --- knobs -----------------------------------------------------------------------------


def test_scheduling_knobs_reach_the_pod(rendered: dict[str, Docs]) -> None:
    docs = rendered["knobs"]
    query = pod(docs, "fk-query-api")["spec"]
    assert query["nodeSelector"] == {"cloud.google.com/machine-family": "n2d"}
    assert query["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert query["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "api", "effect": "NoSchedule"}
    ]
    assert query["priorityClassName"] == "flokraft-api"
    # A constraint without a selector spreads the service's own pods; a given one is kept.
    (spread,) = query["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "query-api"
    (rerun_spread,) = pod(docs, "fk-rerun-api")["spec"]["topologySpreadConstraints"]
    assert rerun_spread["labelSelector"] == {"matchLabels": {"tier": "write"}}
    analyzer = pod(docs, "fk-analyzer")["spec"]
    assert analyzer["nodeSelector"] == {"cloud.google.com/gke-spot": "true"}
    assert analyzer["tolerations"][0]["key"] == "cloud.google.com/gke-spot"


def test_pod_metadata_knobs(rendered: dict[str, Docs]) -> None:
    docs = rendered["knobs"]
    template = pod(docs, "fk-query-api")
    assert template["metadata"]["annotations"]["example.com/owner"] == "query-team"
    assert "checksum/config" in template["metadata"]["annotations"]
    assert template["metadata"]["labels"]["tier"] == "read"
    # Extra labels never replace the selector's.
    selector = deployment(docs, "fk-query-api")["spec"]["selector"]["matchLabels"]
    assert selector.items() <= template["metadata"]["labels"].items()
    # commonLabels on every object, nameOverride in app.kubernetes.io/name, fullnameOverride
    # as the prefix of every name.
    for doc in docs:
        assert doc["metadata"]["labels"]["team"] == "dance", doc["metadata"]["name"]
        if doc["kind"] not in ("PubSubTopic", "PubSubSubscription"):
            name = doc["metadata"]["name"]
            assert name == "fk" or name.startswith("fk-"), name
    assert selector["app.kubernetes.io/name"] == "flokraft-probe"


def test_image_and_account_knobs(rendered: dict[str, Docs]) -> None:
    docs = rendered["knobs"]
    query = pod(docs, "fk-query-api")["spec"]
    assert query["containers"][0]["image"] == "flokraft-query-api@sha256:" + "1" * 64
    assert pod(docs, "fk-rerun-api")["spec"]["containers"][0]["image"] == "flokraft-rerun-api:0.1.0"
    pods = [d["spec"]["template"]["spec"] for d in kinds(docs, "Deployment")]
    pods += [d["spec"] for d in kinds(docs, "Pod")]
    for spec in pods:
        assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    # serviceAccounts.create=false: no accounts rendered, the named one or "default" used.
    assert not kinds(docs, "ServiceAccount")
    assert query["serviceAccountName"] == "query-reader"
    assert pod(docs, "fk-analyzer")["spec"]["serviceAccountName"] == "default"
    assert query["containers"][0]["envFrom"][1] == {"secretRef": {"name": "query-api-extra"}}


def test_default_spreads_the_apis_across_zones(rendered: dict[str, Docs]) -> None:
    docs = rendered["default"]
    for name in ("flokraft-query-api", "flokraft-rerun-api"):
        (spread,) = pod(docs, name)["spec"]["topologySpreadConstraints"]
        assert spread["topologyKey"] == "topology.kubernetes.io/zone"
        assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert "topologySpreadConstraints" not in pod(docs, "flokraft-analyzer")["spec"]
    for sa in kinds(docs, "ServiceAccount"):
        assert sa["metadata"]["name"] in {
            f"flokraft-{s}" for s in ("query-api", "rerun-api", "analyzer")
        }


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("services.query-api.maxConcurrentJobs=2", "maxConcurrentJobs"),
        ("services.query-api.role=queue", "role"),
        ("services.analyzer.image.digest=latest", "digest"),
        ("services.query-api.nodeselector.a=b", "nodeselector"),
        # A misspelt service is a new block, which lacks the required fields.
        ("services.query-apii.port=8001", "query-apii"),
    ],
)
def test_schema_rejects_misplaced_knobs(tools: dict[str, str], setting: str, message: str) -> None:
    import subprocess

    result = subprocess.run(
        [tools["helm"], "template", "x", str(CHART), "--set", setting],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0, setting
    assert "schema" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr


# --- settings other parts of flokraft read ----------------------------------------------


def test_page_token_secret_is_generated_or_referenced(rendered: dict[str, Docs]) -> None:
    docs = rendered["default"]
    ref = environment(docs, "flokraft-query-api")["PAGE_TOKEN_SECRET"]
    assert ref == ("secret", "flokraft-page-tokens", "page-token-secret")
    (secret,) = [s for s in kinds(docs, "Secret") if s["metadata"]["name"] == ref[1]]
    assert len(base64.b64decode(secret["data"][ref[2]])) == 64
    for other in ("flokraft-rerun-api", "flokraft-analyzer"):
        assert "PAGE_TOKEN_SECRET" not in environment(docs, other)
    existing = rendered["existing-secrets"]
    assert environment(existing, "flokraft-query-api")["PAGE_TOKEN_SECRET"] == (
        "secret",
        "flokraft-page-tokens-ext",
        "secret",
    )
    assert not kinds(existing, "Secret")
    # The generated value survives upgrades: the template reads the live Secret back.
    template = (CHART / "templates" / "secret.yaml").read_text()
    assert 'lookup "v1" "Secret" .Release.Namespace $name' in template


def test_api_settings_reach_both_apis(rendered: dict[str, Docs]) -> None:
    for name in ("flokraft-query-api", "flokraft-rerun-api"):
        env = environment(rendered["default"], name)
        assert env["RATE_LIMIT_STORAGE_URI"] == "memory://"
        assert env["FORWARDED_ALLOW_IPS"] == ""  # trust nobody
        assert env["FORWARDED_FOR_CLIENT_POSITION"] == "1"
        # Behind Google's external Application Load Balancer: its proxy ranges, and the
        # client is the entry before the load balancer's own address.
        prod = environment(rendered["prod"], name)
        assert prod["FORWARDED_ALLOW_IPS"] == "35.191.0.0/16,130.211.0.0/22"
        assert prod["FORWARDED_FOR_CLIENT_POSITION"] == "2"
        assert env["CORS_ALLOW_ORIGINS"] == ""
        assert env["CORS_ALLOW_ORIGIN_REGEX"] == ""
        env = environment(rendered["existing-secrets"], name)
        assert env["RATE_LIMIT_STORAGE_URI"] == ("secret", "flokraft-redis", "uri")
    for name in ("fk-query-api", "fk-rerun-api"):
        env = environment(rendered["knobs"], name)
        assert env["FORWARDED_ALLOW_IPS"] == "10.0.0.0/8"
        assert (
            env["CORS_ALLOW_ORIGINS"]
            == "https://app.flokraft.example,https://admin.flokraft.example"
        )
        assert env["CORS_ALLOW_ORIGIN_REGEX"] == r"^https://flokraft--pr-[0-9]+\.web\.app$"
    analyzer = environment(rendered["default"], "flokraft-analyzer")
    assert not {"RATE_LIMIT_STORAGE_URI", "CORS_ALLOW_ORIGINS"} & analyzer.keys()


def test_video_settings_reach_rerun_api_and_analyzer(rendered: dict[str, Docs]) -> None:
    for name in ("flokraft-rerun-api", "flokraft-analyzer"):
        env = environment(rendered["default"], name)
        assert env["VIDEO_BUCKET"] == "flokraft-videos"
        assert env["VIDEO_URL_PREFIXES"] == ""  # the code's default gs://<bucket>/{uid}/
    for name in ("fk-rerun-api", "fk-analyzer"):
        env = environment(rendered["knobs"], name)
        assert env["VIDEO_BUCKET"] == "flokraft-prod-videos"
        assert env["VIDEO_URL_PREFIXES"] == (
            "gs://flokraft-prod-videos/{uid}/,https://cdn.flokraft.example/u/{uid}/"
        )


def test_worker_settings_come_from_values_and_topology(rendered: dict[str, Docs]) -> None:
    topology = yaml.safe_load((CHART / "files" / "pubsub-topology.yaml").read_text())
    (jobs,) = [s for s in topology["subscriptions"] if s["name"] == "analysis-jobs-analyzer"]
    env = environment(rendered["default"], "flokraft-analyzer")
    assert env["MAX_ATTEMPTS"] == str(jobs["deadLetterPolicy"]["maxDeliveryAttempts"])
    assert env["MAX_CONCURRENT_JOBS"] == "1"
    assert environment(rendered["knobs"], "fk-analyzer")["MAX_CONCURRENT_JOBS"] == "2"


# --- the analyzer's way out -----------------------------------------------------------


def egress_allows(policy: dict[str, Any], address: str, port: int) -> bool:
    ip = ipaddress.ip_address(address)
    for rule in policy["spec"]["egress"]:
        ports = {p["port"] for p in rule.get("ports", [])}
        if ports and port not in ports:
            continue
        for peer in rule.get("to", [{"ipBlock": {"cidr": "0.0.0.0/0"}}]):
            block = peer.get("ipBlock")
            if block is None:
                continue
            if ip in ipaddress.ip_network(block["cidr"]) and not any(
                ip in ipaddress.ip_network(e) for e in block.get("except", [])
            ):
                return True
    return False


INSIDE = [
    "10.1.2.3",  # RFC 1918: VPC, pods, nodes
    "172.20.0.1",
    "192.168.1.1",
    "100.64.3.4",  # carrier-grade NAT, used for GKE pod ranges
    "169.254.1.1",  # link-local other than the metadata server
    "169.254.169.254",  # the metadata server, but not over 443
    "34.118.224.10",  # GKE's default Service range
    "127.0.0.1",
    "240.1.2.3",  # class E, possible GKE pod range
]
OUTSIDE = [
    "142.250.74.106",
    "199.36.153.8",
    "151.101.1.69",
]  # Google APIs, private.googleapis, a CDN


@pytest.mark.parametrize("variant", ["default", "prod"])
def test_analyzer_egress_is_the_internet_only(rendered: dict[str, Docs], variant: str) -> None:
    (policy,) = [
        p
        for p in kinds(rendered[variant], "NetworkPolicy")
        if p["metadata"]["name"] == "flokraft-analyzer"
    ]
    for address in INSIDE:
        assert not egress_allows(policy, address, 443), address
    for address in OUTSIDE:
        assert egress_allows(policy, address, 443), address
    # Workload Identity tokens: the metadata server on 80 (988 under Dataplane V2), only.
    assert egress_allows(policy, "169.254.169.254", 80)
    assert egress_allows(policy, "169.254.169.252", 988)
    assert not egress_allows(policy, "169.254.169.254", 8080)


def test_no_metadata_server_without_workload_identity(rendered: dict[str, Docs]) -> None:
    (policy,) = [
        p
        for p in kinds(rendered["dev"], "NetworkPolicy")
        if p["metadata"]["name"] == "flokraft-analyzer"
    ]
    assert not egress_allows(policy, "169.254.169.254", 80)
