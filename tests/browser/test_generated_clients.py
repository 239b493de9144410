"""The frontend builds against clients/: each API's OpenAPI document and the TypeScript
types generated from it. They must be what the services serve now; `make clients`
regenerates both."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from flokraft_devstack.settings import REPO_ROOT

GENERATE = REPO_ROOT / "clients" / "generate.py"
TYPESCRIPT = REPO_ROOT / "clients" / "typescript"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("clients_generate", GENERATE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_openapi_documents_and_types_are_current() -> None:
    # Its own process: the generator drops the settings from its environment first.
    result = subprocess.run(
        [sys.executable, str(GENERATE), "--check"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, (
        f"clients/ is stale: run `make clients` and commit the result\n{result.stderr[-4000:]}"
    )


def test_the_check_sees_a_changed_document(tmp_path: Path) -> None:
    generator = _generator()
    committed = tmp_path / "query-api.json"
    committed.write_text('{"openapi": "3.1.0", "paths": {}}\n')
    found = generator.stale({committed: '{"openapi": "3.1.0", "paths": {"/analyses": {}}}\n'})
    assert list(found) == [committed]
    assert '+{"openapi": "3.1.0", "paths": {"/analyses": {}}}' in found[committed]
    assert generator.stale({committed: committed.read_text()}) == {}


def test_the_types_compile_and_name_what_the_docs_use() -> None:
    result = subprocess.run(
        ["npm", "run", "--silent", "typecheck"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=TYPESCRIPT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
