"""Errors the engine raises towards the worker."""


class VideoDecodeError(Exception):
    """The input could not be decoded as a video.

    The message is meant to be shown to the dancer as is, e.g.
    ``"the video could not be decoded: no video stream in the file"``.
    """

    PREFIX = "the video could not be decoded"

    @classmethod
    def because(cls, reason: str) -> "VideoDecodeError":
        return cls(f"{cls.PREFIX}: {reason}")
