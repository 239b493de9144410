"""rerun-api's side of video addresses: a user can only submit the addresses of their own
uploads. Everything else is a 422 naming `video_url`, in the same answer as every other
field's problem. Nothing here is fetched: rerun-api only validates."""

from __future__ import annotations

import httpx
import pytest

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess

OWNER = "owner-1"


def body(video_url: str, **overrides: object) -> dict[str, object]:
    return {
        "video_url": video_url,
        "dance_type": "salsa",
        "dancers": ["lead"],
        "analysis_type": "solo",
        **overrides,
    }


@pytest.mark.parametrize(
    "video_url",
    [
        "gs://flokraft-videos/someone-else/clip.mp4",  # another user's upload
        "gs://another-bucket/owner-1/clip.mp4",
        "gs://flokraft-videos/owner-1x/clip.mp4",  # a uid that merely starts with ours
        "gs://flokraft-videos/owner-1/../someone-else/clip.mp4",
        "gs://flokraft-videos/owner-1/%2e%2e/someone-else/clip.mp4",
        "gs://flokraft-videos/owner-1/",
        "https://127.0.0.1:8443/owner-1/clip.mp4",
        "https://2130706433/owner-1/clip.mp4",
        "https://10.0.0.8/owner-1/clip.mp4",
        "https://169.254.169.254/computeMetadata/v1/",
        "https://user:pass@storage.example/owner-1/clip.mp4",
        "https://[::1]/owner-1/clip.mp4",
        "http://videos.example/owner-1/clip.mp4",
        "file:///etc/passwd",
    ],
)
def test_addresses_that_are_not_the_callers_uploads_are_422(
    rerun_api: ManagedProcess, issuer: TestIssuer, video_url: str
) -> None:
    response = httpx.post(
        rerun_api.url + "/analyses", json=body(video_url), headers=issuer.headers(OWNER)
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["param"] == "video_url"
    assert error["code"] == "invalid_argument"


def test_the_refusal_says_which_addresses_are_allowed(
    rerun_api: ManagedProcess, issuer: TestIssuer
) -> None:
    response = httpx.post(
        rerun_api.url + "/analyses",
        json=body("gs://flokraft-videos/someone-else/clip.mp4"),
        headers=issuer.headers(OWNER),
    )
    assert "gs://flokraft-videos/owner-1/" in response.json()["error"]["message"]
    assert "someone-else" not in response.json()["error"]["message"]


def test_one_422_lists_the_video_url_with_every_other_problem(
    rerun_api: ManagedProcess, issuer: TestIssuer
) -> None:
    response = httpx.post(
        rerun_api.url + "/analyses",
        json=body("gs://flokraft-videos/someone-else/clip.mp4", dancers=[], analysis_type="x"),
        headers=issuer.headers(OWNER),
    )
    assert response.status_code == 422
    params = {detail["param"].split(".")[0] for detail in response.json()["error"]["details"]}
    assert {"video_url", "dancers", "analysis_type"} <= params


def test_the_same_address_is_accepted_for_its_owner_only(
    rerun_api: ManagedProcess, issuer: TestIssuer
) -> None:
    url = f"gs://flokraft-videos/{OWNER}/clip.mp4"
    mine = httpx.post(rerun_api.url + "/analyses", json=body(url), headers=issuer.headers(OWNER))
    assert mine.status_code == 201, mine.text
    theirs = httpx.post(
        rerun_api.url + "/analyses", json=body(url), headers=issuer.headers("owner-2")
    )
    assert theirs.status_code == 422
