"""The one exception type the state layer raises; servicers turn it into a gRPC status."""

from __future__ import annotations

import grpc


class GrpcStatusError(Exception):
    """A request failure carrying the gRPC status code the real service would return."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(what: str, name: str) -> GrpcStatusError:
    # Same wording shape as Google's: clients and humans grep for "Resource not found".
    return GrpcStatusError(grpc.StatusCode.NOT_FOUND, f"Resource not found ({what}={name}).")


def invalid(message: str) -> GrpcStatusError:
    return GrpcStatusError(grpc.StatusCode.INVALID_ARGUMENT, message)
