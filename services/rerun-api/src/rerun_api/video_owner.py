"""Binds the caller to the video URL check of the request body.

An async dependency on purpose: FastAPI solves dependencies before it validates the body,
in the request's own task, so the ContextVar set here is what `CreateAnalysisRequest`'s
`video_url` validator sees. A foreign or malformed video_url is then one more problem in
the same 422 as every other field's (a sync dependency would run in a worker thread,
whose context is thrown away).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from flokraft_core.auth import Principal
from flokraft_core.video_urls import VideoUrlPolicy, bind_owner
from flokraft_core.web.security import CurrentUser
from rerun_api.settings import RerunApiSettings


async def video_owner(request: Request, principal: CurrentUser) -> Principal:
    settings: RerunApiSettings = request.app.state.settings
    policy: VideoUrlPolicy | None = getattr(request.app.state, "video_url_policy", None)
    if policy is None:
        policy = request.app.state.video_url_policy = VideoUrlPolicy.from_settings(settings)
    bind_owner(policy, principal.uid)
    return principal


VideoOwner = Annotated[Principal, Depends(video_owner)]
