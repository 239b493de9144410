"""Video sources: gs:// (Cloud Storage client), https:// (streamed download with a size
cap, an overall deadline and a minimum throughput, to a checked public address, no
redirects) and file:// (local profile only, below the configured roots).

`source_refusal` is the owner check the worker runs before a job starts: the stored URL
must lie in the document owner's own prefix, so a tampered message or document fetches
nothing.

Runs inside the job's child process, so a download counts against the job's memory cap
and time limit like the analysis itself. Downloads are streamed to a temporary file in
WORK_DIR and removed afterwards; nothing is held in memory whole.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth import exceptions as gauth_exceptions
from google.cloud import storage  # type: ignore[attr-defined]

from analyzer.addresses import (
    AddressRefused,
    CheckedAddress,
    Resolver,
    checked_address,
    parse_networks,
    system_resolver,
)
from analyzer.failures import format_duration
from analyzer.settings import AnalyzerSettings
from flokraft_core.video_urls import VideoUrlPolicy

# Answers that will not change on a retry.
_PERMANENT_HTTP = frozenset({400, 401, 403, 404, 405, 410, 414, 451})
# Throughput is judged after this long: connection setup and slow start are not "slow".
_PACE_GRACE_SECONDS = 5.0
# What the user can fix, and nothing about what exists where.
NOT_READABLE = "the video could not be read at its address; check the upload and the address"


class SourceError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


def _too_large(limit: int) -> SourceError:
    return SourceError(f"the file is larger than {limit // 2**20} MiB", retryable=False)


@contextlib.contextmanager
def local_video(url: str, settings: AnalyzerSettings) -> Iterator[Path]:
    """Yields a local path holding the video at `url` for as long as the block runs."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file":
        yield _file_path(url, settings)
        return
    if scheme not in ("gs", "https") and not (scheme == "http" and settings.allow_http_urls):
        raise SourceError(f"unsupported address scheme {scheme or '(none)'!r}", retryable=False)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=settings.work_dir, prefix="video-", suffix=".bin", delete=True
    ) as handle:
        target = Path(handle.name)
        if scheme == "gs":
            _download_gcs(url, target, settings)
        else:
            _download_http(url, target, settings)
        yield target


def _file_path(url: str, settings: AnalyzerSettings) -> Path:
    if not settings.allow_file_urls:
        raise SourceError("file:// addresses are not accepted here", retryable=False)
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise SourceError("file:// addresses must be local", retryable=False)
    # resolve() follows symlinks, so a link inside a root cannot point outside it.
    path = Path(unquote(parts.path)).resolve()
    roots = [root.resolve() for root in settings.allowed_file_roots]
    if not any(path.is_relative_to(root) for root in roots):
        raise SourceError("the file is outside the allowed directories", retryable=False)
    if not path.is_file():
        raise SourceError("the file does not exist", retryable=False)
    return path


def _download_gcs(url: str, target: Path, settings: AnalyzerSettings) -> None:
    parts = urlsplit(url)
    bucket_name, blob_name = parts.netloc, parts.path.lstrip("/")
    if not bucket_name or not blob_name:
        raise SourceError("a gs:// address needs a bucket and an object name", retryable=False)
    retry = Retry(initial=0.5, maximum=5.0, timeout=settings.download_deadline_seconds)
    client: storage.Client | None = None
    try:
        # Inside the handling: without credentials the client fails as it is built, and
        # that is a source failure (readable, SOURCE_MAX_ATTEMPTS), not a crash of the job.
        client = storage.Client(project=settings.google_cloud_project)
        blob = client.bucket(bucket_name).blob(blob_name)
        blob.reload(timeout=settings.download_timeout_seconds, retry=retry)
        if blob.size is not None and blob.size > settings.max_download_bytes:
            raise _too_large(settings.max_download_bytes)
        blob.download_to_filename(
            str(target), timeout=settings.download_timeout_seconds, retry=retry
        )
    except (gexc.NotFound, gexc.Forbidden, gexc.Unauthorized) as exc:
        # One answer for "missing" and "not allowed": which one it was is not the
        # caller's business (it would tell them what exists in the bucket).
        raise SourceError(NOT_READABLE, retryable=False) from exc
    except (gexc.GoogleAPIError, gauth_exceptions.GoogleAuthError) as exc:
        raise SourceError(f"storage error ({type(exc).__name__})", retryable=True) from exc
    finally:
        if client is not None:
            client.close()
    if target.stat().st_size > settings.max_download_bytes:
        raise _too_large(settings.max_download_bytes)


