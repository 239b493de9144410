"""Our own rules for what the chart renders, on every values profile."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import PROFILES, SERVICES, VARIANTS, kinds

# Dev-only support pods hold in-memory state (emulator data, devauth's signing key), so a
# second replica would be wrong and an HPA or PDB pointless. Exempt by name, with reason.
SINGLETONS = {"flokraft-emulators", "flokraft-devauth"}

UNITS = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}


def mib(quantity: str) -> float:
    for suffix, factor in UNITS.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    raise AssertionError(f"unexpected memory quantity {quantity!r}")


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            out.append((doc["kind"], doc["metadata"]["name"], spec["template"]["spec"]))
        elif doc["kind"] == "Pod":
            out.append((doc["kind"], doc["metadata"]["name"], spec))
    return out


@pytest.mark.parametrize("profile", list(VARIANTS))
def test_every_container_is_bounded_and_hardened(rendered: dict[str, Any], profile: str) -> None:
    for kind, name, spec in pod_specs(rendered[profile]):
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, name
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        for container in spec["containers"]:
            where = f"{profile}/{kind}/{name}/{container['name']}"
            assert container["resources"]["limits"].get("memory"), where
            assert container["resources"]["requests"].get("memory"), where
            assert container["resources"]["limits"].get("cpu"), where
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert sc["runAsNonRoot"] is True, where
            if profile != "dev":  # dev lets skaffold sync files into the image
                assert sc["readOnlyRootFilesystem"] is True, where
            # Long-running workloads need both probes; Jobs and helm-test pods run to completion.
            if kind in ("Deployment", "StatefulSet", "DaemonSet"):
                assert "livenessProbe" in container, where
                assert "readinessProbe" in container, where


@pytest.mark.parametrize("profile", list(PROFILES))
def test_probes_use_the_service_endpoints(rendered: dict[str, Any], profile: str) -> None:
    for deploy in kinds(rendered[profile], "Deployment"):
        component = deploy["metadata"]["labels"]["app.kubernetes.io/component"]
        if component not in SERVICES:
            continue
        container = deploy["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        # Readiness answers for this pod only: a Firestore outage neither unreadies nor
        # restarts it (tests/query_api/test_outage.py).
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize("profile", list(VARIANTS))
def test_every_deployment_has_autoscaler_and_pdb(rendered: dict[str, Any], profile: str) -> None:
    docs = rendered[profile]
    hpa_targets = {
        h["spec"]["scaleTargetRef"]["name"] for h in kinds(docs, "HorizontalPodAutoscaler")
    }
    hpa_targets |= {s["spec"]["scaleTargetRef"]["name"] for s in kinds(docs, "ScaledObject")}
    pdb_selectors = [
        p["spec"]["selector"]["matchLabels"] for p in kinds(docs, "PodDisruptionBudget")
    ]
    for deploy in kinds(docs, "Deployment"):
        name = deploy["metadata"]["name"]
        if name in SINGLETONS:
            assert profile == "dev", f"{name} is dev-only"
            continue
        labels = deploy["spec"]["template"]["metadata"]["labels"]
        assert any(sel.items() <= labels.items() for sel in pdb_selectors), (
            f"{profile}: {name} has no PDB"
        )
        # Either an autoscaler owns the count (and the Deployment must not reset it on an
        # upgrade) or autoscaling is off for it and the Deployment states it.
        assert (name in hpa_targets) != ("replicas" in deploy["spec"]), f"{profile}: {name}"


def test_keda_replaces_the_analyzer_hpa(render: Any) -> None:
    from .conftest import load_docs

    docs = load_docs(render("default", "--set", "keda.enabled=true"))
    hpas = {h["spec"]["scaleTargetRef"]["name"] for h in kinds(docs, "HorizontalPodAutoscaler")}
    assert "flokraft-analyzer" not in hpas
    (scaled,) = kinds(docs, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "flokraft-analyzer"
    types = [t["type"] for t in scaled["spec"]["triggers"]]
    assert types == ["gcp-pubsub", "cpu"]  # values and rule: test_autoscaling.py
    assert scaled["spec"]["triggers"][0]["metadata"]["subscriptionName"].endswith(
        "/subscriptions/analysis-jobs-analyzer"
    )


@pytest.mark.parametrize("profile", list(PROFILES))
def test_analyzer_job_cap_below_pod_limit_and_grace_fits(
    rendered: dict[str, Any], profile: str
) -> None:
    (deploy,) = [
        d
        for d in kinds(rendered[profile], "Deployment")
        if d["metadata"]["name"] == "flokraft-analyzer"
    ]
    spec = deploy["spec"]["template"]["spec"]
    container = spec["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    limit = mib(container["resources"]["limits"]["memory"])
    assert limit == 2048
    assert int(env["JOB_MEMORY_LIMIT_MB"]) < limit
    assert spec["terminationGracePeriodSeconds"] > float(env["SHUTDOWN_GRACE_SECONDS"])
    # The temp video files need a writable, disk-backed volume at WORK_DIR.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume = next(v for v in spec["volumes"] if v["name"] == mounts[env["WORK_DIR"]])
    assert "medium" not in volume["emptyDir"]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_api_memory_budgets(rendered: dict[str, Any], profile: str) -> None:
    for deploy in kinds(rendered[profile], "Deployment"):
        if deploy["metadata"]["name"] in ("flokraft-query-api", "flokraft-rerun-api"):
            container = deploy["spec"]["template"]["spec"]["containers"][0]
            assert mib(container["resources"]["limits"]["memory"]) == 256


def test_pubsub_resources_come_from_the_topology_file(rendered: dict[str, Any]) -> None:
    import yaml

    from .conftest import CHART

    topology = yaml.safe_load((CHART / "files" / "pubsub-topology.yaml").read_text())
    docs = rendered["prod"]
    topics = {t["spec"]["resourceID"] for t in kinds(docs, "PubSubTopic")}
    assert topics == {t["name"] for t in topology["topics"]}
    subs = {s["spec"]["resourceID"]: s["spec"] for s in kinds(docs, "PubSubSubscription")}
    assert set(subs) == {s["name"] for s in topology["subscriptions"]}
    for sub in topology["subscriptions"]:
        spec = subs[sub["name"]]
        assert spec["topicRef"]["name"] == sub["topic"]
        assert spec["ackDeadlineSeconds"] == sub["ackDeadlineSeconds"]
        if "deadLetterPolicy" in sub:
            assert (
                spec["deadLetterPolicy"]["deadLetterTopicRef"]["name"]
                == sub["deadLetterPolicy"]["deadLetterTopic"]
            )
            assert (
                spec["deadLetterPolicy"]["maxDeliveryAttempts"]
                == sub["deadLetterPolicy"]["maxDeliveryAttempts"]
            )
        if "retryPolicy" in sub:
            assert (
                spec["retryPolicy"]["minimumBackoff"]
                == f"{sub['retryPolicy']['minimumBackoffSeconds']}s"
            )
    # Dev applies the very same file with the core library's command.
    dev_cm = [
        c
        for c in kinds(rendered["dev"], "ConfigMap")
        if c["metadata"]["name"] == "flokraft-pubsub-topology"
    ]
    assert yaml.safe_load(dev_cm[0]["data"]["pubsub-topology.yaml"]) == topology


def test_dev_uses_emulators_and_devauth(rendered: dict[str, Any]) -> None:
    shared = next(
        c for c in kinds(rendered["dev"], "ConfigMap") if c["metadata"]["name"] == "flokraft-shared"
    )
    data = shared["data"]
    assert data["FIRESTORE_EMULATOR_HOST"] == "flokraft-emulators:8080"
    assert data["PUBSUB_EMULATOR_HOST"] == "flokraft-emulators:8085"
    assert data["AUTH_JWKS_URL"] == "http://flokraft-devauth:8090/.well-known/jwks.json"
    assert data["AUTH_ISSUER"] == "flokraft-dev"
    assert data["AUTH_AUDIENCE"] == data["GOOGLE_CLOUD_PROJECT"]
    emulators = next(
        d
        for d in kinds(rendered["dev"], "Deployment")
        if d["metadata"]["name"] == "flokraft-emulators"
    )
    images = {c["image"] for c in emulators["spec"]["template"]["spec"]["containers"]}
    assert images == {"gcr.io/google.com/cloudsdktool/google-cloud-cli:emulators"}


def test_prod_uses_firebase_and_workload_identity(rendered: dict[str, Any]) -> None:
    shared = next(
        c
        for c in kinds(rendered["prod"], "ConfigMap")
        if c["metadata"]["name"] == "flokraft-shared"
    )
    data = shared["data"]
    project = data["GOOGLE_CLOUD_PROJECT"]
    assert data["AUTH_ISSUER"] == f"https://securetoken.google.com/{project}"
    assert data["AUTH_AUDIENCE"] == project
    assert data["AUTH_JWKS_URL"].startswith(
        "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@"
    )
    assert not any(k.endswith("_EMULATOR_HOST") for k in data)
    for sa in kinds(rendered["prod"], "ServiceAccount"):
        gsa = sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
        assert gsa.endswith(f"@{project}.iam.gserviceaccount.com")


@pytest.mark.parametrize("profile", list(PROFILES))
def test_files_are_written_only_to_mounted_volumes(rendered: dict[str, Any], profile: str) -> None:
    """With a read-only root filesystem, every path a container is told to write to (temp
    videos, the dev signing key) must lie on one of its volume mounts."""
    writable_settings = ("WORK_DIR", "DEVAUTH_KEY_FILE")
    for deployment in kinds(rendered[profile], "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            if not container.get("securityContext", {}).get("readOnlyRootFilesystem"):
                continue
            mounts = [m["mountPath"].rstrip("/") + "/" for m in container.get("volumeMounts", [])]
            command = " ".join(container.get("command", []) + container.get("args", []))
            paths = {e["name"]: e.get("value", "") for e in container.get("env", [])}
            if "flokraft_core.dev.devauth" in command:
                assert "DEVAUTH_KEY_FILE" in paths, f"{container['name']}: no DEVAUTH_KEY_FILE"
            for name in writable_settings:
                if name in paths:
                    assert any((paths[name].rstrip("/") + "/").startswith(m) for m in mounts), (
                        f"{deployment['metadata']['name']}/{container['name']}: {name}="
                        f"{paths[name]} is not on a volume mount {mounts}"
                    )
