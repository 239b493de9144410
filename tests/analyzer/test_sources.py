"""gs:// and http(s):// video sources through the analyzer process (storage emulator and
a local HTTP server standing in for Cloud Storage and a video host)."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from analyzer.sources import NOT_READABLE
from flokraft_devstack.processes import ManagedProcess, free_port
from tests.analyzer.conftest import JobWorld, analyzer_env


@pytest.fixture
def bucket(storage_emulator: ManagedProcess, world: JobWorld, dance_video: Path) -> str:
    client = storage.Client(
        project=world.project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": storage_emulator.url},
    )
    name = f"videos-{world.project}"
    client.create_bucket(name)
    for owner in ("user1", "user2"):
        client.bucket(name).blob(f"{owner}/dance.mp4").upload_from_filename(str(dance_video))
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
    env = analyzer_env(
        world,
        video_dir,
        STORAGE_EMULATOR_HOST=storage_emulator.url,
        VIDEO_URL_PREFIXES=f"gs://{bucket}/{{uid}}/",
    )
    analyzer = start_analyzer(env)
    good = world.create(f"gs://{bucket}/user1/dance.mp4")
    missing = world.create(f"gs://{bucket}/user1/missing.mp4")
    # Exists, but belongs to user2: the document's owner (user1) may not have it fetched.
    foreign = world.create(f"gs://{bucket}/user2/dance.mp4")
    for analysis_id in (good, missing, foreign):
        world.publish(analysis_id)

    done = world.wait_status(good, "done", process=analyzer)
    assert done["metrics"]["frames_analysed"] > 100
    failed = world.wait_status(missing, "failed", process=analyzer)
    # Says what to fix, not what exists.
    assert failed["error"] == f"the video could not be fetched: {NOT_READABLE}"
    assert failed["attempts"] == 1
    refused = world.wait_status(foreign, "failed", process=analyzer)
    assert refused["error"].startswith("video_url must be the address of one of your own")
    assert refused.get("metrics") is None


def test_http_video_is_streamed_with_a_size_cap(
    world: JobWorld, video_dir: Path, dance_video: Path, http_server: str, start_analyzer
) -> None:
    size = dance_video.stat().st_size
    env = analyzer_env(
        world,
        video_dir,
        ALLOW_HTTP_URLS="true",
        MAX_DOWNLOAD_BYTES=str(size + 10),
        VIDEO_URL_PREFIXES=f"{http_server}/{{uid}}/",
        VIDEO_FETCH_ALLOWED_NETWORKS='["127.0.0.1/32"]',
    )
    analyzer = start_analyzer(env)
    own = video_dir / "user1"
    own.mkdir(exist_ok=True)
    shutil.copyfile(dance_video, own / dance_video.name)
    (own / "big.bin").write_bytes(b"\0" * (size + 11))
    good = world.create(f"{http_server}/user1/{dance_video.name}")
    too_big = world.create(f"{http_server}/user1/big.bin")
    not_found = world.create(f"{http_server}/user1/nothing-here.mp4")
    for analysis_id in (good, too_big, not_found):
        world.publish(analysis_id)

    assert world.wait_status(good, "done", process=analyzer)["processed"] is True
    failed = world.wait_status(too_big, "failed", process=analyzer)
    assert failed["error"].startswith("the video could not be fetched: the file is larger than")
    missing = world.wait_status(not_found, "failed", process=analyzer)
    assert missing["error"] == f"the video could not be fetched: {NOT_READABLE}"


def test_addresses_outside_the_owners_prefixes_are_never_fetched(
    world: JobWorld, video_dir: Path, dance_video: Path, start_analyzer
) -> None:
    requests: list[str] = []

    class Counting(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

    handler = functools.partial(Counting, directory=str(video_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        # Plain http is not even configurable without ALLOW_HTTP_URLS: the default prefix
        # (the upload bucket) applies, and a tampered document names another address.
        analyzer = start_analyzer(analyzer_env(world, video_dir))
        tampered = world.create(f"{base}/{dance_video.name}")
        world.publish(tampered)
        failed = world.wait_status(tampered, "failed", process=analyzer)
        assert failed["error"] == (
            "video_url must be the address of one of your own uploads: "
            "gs://flokraft-videos/user1/..."
        )
        assert requests == []
    finally:
        server.shutdown()
        server.server_close()


class Drip(http.server.BaseHTTPRequestHandler):
    """A video host that sends one byte every quarter second, for ever."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(10**8))
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(0.25)
        except (BrokenPipeError, ConnectionResetError):
            return

    def log_message(self, *args: object) -> None:
        return


def test_a_slow_drip_source_is_abandoned_at_the_download_deadline(
    world: JobWorld, video_dir: Path, start_analyzer
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        env = analyzer_env(
            world,
            video_dir,
            ALLOW_HTTP_URLS="true",
            VIDEO_URL_PREFIXES=f"{base}/{{uid}}/",
            VIDEO_FETCH_ALLOWED_NETWORKS='["127.0.0.1/32"]',
            DOWNLOAD_DEADLINE_SECONDS="3",
            SOURCE_MAX_ATTEMPTS="2",
        )
        analyzer = start_analyzer(env)
        analysis_id = world.create(f"{base}/user1/dance.mp4")
        started = time.monotonic()
        world.publish(analysis_id)
        failed = world.wait_status(analysis_id, "failed", timeout=90, process=analyzer)
        # Not the job's time limit (30 s here, 15 minutes in production), five times over:
        # the download's own deadline, and source failures get SOURCE_MAX_ATTEMPTS tries.
        assert failed["error"] == (
            "the video could not be fetched: the download took longer than 3 seconds"
        )
        assert failed["attempts"] == 2
        assert time.monotonic() - started < 45
    finally:
        server.shutdown()
        server.server_close()


def test_a_gs_source_without_credentials_is_a_readable_source_failure(
    world: JobWorld, video_dir: Path, start_analyzer, tmp_path: Path
) -> None:
    # Issue 21: the storage client was built outside the source's error handling, so a
    # deployment without credentials crashed the job (counted up to MAX_ATTEMPTS, 5).
    # No emulator and no credentials; the metadata server is pointed at a closed local
    # port, so the credential lookup never leaves this machine.
    closed = f"127.0.0.1:{free_port()}"
    env = analyzer_env(
        world,
        video_dir,
        VIDEO_URL_PREFIXES="gs://no-credentials/{uid}/",
        GCE_METADATA_HOST=closed,
        GCE_METADATA_IP=closed,
        GOOGLE_APPLICATION_CREDENTIALS="",
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
    )
    env.pop("STORAGE_EMULATOR_HOST", None)
    analyzer = start_analyzer(env)
    analysis_id = world.create("gs://no-credentials/user1/dance.mp4")
    world.publish(analysis_id)
    failed = world.wait_status(analysis_id, "failed", timeout=120, process=analyzer)
    assert failed["error"].startswith("the video could not be fetched: storage error"), failed
    assert "Credentials" in failed["error"]
    assert failed["attempts"] == 2  # SOURCE_MAX_ATTEMPTS, not MAX_ATTEMPTS
