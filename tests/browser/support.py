"""What the browser-side tests share: the CORS environment of the two APIs, and the
video URL rerun-api accepts for a test user (kept here, in one place, because which URLs
rerun-api accepts is configuration that changes)."""

from __future__ import annotations

import tempfile
from pathlib import Path


def cors_env(*origins: str, regex: str | None = None) -> dict[str, str]:
    env = {"CORS_ALLOW_ORIGINS": ",".join(origins)}
    if regex is not None:
        env["CORS_ALLOW_ORIGIN_REGEX"] = regex
    return env


# The local profile's kind of video: a file:// URL below the temp directory, accepted by
# rerun-api with ALLOW_FILE_URLS (nothing here runs the analyzer, so the file need not exist).
VIDEO_ENV = {"ALLOW_FILE_URLS": "true"}


def video_url(uid: str) -> str:
    return (Path(tempfile.gettempdir()) / "flokraft-videos" / uid / "clip.mp4").as_uri()
