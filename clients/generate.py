"""Regenerates what the frontend builds against: each API's OpenAPI document
(clients/openapi/*.json) and the TypeScript types made from it by npm openapi-typescript
(clients/typescript/src/*.ts). `make clients` runs it; `--check` only reports what is stale
(tests/browser/test_generated_clients.py runs that).

The documents come from the apps themselves with default settings (the environment's are
dropped first), so the output does not depend on who generates it: the largest page
size, for one, is a setting and appears in the schema.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLIENTS = Path(__file__).resolve().parent
OPENAPI_DIR = CLIENTS / "openapi"
TYPESCRIPT_DIR = CLIENTS / "typescript"
GENERATOR = TYPESCRIPT_DIR / "node_modules" / ".bin" / "openapi-typescript"


def _query_api() -> dict[str, Any]:
    from query_api.main import create_app
    from query_api.settings import QueryApiSettings

    return create_app(QueryApiSettings()).openapi()


def _rerun_api() -> dict[str, Any]:
    from rerun_api.main import create_app
    from rerun_api.settings import RerunApiSettings

    return create_app(RerunApiSettings()).openapi()


APIS: dict[str, Callable[[], dict[str, Any]]] = {"query-api": _query_api, "rerun-api": _rerun_api}


def openapi_text(name: str) -> str:
    return json.dumps(APIS[name](), indent=2, ensure_ascii=False) + "\n"


def typescript_text(openapi_json: Path) -> str:
    """openapi-typescript's output for one document (installed by `make install`)."""
    if not GENERATOR.exists():
        raise SystemExit(f"{GENERATOR} is missing: run `make install` (npm ci in {TYPESCRIPT_DIR})")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "types.ts"
        subprocess.run(
            [str(GENERATOR), str(openapi_json), "-o", str(out)],
            check=True,
            capture_output=True,
            cwd=TYPESCRIPT_DIR,
        )
        return out.read_text()


def expected_files() -> dict[Path, str]:
    """Every generated file and what it must contain, from the apps as they are now."""
    files: dict[Path, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in APIS:
            document = openapi_text(name)
            files[OPENAPI_DIR / f"{name}.json"] = document
            scratch = Path(tmp) / f"{name}.json"
            scratch.write_text(document)
            files[TYPESCRIPT_DIR / "src" / f"{name}.ts"] = typescript_text(scratch)
    return files


def stale(files: dict[Path, str]) -> dict[Path, str]:
    """The files whose committed text differs from `files`, each with a short diff."""
    found = {}
    for path, text in files.items():
        current = path.read_text() if path.exists() else ""
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(), text.splitlines(), "committed", "generated", lineterm=""
            )
            found[path] = "\n".join(list(diff)[:40])
    return found


def _forget_settings_from_environment() -> None:
    """Settings shape the schema (and `query_api.main` builds its app at import), so the
    generated files must not depend on whoever runs this having, say, LIST_MAX_LIMIT set."""
    from query_api.settings import QueryApiSettings
    from rerun_api.settings import RerunApiSettings

    names = {
        name.upper() for cls in (QueryApiSettings, RerunApiSettings) for name in cls.model_fields
    }
    for key in list(os.environ):
        if key.upper() in names:
            del os.environ[key]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale files, write none")
    args = parser.parse_args()
    _forget_settings_from_environment()
    files = expected_files()
    if args.check:
        found = stale(files)
        for path, diff in found.items():
            print(f"stale: {path.relative_to(CLIENTS.parent)}\n{diff}", file=sys.stderr)
        return 1 if found else 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(CLIENTS.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
