"""Minimal JSON schemas for the custom resources the chart renders.

kubernetes-validate ships schemas for built-in kinds only. These cover the fields this
chart sets (names, required fields, enums, types) and reject unknown fields at the levels
the chart writes, which is what catches a typo; they are not the full upstream CRDs.
"""

from __future__ import annotations

from typing import Any

STR = {"type": "string", "minLength": 1}
INT = {"type": "integer"}


def obj(
    props: dict[str, Any], required: list[str] | None = None, strict: bool = True
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if strict:
        schema["additionalProperties"] = False
    if required:
        schema["required"] = required
    return schema


METADATA = obj(
    {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": STR,
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    ["name", "namespace"],
)

_RULE_GROUPS = {
    "type": "array",
    "minItems": 1,
    "items": obj(
        {
            "name": STR,
            "interval": STR,
            "rules": {
                "type": "array",
                "minItems": 1,
                "items": obj(
                    {
                        "alert": STR,
                        "record": STR,
                        "expr": STR,
                        "for": STR,
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "annotations": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                    ["expr"],
                ),
            },
        },
        ["name", "rules"],
    ),
}
_BACKEND_REF = obj({"name": STR, "port": INT, "weight": INT}, ["name", "port"])
_HTTP_MATCH = obj(
    {
        "path": obj(
            {"type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]}, "value": STR},
            ["type", "value"],
        ),
        "method": {
            "enum": ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
        },
        "headers": {"type": "array"},
        "queryParams": {"type": "array"},
    }
)

SPECS: dict[tuple[str, str], dict[str, Any]] = {
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): obj(
        {
            "parentRefs": {
                "type": "array",
                "minItems": 1,
                "items": obj(
                    {
                        "name": STR,
                        "namespace": STR,
                        "sectionName": STR,
                        "kind": STR,
                        "group": {"type": "string"},
                    },
                    ["name"],
                ),
            },
            "hostnames": {"type": "array", "items": STR},
            "rules": {
                "type": "array",
                "minItems": 1,
                "maxItems": 16,
                "items": obj(
                    {
                        "matches": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 64,
                            "items": _HTTP_MATCH,
                        },
                        "backendRefs": {"type": "array", "minItems": 1, "items": _BACKEND_REF},
                    },
                    ["backendRefs"],
                ),
            },
        },
        ["parentRefs", "rules"],
    ),
    ("networking.gke.io/v1", "HealthCheckPolicy"): obj(
        {
            "default": obj(
                {
                    "checkIntervalSec": INT,
                    "timeoutSec": INT,
                    "healthyThreshold": INT,
                    "unhealthyThreshold": INT,
                    "config": obj(
                        {
                            "type": {"enum": ["HTTP", "HTTPS", "HTTP2", "TCP", "GRPC"]},
                            "httpHealthCheck": obj(
                                {"port": INT, "requestPath": {"type": "string", "pattern": "^/"}}
                            ),
                        },
                        ["type"],
                    ),
                }
            ),
            "targetRef": obj(
                {"group": {"type": "string"}, "kind": {"const": "Service"}, "name": STR},
                ["group", "kind", "name"],
            ),
        },
        ["default", "targetRef"],
    ),
    ("networking.gke.io/v1", "GCPBackendPolicy"): obj(
        {
            "default": obj(
                {
                    "timeoutSec": {"type": "integer", "minimum": 1, "maximum": 86400},
                    "connectionDraining": obj(
                        {"drainingTimeoutSec": {"type": "integer", "minimum": 0, "maximum": 3600}}
                    ),
                }
            ),
            "targetRef": obj(
                {"group": {"type": "string"}, "kind": {"const": "Service"}, "name": STR},
                ["group", "kind", "name"],
            ),
        },
        ["default", "targetRef"],
    ),
    ("keda.sh/v1alpha1", "ScaledObject"): obj(
        {
            "scaleTargetRef": obj({"name": STR, "kind": STR, "apiVersion": STR}, ["name"]),
            "minReplicaCount": INT,
            "maxReplicaCount": INT,
            "advanced": {"type": "object"},
            "triggers": {
                "type": "array",
                "minItems": 1,
                "items": obj(
                    {
                        "type": STR,
                        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                        "authenticationRef": obj({"name": STR, "kind": STR}, ["name"]),
                        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                    ["type", "metadata"],
                ),
            },
        },
        ["scaleTargetRef", "triggers"],
    ),
    ("keda.sh/v1alpha1", "TriggerAuthentication"): obj(
        {
            "podIdentity": obj(
                {"provider": {"enum": ["gcp", "azure-workload", "aws", "none"]}}, ["provider"]
            )
        }
    ),
    ("pubsub.cnrm.cloud.google.com/v1beta1", "PubSubTopic"): obj({"resourceID": STR}),
    ("pubsub.cnrm.cloud.google.com/v1beta1", "PubSubSubscription"): obj(
        {
            "resourceID": STR,
            "topicRef": obj({"name": STR}, ["name"]),
            "ackDeadlineSeconds": {"type": "integer", "minimum": 10, "maximum": 600},
            "enableMessageOrdering": {"type": "boolean"},
            "retryPolicy": obj(
                {
                    "minimumBackoff": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?s$"},
                    "maximumBackoff": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?s$"},
                }
            ),
            "deadLetterPolicy": obj(
                {
                    "deadLetterTopicRef": obj({"name": STR}, ["name"]),
                    "maxDeliveryAttempts": {"type": "integer", "minimum": 5, "maximum": 100},
                },
                ["deadLetterTopicRef"],
            ),
        },
        ["topicRef"],
    ),
    ("monitoring.googleapis.com/v1", "PodMonitoring"): obj(
        {
            "selector": obj({"matchLabels": {"type": "object"}}, ["matchLabels"]),
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": obj(
                    {
                        "port": {"type": ["string", "integer"]},
                        "path": STR,
                        "interval": {"type": "string", "pattern": "^[0-9]+(s|m)$"},
                    },
                    ["port"],
                ),
            },
        },
        ["selector", "endpoints"],
    ),
    ("monitoring.googleapis.com/v1", "Rules"): obj({"groups": _RULE_GROUPS}, ["groups"]),
    ("monitoring.coreos.com/v1", "PrometheusRule"): obj({"groups": _RULE_GROUPS}, ["groups"]),
    ("iam.cnrm.cloud.google.com/v1beta1", "IAMPolicyMember"): obj(
        {
            "member": {"type": "string", "pattern": "^serviceAccount:"},
            "role": {"type": "string", "pattern": "^roles/"},
            "resourceRef": obj(
                {"apiVersion": STR, "kind": STR, "name": STR}, ["apiVersion", "kind", "name"]
            ),
        },
        ["member", "role", "resourceRef"],
    ),
}


def schema_for(api_version: str, kind: str) -> dict[str, Any] | None:
    spec = SPECS.get((api_version, kind))
    if spec is None:
        return None
    return obj(
        {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
        ["apiVersion", "kind", "metadata", "spec"],
    )
