"""The version a user's list is at, for the list ETag: from the change feed's map when it
can vouch for the user (and answering from it is enabled), else one marker read."""

from __future__ import annotations

from query_api.change_feed import ChangeFeed
from query_api.reads import AnalysisReads


class ListVersions:
    def __init__(self, reads: AnalysisReads, feed: ChangeFeed | None, *, trust_feed: bool) -> None:
        self._reads = reads
        self._feed = feed
        self._trust_feed = trust_feed and feed is not None

    async def current(self, user_id: str) -> int | None:
        """None: the user has no marker (their documents predate markers), so the caller
        must fall back to ETags made from the page itself."""
        if self._trust_feed and self._feed is not None:
            version = self._feed.trusted_version(user_id)
            if version is not None:
                return version
        marker = await self._reads.marker(user_id)
        if marker is None:
            return None
        if self._feed is not None:
            self._feed.remember(marker)
        return marker.version
