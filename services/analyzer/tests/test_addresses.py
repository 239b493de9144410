"""Where the analyzer may connect (issue 12, point 1). Every refusal here is decided from
the resolver's answer before any connection: nothing is sent to any address but
127.0.0.1, and only in the tests that connect on purpose."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from analyzer.addresses import AddressRefused, checked_address, parse_networks
from analyzer.settings import AnalyzerSettings
from analyzer.sources import NOT_READABLE, SourceError, _check_pace, _download_http


def numeric_only(host: str, port: int) -> list[str]:
    """The system resolver, forbidden from asking DNS: IP literals in every notation the
    C library accepts, and nothing else."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    return [str(info[4][0]) for info in infos]


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",  # decimal 127.0.0.1
        "0x7f000001",  # hex
        "0177.0.0.1",  # octal
        "127.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",  # CGNAT
        "100.127.255.254",
        "169.254.169.254",  # the metadata server
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:a00:1::",  # 6to4 of 10.0.0.1
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
    ],
)
def test_internal_addresses_are_refused_in_any_notation(host: str) -> None:
    with pytest.raises(AddressRefused, match="not a public internet address"):
        checked_address(host, 443, resolver=numeric_only)


@pytest.mark.parametrize(
    "answers",
    [
        ["169.254.169.254"],  # metadata.google.internal
        ["8.8.8.8", "10.0.0.1"],  # a mixed answer is refused, not "the good one" picked
        ["2001:4860:4860::8888", "::1"],
    ],
)
def test_names_resolving_to_internal_addresses_are_refused(answers: list[str]) -> None:
    with pytest.raises(AddressRefused):
        checked_address("videos.example", 443, resolver=lambda _h, _p: answers)


def test_public_addresses_are_the_ones_connected_to() -> None:
    checked = checked_address("videos.example", 443, resolver=lambda _h, _p: ["93.184.216.34"])
    assert str(checked.ip) == "93.184.216.34"
    assert checked.host == "videos.example"


def test_unresolvable_names_are_refused() -> None:
    def fails(_host: str, _port: int) -> Sequence[str]:
        raise socket.gaierror("no such name")

    with pytest.raises(AddressRefused, match="does not resolve"):
        checked_address("nowhere.example", 443, resolver=fails)


def test_allowed_networks_are_the_only_exception() -> None:
    allowed = parse_networks(["127.0.0.1/32"])
    checked = checked_address("127.0.0.1", 80, allowed_networks=allowed, resolver=numeric_only)
    assert str(checked.ip) == "127.0.0.1"
    with pytest.raises(AddressRefused):
        checked_address("10.0.0.1", 80, allowed_networks=allowed, resolver=numeric_only)


class Recorder(http.server.BaseHTTPRequestHandler):
    hosts: list[str] = []
    redirect_to: str | None = None

    def do_GET(self) -> None:
        type(self).hosts.append(self.headers.get("Host", ""))
        if type(self).redirect_to:
            self.send_response(302)
            self.send_header("Location", type(self).redirect_to or "")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status = 200 if self.path.endswith("/ok.bin") else 404
        body = b"video bytes" if status == 200 else b"nope"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def recorder() -> Iterator[tuple[int, type[Recorder]]]:
    handler = type("Handler", (Recorder,), {"hosts": [], "redirect_to": None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


def settings_for(tmp_path: Path, **overrides: object) -> AnalyzerSettings:
    values: dict[str, object] = {
        "allow_http_urls": True,
        "video_fetch_allowed_networks": ["127.0.0.1/32"],
        "work_dir": tmp_path,
        **overrides,
    }
    return AnalyzerSettings.model_validate(values)


def test_the_download_connects_to_the_checked_address_once_resolved(
    recorder: tuple[int, type[Recorder]], tmp_path: Path
) -> None:
    port, handler = recorder
    lookups: list[str] = []

    def resolver(host: str, _port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    target = tmp_path / "out.bin"
    _download_http(f"http://videos.test:{port}/u1/ok.bin", target, settings_for(tmp_path), resolver)
    assert target.read_bytes() == b"video bytes"
    # Resolved once (no second lookup an attacker's DNS could answer differently), and the
    # server saw the name, though the connection went to the checked address.
    assert lookups == ["videos.test"]
    assert handler.hosts == [f"videos.test:{port}"]


def test_redirects_are_not_followed(recorder: tuple[int, type[Recorder]], tmp_path: Path) -> None:
    port, handler = recorder
    handler.redirect_to = f"http://127.0.0.1:{port}/u1/ok.bin"
    with pytest.raises(SourceError, match="redirects") as caught:
        _download_http(f"http://127.0.0.1:{port}/u1/x", tmp_path / "o", settings_for(tmp_path))
    assert not caught.value.retryable
    assert len(handler.hosts) == 1


def test_missing_files_do_not_say_what_exists(
    recorder: tuple[int, type[Recorder]], tmp_path: Path
) -> None:
    port, _ = recorder
    with pytest.raises(SourceError) as caught:
        _download_http(f"http://127.0.0.1:{port}/u1/gone", tmp_path / "o", settings_for(tmp_path))
    assert caught.value.message == NOT_READABLE


def test_credentials_in_the_address_are_refused_before_resolving(tmp_path: Path) -> None:
    def never(_host: str, _port: int) -> list[str]:
        raise AssertionError("resolved")

    with pytest.raises(SourceError, match="credentials"):
        _download_http(
            "https://user:pass@videos.test/u1/x", tmp_path / "o", settings_for(tmp_path), never
        )


def test_loopback_is_refused_without_the_explicit_exception(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, video_fetch_allowed_networks=[])
    with pytest.raises(SourceError, match="not a public internet address"):
        # Refused from the resolver's answer: no connection is attempted at all.
        _download_http("http://127.0.0.1:9/u1/x", tmp_path / "o", settings, numeric_only)


def test_the_pace_check_ends_slow_and_endless_downloads(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, download_min_bytes_per_second=1024)
    _check_pace(100, 4.0, 300.0, settings)  # within the grace period: not judged yet
    with pytest.raises(SourceError, match="slower than 1 KiB/s") as slow:
        _check_pace(5000, 10.0, 300.0, settings)
    assert slow.value.retryable
    with pytest.raises(SourceError, match="longer than 5 minutes"):
        _check_pace(10**9, 301.0, 300.0, settings)
