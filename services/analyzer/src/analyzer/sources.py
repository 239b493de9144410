"""Video sources: gs:// (Cloud Storage client), https:// (streamed download with a size
cap) and file:// (local profile only, below the configured roots).

Runs inside the job's child process, so a download counts against the job's memory cap
and time limit like the analysis itself. Downloads are streamed to a temporary file in
WORK_DIR and removed afterwards; nothing is held in memory whole.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.cloud import storage  # type: ignore[attr-defined]

from analyzer.settings import AnalyzerSettings

_CHUNK = 1 << 20
# Answers that will not change on a retry.
_PERMANENT_HTTP = frozenset({400, 401, 403, 404, 405, 410, 414, 451})


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
    retry = Retry(initial=0.5, maximum=5.0, timeout=settings.download_timeout_seconds)
    client = storage.Client(project=settings.google_cloud_project)
    try:
        blob = client.bucket(bucket_name).blob(blob_name)
        blob.reload(timeout=settings.download_timeout_seconds, retry=retry)
        if blob.size is not None and blob.size > settings.max_download_bytes:
            raise _too_large(settings.max_download_bytes)
        blob.download_to_filename(
            str(target), timeout=settings.download_timeout_seconds, retry=retry
        )
    except gexc.NotFound as exc:
        raise SourceError("no such object in storage", retryable=False) from exc
    except (gexc.Forbidden, gexc.Unauthorized) as exc:
        raise SourceError("access to the object was denied", retryable=False) from exc
    except gexc.GoogleAPIError as exc:
        raise SourceError(f"storage error ({type(exc).__name__})", retryable=True) from exc
    finally:
        client.close()
    if target.stat().st_size > settings.max_download_bytes:
        raise _too_large(settings.max_download_bytes)


def _download_http(url: str, target: Path, settings: AnalyzerSettings) -> None:
    limit = settings.max_download_bytes
    timeout = httpx.Timeout(settings.download_timeout_seconds)
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=5) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code in _PERMANENT_HTTP:
                raise SourceError(f"the server answered {response.status_code}", retryable=False)
            if response.status_code != 200:
                raise SourceError(f"the server answered {response.status_code}", retryable=True)
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise _too_large(limit)
            written = 0
            with target.open("wb") as out:
                for chunk in response.iter_bytes(_CHUNK):
                    written += len(chunk)
                    # Checked while streaming: Content-Length may be absent or wrong.
                    if written > limit:
                        raise _too_large(limit)
                    out.write(chunk)
    except httpx.InvalidURL as exc:
        raise SourceError("the address is not a valid URL", retryable=False) from exc
    except httpx.TooManyRedirects as exc:
        raise SourceError("too many redirects", retryable=False) from exc
    except httpx.HTTPError as exc:
        raise SourceError(f"download failed ({type(exc).__name__})", retryable=True) from exc
