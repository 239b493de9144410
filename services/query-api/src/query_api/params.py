"""Patterns of query-api's own parameters (the analysis id is core's: flokraft_core.web.params)."""

from __future__ import annotations

from typing import Final

# Firebase uids are 28 alphanumerics; allow the few separators other issuers use.
USER_ID_PATTERN: Final = r"^[A-Za-z0-9._:@-]{1,128}$"
# Our tokens are base64url, well under this length.
PAGE_TOKEN_MAX_LENGTH: Final = 512
