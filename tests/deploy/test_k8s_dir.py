"""k8s/ is the chart rendered with default values, for `kubectl apply -k k8s/`."""

from __future__ import annotations

import filecmp
from pathlib import Path

from .conftest import ROOT, load_docs, run
from .crd_schemas import CLUSTER_SCOPED


def test_k8s_dir_is_up_to_date(tools: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    run(["bash", str(ROOT / "scripts" / "render-k8s.sh"), str(out)])
    committed = ROOT / "k8s"
    fresh = sorted(p.name for p in out.iterdir())
    assert sorted(p.name for p in committed.iterdir() if p.suffix == ".yaml") == fresh
    stale = [name for name in fresh if not filecmp.cmp(out / name, committed / name, shallow=False)]
    assert not stale, f"k8s/ is stale ({stale}); run scripts/render-k8s.sh"


def test_kubectl_kustomize_builds(tools: dict[str, str]) -> None:
    result = run([tools["kubectl"], "kustomize", str(ROOT / "k8s")])
    docs = load_docs(result.stdout)
    assert {d["kind"] for d in docs} >= {
        "Namespace",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
    }
    # No helm test pod for kubectl users.
    assert not [d for d in docs if d["kind"] == "Pod"]
    # Cluster-scoped: the Namespace and GMP's GlobalRules (rules over Cloud Monitoring metrics).
    cluster_scoped = {"Namespace"} | {kind for _, kind in CLUSTER_SCOPED}
    namespaced = [d for d in docs if d["kind"] not in cluster_scoped]
    assert not [d for d in docs if d["kind"] in cluster_scoped and "namespace" in d["metadata"]]
    assert {d["metadata"]["namespace"] for d in namespaced} == {"flokraft"}
