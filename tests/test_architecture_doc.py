"""docs/architecture.md draws the status table the code enforces, and stands alone."""

from __future__ import annotations

import re

from flokraft_core.analyses import Status
from flokraft_core.status import TABLE, Move
from tests.support.processes import REPO_ROOT

DOC = REPO_ROOT / "docs" / "architecture.md"


def _documented_rows() -> dict[str, tuple[frozenset[Status | None], Status | None]]:
    text = DOC.read_text()
    section = text[text.index("## Status machine") :]
    section = section[: section.index("\n## ", 1)]
    rows = {}
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
        rows[name] = (parsed, None if target == "(unchanged)" else Status(target))
    return rows


def test_the_documented_status_table_is_the_enforced_one() -> None:
    enforced = {move.value: (row.sources, row.target) for move, row in TABLE.items()}
    assert _documented_rows() == enforced


def test_every_recovery_row_is_called_one() -> None:
    text = DOC.read_text()
    for move, row in TABLE.items():
        line = next(line for line in text.splitlines() if line.startswith(f"| `{move}` |"))
        assert ("recovery:" in line) == row.recovery, line
    assert {Move.RECLAIM, Move.COMPLETE_REQUEUED} == {m for m, r in TABLE.items() if r.recovery}


def test_nothing_points_outside_the_repository() -> None:
    text = DOC.read_text()
    assert "DESIGN.md" not in text
    assert "../" not in text
    assert not re.search(r"\bseed\b", text, re.IGNORECASE)
