"""The API's gate in front of its routes: who is calling, and how much they may send.

FastAPI reads a request's whole body before it runs any dependency, the token check
included, so a caller with no token could make the server hold any amount of memory.
This gate runs first: it answers 401 for an /api request with no known token before it
reads a byte of the body, and 413 for a body over the limit, from its Content-Length or,
for a chunked body, as soon as the bytes received pass the limit. The server never
holds more than the limit of any body."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .model import Actor

GUARDED_PREFIX = "/api/"  # every route that takes a token; /healthz and /docs take none


class Unauthorized(Exception):
    """No token, or one that is not configured; the message never repeats it."""


def error_response(status: int, error: str, message: str,
                   headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """Every error answer of the API: `{"error": ..., "message": ..., ...}`."""
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse({"error": error, "message": message, **extra}, status, headers)


def identify(tokens: Mapping[str, str], token: str | None) -> Actor:
    """The caller a bearer token names; `Unauthorized` for none or an unknown one. Every
    configured token is compared, in constant time, so timing tells nothing."""
    if token is None:
        raise Unauthorized("send Authorization: Bearer TOKEN")
    found = None
    for n, (known, role) in enumerate(tokens.items(), 1):
        if hmac.compare_digest(token.encode(), known.encode()):
            found = Actor(f"api token {n}", role)
    if found is None:
        raise Unauthorized("unknown token")
    return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, read as FastAPI's
    HTTPBearer reads it; None for no header or another scheme."""
    scheme, _, token = (authorization or "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


class RequestGuard:
    """ASGI middleware: the token check before the body, then the body size limit."""

    def __init__(self, app: ASGIApp, tokens: Mapping[str, str], max_body_bytes: int) -> None:
        self.app, self.tokens, self.max_body_bytes = app, dict(tokens), max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["path"].startswith(GUARDED_PREFIX):
            try:
                identify(self.tokens, bearer_token(headers.get("authorization")))
            except Unauthorized as e:
                await self._refuse(scope, receive, send, 401, "unauthorized", str(e))
                return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        body = bytearray()
        while True:  # at most the limit, whatever the caller says or sends
            message = await receive()
            if message["type"] != "http.request":  # the caller went away
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._refuse(scope, receive, send, 413, "too_large",
                           f"the request body is over the limit of {self.max_body_bytes:,} "
                           "bytes (TOKENBUDGET_MAX_BODY_BYTES)")

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, error: str,
                      message: str) -> None:
        """Answers without reading the body. The server drops the rest of it as it
        arrives (an answer cut off by a closed connection would not reach the caller)."""
        await error_response(status, error, message)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app the body already read, then the caller's own
    messages (a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}
    return replay
