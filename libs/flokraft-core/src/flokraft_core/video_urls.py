"""Which video addresses a user may have analysed: sources bound to their owner.

One policy, applied twice: rerun-api refuses a `video_url` outside it (a 422 naming the
field), and the analyzer checks the stored URL again against the document's `user_id`
before it fetches anything, so a tampered message or document fetches nothing.

An address is allowed when it starts with one of VIDEO_URL_PREFIXES with `{uid}` replaced
by the owner's id (default `gs://<VIDEO_BUCKET>/{uid}/`: the user's own folder of the
upload bucket), and the rest is a plain object path: no dot segments (encoded or not), no
backslashes, no credentials. https:// prefixes name their host, so only the hosts an
operator listed can be fetched from; where the address then points (loopback, private,
metadata...) is the analyzer's second check, at connect time. `file://` exists only in the
local profile (ALLOW_FILE_URLS), below ALLOWED_FILE_ROOTS.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

UID_PLACEHOLDER: Final = "{uid}"
# What a user id may look like to be put into a path (Firebase uids are 28 alphanumerics).
_BINDABLE_UID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# Printable ASCII without space, quote, backslash, angle brackets or braces.
_SAFE_REST: Final = re.compile(r"^[A-Za-z0-9._~%!$&'()*+,;=:@/?#=-]+$")
_SCHEMES: Final = ("gs://", "https://", "http://")


class VideoSourceSettings(BaseSettings):
    """Settings shared by rerun-api (validation) and the analyzer (re-check, fetch)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    video_bucket: str = Field(
        "flokraft-videos", description="Cloud Storage bucket users upload their videos to."
    )
    video_url_prefixes: str = Field(
        "",
        description="Comma-separated allowed video URL prefixes with a {uid} placeholder; "
        "empty means gs://<VIDEO_BUCKET>/{uid}/.",
    )
    allow_file_urls: bool = Field(
        False, description="Accept file:// videos (local profile only, never production)."
    )
    allowed_file_roots: list[Path] = Field(
        default_factory=list, description="Directories file:// videos must lie below."
    )
    allow_http_urls: bool = Field(
        False, description="Allow plain http:// prefixes (local profile and tests only)."
    )

    def url_prefixes(self) -> list[str]:
        given = [p.strip() for p in self.video_url_prefixes.split(",") if p.strip()]
        return given or [f"gs://{self.video_bucket}/{UID_PLACEHOLDER}/"]

    @model_validator(mode="after")
    def _prefixes_are_bound(self) -> VideoSourceSettings:
        for prefix in self.url_prefixes():
            problem = prefix_problem(prefix, allow_http=self.allow_http_urls)
            if problem:
                raise ValueError(f"video_url_prefixes: {prefix!r} {problem}")
        return self


def prefix_problem(prefix: str, *, allow_http: bool) -> str | None:
    if not prefix.startswith(_SCHEMES) or (prefix.startswith("http://") and not allow_http):
        return "must start with gs:// or https:// (http:// only with ALLOW_HTTP_URLS)"
    scheme_end = prefix.index("://") + 3
    authority, slash, path = prefix[scheme_end:].partition("/")
    # The authority is fixed text, ended by a slash: `https://host` alone would also
    # match `https://host.attacker.example/`.
    if not authority or not slash or UID_PLACEHOLDER in authority or "@" in authority:
        return "must name a bucket or host followed by a path"
    if path.count(UID_PLACEHOLDER) != 1:
        return "must contain {uid} exactly once, in the path"
    after_uid = path.split(UID_PLACEHOLDER, 1)[1]
    # Without a separator after the uid, user `ab` could read user `abc`'s folder.
    if not (after_uid.startswith("/") or after_uid.upper().startswith("%2F")):
        return "must have a path separator (/ or %2F) right after {uid}"
    return None


@dataclass(frozen=True)
class VideoUrlPolicy:
    prefixes: tuple[str, ...]
    allow_file_urls: bool = False
    file_roots: tuple[Path, ...] = ()

    @classmethod
    def from_settings(cls, settings: VideoSourceSettings) -> VideoUrlPolicy:
        return cls(
            prefixes=tuple(settings.url_prefixes()),
            allow_file_urls=settings.allow_file_urls,
            file_roots=tuple(settings.allowed_file_roots),
        )

    def own_prefixes(self, uid: str) -> list[str]:
        return [p.replace(UID_PLACEHOLDER, uid) for p in self.prefixes]

    def problem(self, url: str, uid: str | None) -> str | None:
        """Why `uid` may not have `url` analysed, in words the user can act on, or None."""
        if url.startswith("file://"):
            return self._file_problem(url)
        if not uid or not _BINDABLE_UID.fullmatch(uid) or uid in {".", ".."}:
            return "this account cannot submit videos by address"
        for prefix in self.own_prefixes(uid):
            if url.startswith(prefix):
                rest_problem = _rest_problem(url[len(prefix) :], gs=prefix.startswith("gs://"))
                if rest_problem is None and "@" in urlsplit(url).netloc:
                    rest_problem = "must not contain credentials"
                return rest_problem
        allowed = " or ".join(f"{p}..." for p in self.own_prefixes(uid))
        return f"must be the address of one of your own uploads: {allowed}"

    def _file_problem(self, url: str) -> str | None:
        if not self.allow_file_urls:
            return "file:// URLs are not accepted here; use the address of your upload"
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            return "file:// addresses must be plain local paths"
        # Lexically normalised here; the analyzer also resolves symlinks before reading.
        path = Path(os.path.normpath(unquote(parts.path)))
        if not path.is_absolute() or not any(path.is_relative_to(root) for root in self.file_roots):
            return "the file is outside the allowed directories"
        return None


def _rest_problem(rest: str, *, gs: bool) -> str | None:
    path, _, _ = rest.partition("?")
    path = path.partition("#")[0]
    if not path or path.endswith("/"):
        return "must name a video file, not a folder"
    if not _SAFE_REST.fullmatch(rest) or (gs and ("?" in rest or "#" in rest)):
        return "must be a plain object path (ASCII letters, digits and - . _ ~ /)"
    decoded = unquote(path)
    if "\\" in decoded or any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
        return "must be a plain object path (ASCII letters, digits and - . _ ~ /)"
    if any(segment in {".", ".."} for segment in decoded.split("/")):
        return "must not contain . or .. path segments"
    return None


# The caller whose video URL is being validated: bound by rerun-api's create route (an
# async dependency, which FastAPI runs before it validates the body) so that the body's
# own validation reports a foreign video_url together with every other field problem.
_BOUND: ContextVar[tuple[VideoUrlPolicy, str] | None] = ContextVar("video_url_owner", default=None)


def bind_owner(policy: VideoUrlPolicy, uid: str) -> None:
    _BOUND.set((policy, uid))


def bound_problem(url: str) -> str | None:
    """The policy's answer for the bound caller; None when nothing is bound (the
    analyzer's re-check still applies to whatever is stored)."""
    bound = _BOUND.get()
    if bound is None:
        return None
    policy, uid = bound
    return policy.problem(url, uid)
