"""Custom resources checked against the schemas their projects publish.

kubernetes-validate ships schemas for built-in kinds only. The CRD schemas vendored in
schemas/crds/ (see its README: the datreeio CRDs-catalog, MIT) are what a cluster with
those CRDs installed would check, so a field the controller does not know, a missing
required field or a wrong type fails here instead of at `kubectl apply`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

CRD_DIR = Path(__file__).with_name("schemas") / "crds"

# What the API server checks on every object's metadata before any CRD schema (the CRD
# files leave metadata open): a DNS-1123 name, a namespace, string labels and annotations.
_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string", "minLength": 1},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


# Custom resources the API server keeps cluster-scoped: their metadata has no namespace.
CLUSTER_SCOPED = frozenset({("monitoring.googleapis.com/v1", "GlobalRules")})


def _metadata_schema(api_version: str, kind: str) -> dict[str, Any]:
    if (api_version, kind) not in CLUSTER_SCOPED:
        return _METADATA
    properties = {k: v for k, v in _METADATA["properties"].items() if k != "namespace"}
    return {
        **_METADATA,
        "required": ["name"],
        "properties": properties,
        "not": {"required": ["namespace"]},
    }


def schema_path(api_version: str, kind: str) -> Path:
    group, _, version = api_version.rpartition("/")
    return CRD_DIR / group / f"{kind.lower()}_{version}.json"


@cache
def _validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    path = schema_path(api_version, kind)
    if not path.exists():
        return None
    schema = json.loads(path.read_text())
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)  # type: ignore[no-any-return]


def crd_errors(doc: dict[str, Any]) -> list[str]:
    """Every way `doc` breaks its published CRD schema (empty: valid).

    A kind without a vendored schema is an error too: the chart must not render a custom
    resource nobody has checked.
    """
    api_version, kind = doc["apiVersion"], doc["kind"]
    validator = _validator(api_version, kind)
    if validator is None:
        return [f"no CRD schema at {schema_path(api_version, kind).relative_to(CRD_DIR)}"]
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(doc)
    ]
    errors += [
        f"metadata/{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(_metadata_schema(api_version, kind)).iter_errors(
            doc.get("metadata", {})
        )
    ]
    return errors
