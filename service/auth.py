"""Bearer-token authentication for every RPC except the health check."""

from __future__ import annotations

import hmac
import os
from pathlib import Path

import grpc

from service.config import ConfigError

# Load balancers and orchestrators probe health without credentials.
UNAUTHENTICATED_SERVICES = ("/grpc.health.v1.Health/",)
TOKEN_ENVIRONMENT = "GRADPOOL_TOKEN"


def read_token(token_file: str | None) -> str | None:
    """The token from a file (first line) or GRADPOOL_TOKEN; None for none."""
    if token_file:
        path = Path(token_file)
        if not path.is_file():
            raise ConfigError("token_file", f"file {token_file!r} does not exist")
        token = path.read_text().strip()
        if not token:
            raise ConfigError("token_file", f"{token_file} is empty")
        return token
    return os.environ.get(TOKEN_ENVIRONMENT) or None


class TokenInterceptor(grpc.ServerInterceptor):
    """Refuses calls whose ``authorization`` metadata is not the token."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method.startswith(UNAUTHENTICATED_SERVICES):
            return continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata or ())
        given = metadata.get("authorization", "").encode()
        if hmac.compare_digest(given, self._expected):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        return _refusal(handler, "missing" if not given else "wrong")


def _refusal(handler, what: str):
    """A handler of the same shape as handler that aborts UNAUTHENTICATED."""
    message = (
        f"{what} bearer token; pass the server's token with --token-file or "
        "GRADPOOL_TOKEN (metadata 'authorization: Bearer <token>')"
    )

    def abort(request_or_iterator, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    if handler is None:
        return None
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)
