"""gs:// and http(s):// video sources through the analyzer process (storage emulator and
a local HTTP server standing in for Cloud Storage and a video host)."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from tests.analyzer.conftest import JobWorld, analyzer_env
from tests.support.processes import ManagedProcess


@pytest.fixture
def bucket(storage_emulator: ManagedProcess, world: JobWorld, dance_video: Path) -> str:
    client = storage.Client(
        project=world.project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": storage_emulator.url},
    )
    name = f"videos-{world.project}"
    client.create_bucket(name)
    client.bucket(name).blob("uploads/dance.mp4").upload_from_filename(str(dance_video))
    return name


@pytest.fixture
def http_server(video_dir: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(video_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_gs_video_is_downloaded_and_analysed(
    world: JobWorld, video_dir: Path, bucket: str, storage_emulator: ManagedProcess, start_analyzer
) -> None:
    env = analyzer_env(world, video_dir, STORAGE_EMULATOR_HOST=storage_emulator.url)
    analyzer = start_analyzer(env)
    good = world.create(f"gs://{bucket}/uploads/dance.mp4")
    missing = world.create(f"gs://{bucket}/uploads/missing.mp4")
    world.publish(good)
    world.publish(missing)

    done = world.wait_status(good, "done", process=analyzer)
    assert done["metrics"]["frames_analysed"] > 100
    failed = world.wait_status(missing, "failed", process=analyzer)
    assert failed["error"] == "the video could not be fetched: no such object in storage"
    assert failed["attempts"] == 1


def test_http_video_is_streamed_with_a_size_cap(
    world: JobWorld, video_dir: Path, dance_video: Path, http_server: str, start_analyzer
) -> None:
    size = dance_video.stat().st_size
    env = analyzer_env(world, video_dir, ALLOW_HTTP_URLS="true", MAX_DOWNLOAD_BYTES=str(size + 10))
    analyzer = start_analyzer(env)
    big = video_dir / "big.bin"
    big.write_bytes(b"\0" * (size + 11))
    good = world.create(f"{http_server}/{dance_video.name}")
    too_big = world.create(f"{http_server}/big.bin")
    not_found = world.create(f"{http_server}/nothing-here.mp4")
    for analysis_id in (good, too_big, not_found):
        world.publish(analysis_id)

    assert world.wait_status(good, "done", process=analyzer)["processed"] is True
    failed = world.wait_status(too_big, "failed", process=analyzer)
    assert failed["error"].startswith("the video could not be fetched: the file is larger than")
    missing = world.wait_status(not_found, "failed", process=analyzer)
    assert missing["error"] == "the video could not be fetched: the server answered 404"


def test_plain_http_is_refused_unless_enabled(
    world: JobWorld, video_dir: Path, dance_video: Path, http_server: str, start_analyzer
) -> None:
    analyzer = start_analyzer(analyzer_env(world, video_dir))
    analysis_id = world.create(f"{http_server}/{dance_video.name}")
    world.publish(analysis_id)
    failed = world.wait_status(analysis_id, "failed", process=analyzer)
    assert failed["error"] == "the video could not be fetched: unsupported address scheme 'http'"
