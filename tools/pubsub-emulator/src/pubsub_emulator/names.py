"""Resource-name validation following Google's Pub/Sub naming rules.

Topic and subscription IDs: 3-255 characters, start with a letter, then letters, digits,
``-``, ``_``, ``.``, ``~``, ``+`` or ``%``, and must not start with ``goog``.
Project IDs are checked leniently (any non-empty segment of letters, digits, ``-``, ``.``,
``:`` or ``_``) because legacy and domain-scoped project IDs exist and tests use short ones.
"""

from __future__ import annotations

import re

from pubsub_emulator.errors import invalid

_PROJECT = r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,99}"
_RESOURCE_ID = r"[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}"

_PROJECT_RE = re.compile(rf"projects/({_PROJECT})")
_TOPIC_RE = re.compile(rf"projects/({_PROJECT})/topics/({_RESOURCE_ID})")
_SUBSCRIPTION_RE = re.compile(rf"projects/({_PROJECT})/subscriptions/({_RESOURCE_ID})")

# What the real service reports as a subscription's topic after the topic was deleted.
DELETED_TOPIC = "_deleted-topic_"


def _check_id(resource_id: str, kind: str, name: str) -> None:
    if resource_id.lower().startswith("goog"):
        raise invalid(f"Invalid {kind} name: {name!r} ({kind} IDs must not start with 'goog').")


def validate_project(name: str) -> str:
    """Return the project ID of ``projects/{project}``."""
    match = _PROJECT_RE.fullmatch(name)
    if match is None:
        raise invalid(f"Invalid project name: {name!r} (expected projects/{{project}}).")
    return match.group(1)


def validate_topic(name: str) -> str:
    """Validate ``projects/{project}/topics/{topic}``; return it unchanged."""
    match = _TOPIC_RE.fullmatch(name)
    if match is None:
        raise invalid(
            f"Invalid [topics] name: ({name!r}). Expected projects/{{project}}/topics/{{topic}} "
            "where the topic ID is 3-255 characters, starts with a letter and contains only "
            "letters, digits and - _ . ~ + %."
        )
    _check_id(match.group(2), "topic", name)
    return name


def validate_subscription(name: str) -> str:
    """Validate ``projects/{project}/subscriptions/{sub}``; return it unchanged."""
    match = _SUBSCRIPTION_RE.fullmatch(name)
    if match is None:
        raise invalid(
            f"Invalid [subscriptions] name: ({name!r}). Expected "
            "projects/{project}/subscriptions/{subscription} where the subscription ID is "
            "3-255 characters, starts with a letter and contains only letters, digits and "
            "- _ . ~ + %."
        )
    _check_id(match.group(2), "subscription", name)
    return name


def project_of(name: str) -> str:
    """The ``projects/{project}`` prefix of an already validated resource name."""
    return "/".join(name.split("/", 2)[:2])
