"""What the worker and its child process say to each other, as typed models both import.

The worker writes one `ChildRequest` (JSON) to the child's stdin; the child writes JSON
lines to its result pipe: any number of `ProgressMessage`, then one `ResultMessage` or
`FailureMessage`. A line that is no valid message is skipped (a dying child may leave
half a line), so the worker decides from the exit status instead.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from analyzer.failures import FailureKind


class ChildRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    # AnalyzerSettings as JSON: the child rebuilds them (it reads no environment).
    settings: dict[str, Any]
    video_url: str
    analysis_type: str


class ProgressMessage(BaseModel):
    type: Literal["progress"] = "progress"
    value: float


class ResultMessage(BaseModel):
    type: Literal["result"] = "result"
    metrics: dict[str, Any]
    text: str
    peak_rss_bytes: int = 0


# What the child can tell apart; limits and shutdowns are the worker's own verdicts.
ChildFailureKind = Literal[
    FailureKind.MEMORY, FailureKind.DECODE, FailureKind.SOURCE, FailureKind.CRASH
]


class FailureMessage(BaseModel):
    type: Literal["failure"] = "failure"
    kind: ChildFailureKind
    message: str
    retryable: bool = True
    peak_rss_bytes: int = 0


ChildMessage = Annotated[
    ProgressMessage | ResultMessage | FailureMessage, Field(discriminator="type")
]
FinalMessage = ResultMessage | FailureMessage

_MESSAGE: TypeAdapter[ProgressMessage | ResultMessage | FailureMessage] = TypeAdapter(ChildMessage)


def encode(message: ChildMessage) -> str:
    return message.model_dump_json() + "\n"


class MessageReader:
    """Splits the pipe's bytes into messages; keeps an incomplete last line for later."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[ProgressMessage | ResultMessage | FailureMessage]:
        self._buffer += chunk
        *complete, self._buffer = self._buffer.split(b"\n")
        messages = []
        for line in complete:
            try:
                messages.append(_MESSAGE.validate_json(line))
            except ValidationError:
                continue
        return messages
