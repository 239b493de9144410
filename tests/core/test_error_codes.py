"""`ErrorDetail.code` is an enum (flokraft_core.web.errors.ErrorCode) that both OpenAPI
documents publish, so it must list exactly the codes the services can answer: every code
the sources raise (a literal given to `ApiError` or `error_body`, or an `ErrorCode` member
named in code) is a member, and every member is raised somewhere."""

from __future__ import annotations

import ast
from pathlib import Path

from flokraft_core.web.errors import ApiError, ErrorCode, ErrorDetail

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    [
        *ROOT.glob("libs/flokraft-core/src/**/*.py"),
        *ROOT.glob("services/*/src/**/*.py"),
    ]
)
# The callables whose second positional argument (or `code=`) is an error code.
_CODE_TAKERS = {"ApiError", "error_body"}


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def raised_codes() -> tuple[set[str], list[str]]:
    """(codes found, places where a code is not a literal or an ErrorCode member)."""
    found: set[str] = set()
    opaque: list[str] = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "ErrorCode"
            ):
                found.add(ErrorCode[node.attr].value)
            if not isinstance(node, ast.Call) or _name(node.func) not in _CODE_TAKERS:
                continue
            code = next((k.value for k in node.keywords if k.arg == "code"), None)
            if code is None and len(node.args) >= 2:
                code = node.args[1]
            if isinstance(code, ast.Constant) and isinstance(code.value, str):
                found.add(code.value)
            elif not (isinstance(code, ast.Attribute) and _name(code.value) == "ErrorCode"):
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                # Handlers pass an ApiError's (already checked) `code` along.
                if code is None or _name(code) != "code":
                    opaque.append(where)
    return found, opaque


def test_the_enum_lists_exactly_the_codes_the_sources_raise() -> None:
    found, opaque = raised_codes()
    assert opaque == [], f"error codes that are neither literals nor ErrorCode: {opaque}"
    members = {code.value for code in ErrorCode}
    assert found - members == set(), "raised but missing from ErrorCode"
    assert members - found == set(), "in ErrorCode but raised nowhere"


def test_an_unknown_code_is_refused_where_it_is_raised() -> None:
    assert ApiError(404, "not_found", "x").code is ErrorCode.NOT_FOUND
    try:
        ApiError(400, "no_such_code", "x")
    except ValueError:
        pass
    else:
        raise AssertionError("ApiError accepted a code ErrorCode does not list")


def test_the_openapi_model_publishes_the_enum() -> None:
    schema = ErrorDetail.model_json_schema()
    assert schema["$defs"]["ErrorCode"]["enum"] == [code.value for code in ErrorCode]
