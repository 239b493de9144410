"""docs/architecture.md draws the status table the code enforces, and stands alone."""

from __future__ import annotations

import re

from flokraft_core.store.document import Status
from flokraft_core.store.status_table import TABLE, Move
from tests.support.processes import REPO_ROOT

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
