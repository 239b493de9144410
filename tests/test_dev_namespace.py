"""Development-only code (flokraft_core.dev) is never imported by a production path."""

from __future__ import annotations

import ast
from pathlib import Path

from flokraft_devstack.settings import REPO_ROOT

PRODUCTION = [
    REPO_ROOT / "libs" / "flokraft-core" / "src" / "flokraft_core",
    REPO_ROOT / "services" / "query-api" / "src" / "query_api",
    REPO_ROOT / "services" / "rerun-api" / "src" / "rerun_api",
    REPO_ROOT / "services" / "analyzer" / "src" / "analyzer",
]
DEV = PRODUCTION[0] / "dev"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_production_module_imports_dev_code() -> None:
    offenders = []
    for root in PRODUCTION:
        for path in root.rglob("*.py"):
            if DEV in path.parents:
                continue
            bad = {n for n in _imports(path) if n.startswith("flokraft_core.dev")}
            if bad:
                offenders.append(f"{path.relative_to(REPO_ROOT)}: {sorted(bad)}")
    assert not offenders


def test_the_dev_tools_live_in_the_dev_namespace() -> None:
    assert {p.stem for p in DEV.glob("*.py")} >= {"devauth", "demo_data"}
    assert not (PRODUCTION[0] / "devauth.py").exists()
    assert not (PRODUCTION[0] / "demo_data.py").exists()
