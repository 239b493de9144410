"""Patterns shared by the routes' parameters."""

from __future__ import annotations

from typing import Final

# Firebase uids are 28 alphanumerics; allow the few separators other issuers use.
USER_ID_PATTERN: Final = r"^[A-Za-z0-9._:@-]{1,128}$"
# Firestore auto-ids and our demo ids; never a path separator, never "." or "..".
ANALYSIS_ID_PATTERN: Final = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$"
# Our tokens are base64url, well under this length.
PAGE_TOKEN_MAX_LENGTH: Final = 512