def _download_http(
    url: str, target: Path, settings: AnalyzerSettings, resolver: Resolver = system_resolver
) -> None:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise SourceError("the address is not a valid URL", retryable=False) from exc
    if parts.username is not None or parts.password is not None:
        raise SourceError("the address must not contain credentials", retryable=False)
    if not parts.hostname:
        raise SourceError("the address is not a valid URL", retryable=False)
    try:
        checked = checked_address(
            parts.hostname,
            port,
            allowed_networks=parse_networks(settings.video_fetch_allowed_networks),
            resolver=resolver,
        )
    except AddressRefused as exc:
        raise SourceError(str(exc), retryable=False) from exc
    _stream_to_file(url, checked, target, settings)


def _stream_to_file(
    url: str, checked: CheckedAddress, target: Path, settings: AnalyzerSettings
) -> None:
    limit = settings.max_download_bytes
    parts = urlsplit(url)
    # Connect to the address that was checked; the name still goes into Host and, for
    # https, into SNI and certificate verification.
    connect_url = httpx.URL(url).copy_with(host=str(checked.ip))
    extensions = {"sni_hostname": checked.host} if parts.scheme == "https" else {}
    headers = {"Host": parts.netloc, "Accept-Encoding": "identity"}
    deadline = settings.download_deadline_seconds
    started = time.monotonic()
    try:
        with (
            # No redirects (a hop could lead anywhere, over http too) and no proxies from
            # the environment (they would connect on our behalf, past the address check).
            httpx.Client(
                timeout=httpx.Timeout(settings.download_timeout_seconds),
                follow_redirects=False,
                trust_env=False,
            ) as client,
            client.stream("GET", connect_url, headers=headers, extensions=extensions) as response,
        ):
            if response.is_redirect:
                raise SourceError(
                    "the address redirects elsewhere; submit the file's own address",
                    retryable=False,
                )
            if response.status_code in _PERMANENT_HTTP:
                raise SourceError(NOT_READABLE, retryable=False)
            if response.status_code != 200:
                raise SourceError("the video host did not deliver the file", retryable=True)
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise _too_large(limit)
            written = 0
            with target.open("wb") as out:
                # Raw reads, as they arrive: each one is a chance to check the deadline
                # and the throughput, however slowly the server drips.
                for chunk in response.iter_raw():
                    written += len(chunk)
                    # Checked while streaming: Content-Length may be absent or wrong.
                    if written > limit:
                        raise _too_large(limit)
                    out.write(chunk)
                    _check_pace(written, time.monotonic() - started, deadline, settings)
    except httpx.InvalidURL as exc:
        raise SourceError("the address is not a valid URL", retryable=False) from exc
    except httpx.HTTPError as exc:
        raise SourceError(f"download failed ({type(exc).__name__})", retryable=True) from exc


def _check_pace(written: int, elapsed: float, deadline: float, settings: AnalyzerSettings) -> None:
    if elapsed > deadline:
        raise SourceError(
            f"the download took longer than {format_duration(deadline)}", retryable=True
        )
    floor = settings.download_min_bytes_per_second
    if floor and elapsed > _PACE_GRACE_SECONDS and written / elapsed < floor:
        raise SourceError(f"the video host sends slower than {floor // 1024} KiB/s", retryable=True)


def source_refusal(video_url: str, owner: object, settings: AnalyzerSettings) -> str | None:
    """Why the analyzer will not fetch `video_url` for the document's `owner` (the same
    policy rerun-api applied when the analysis was created), or None."""
    if video_url.startswith("file://") and settings.allow_file_urls:
        # Local profile: `_file_path` checks the roots with symlinks resolved, which is
        # stricter than the policy's lexical check.
        return None
    policy = VideoUrlPolicy.from_settings(settings)
    return policy.problem(video_url, owner if isinstance(owner, str) else None)
