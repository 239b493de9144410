"""docs/architecture.md draws the status table the code enforces, and stands alone."""

from __future__ import annotations

import importlib
import re

from flokraft_core.store.document import Status
from flokraft_core.store.status_table import TABLE, Move
from flokraft_devstack.settings import REPO_ROOT

DOC = REPO_ROOT / "docs" / "architecture.md"


def _documented_rows() -> tuple[
    dict[str, tuple[frozenset[Status | None], Status | None]], set[str]
]:
    text = DOC.read_text()
    section = text[text.index("## Status machine") :]
    section = section[: section.index("\n## ", 1)]
    rows = {}
    deleting: set[str] = set()
    for line in section.splitlines():
        match = re.match(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|", line)
        if not match:
            continue
        name, sources, target = (part.strip() for part in match.groups())
        if sources == "(no document)":
            parsed: frozenset[Status | None] = frozenset()
        elif sources == "any":
            parsed = frozenset({*Status, None})
        else:
            parsed = frozenset(
                None if s == "none" else Status(s) for s in re.split(r",\s*", sources)
            )
        rows[name] = (
            parsed,
            None if target in ("(unchanged)", "(no document)") else Status(target),
        )
        if target == "(no document)":
            deleting.add(name)
    return rows, deleting


def test_the_documented_status_table_is_the_enforced_one() -> None:
    enforced = {move.value: (row.sources, row.target) for move, row in TABLE.items()}
    documented, deleting = _documented_rows()
    assert documented == enforced
    assert deleting == {move.value for move, row in TABLE.items() if row.deletes}


def test_every_recovery_row_is_called_one() -> None:
    text = DOC.read_text()
    for move, row in TABLE.items():
        line = next(line for line in text.splitlines() if line.startswith(f"| `{move}` |"))
        assert ("recovery:" in line) == row.recovery, line
    assert {Move.RECLAIM, Move.COMPLETE_REQUEUED, Move.REDISPATCH, Move.ABANDON} == {
        m for m, r in TABLE.items() if r.recovery
    }


def test_nothing_points_outside_the_repository() -> None:
    """Every file the page links to or names (`*.md`, relative links) is in the repository,
    and the old backend is called what it is, not by the jargon of its debugging guide."""
    text = DOC.read_text()
    linked = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    named = re.findall(r"(?<![\w/:.-])([\w./-]+\.md)\b", text)
    for target in [*linked, *named]:
        if target.startswith(("http://", "https://")):
            continue
        resolved = (DOC.parent / target).resolve()
        in_repo = resolved.is_relative_to(REPO_ROOT) and resolved.exists()
        assert in_repo or (REPO_ROOT / target).exists(), target
    assert not re.search(r"\bseed\b", text, re.IGNORECASE)


def _layout_rows() -> dict[str, set[str]]:
    text = DOC.read_text()
    section = text[text.index("## Where the code lives") :]
    section = section[: section.index("\n## ", 1)]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"^\| `([\w.]+)` \| ([^|]+) \|", line)
        if match:
            rows[match[1]] = set(re.findall(r"`(\w+)`", match[2]))
    return rows


def test_the_layout_names_every_module_of_the_library() -> None:
    """Each package of flokraft_core is a row, and the row lists exactly its modules."""
    root = REPO_ROOT / "libs" / "flokraft-core" / "src" / "flokraft_core"
    actual = {}
    for init in [root / "__init__.py", *root.glob("*/__init__.py")]:
        package = ".".join(("flokraft_core", *init.parent.relative_to(root).parts))
        actual[package] = {p.stem for p in init.parent.glob("*.py") if p.stem != "__init__"}
    assert _layout_rows() == actual


def test_every_module_the_docs_name_exists() -> None:
    """A dotted name of our code (`flokraft_core.store.write_path.stage_write`,
    `python -m flokraft_core.messaging.topology`) in the README or docs/ resolves: a
    module, then attributes of it. A move that forgets a page fails here."""
    pages = [REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")]
    pattern = re.compile(r"(?<![\w./-])((?:flokraft_core|query_api|rerun_api|analyzer)(?:\.\w+)+)")
    missing = []
    for page in pages:
        for name in set(pattern.findall(page.read_text())):
            parts = name.split(".")
            for cut in range(len(parts), 0, -1):
                try:
                    found: object = importlib.import_module(".".join(parts[:cut]))
                except ModuleNotFoundError:
                    continue
                for attribute in parts[cut:]:
                    found = getattr(found, attribute, None)
                break
            else:
                found = None
            if found is None:
                missing.append(f"{page.name}: {name}")
    assert not missing
