"""A cap on request bodies, counted as they arrive (a declared length is not trusted).

A chunked request declares no length, and Starlette reads a JSON body or a form
whole; this middleware reads the body first, up to the cap, and answers 413 as
soon as it is past it, so no endpoint ever holds more.  Console bodies are a
form or a template (kilobytes): the whole body is kept and handed on.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit"]


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: requests whose body passes ``limit`` bytes get 413 unread."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(receive)
        except _TooLarge:
            await _refuse(send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes:
        parts: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nothing to serve
                raise _TooLarge
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise _TooLarge
            parts.append(chunk)
            more = bool(message.get("more_body", False))
        return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, as one message; then whatever the server says next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(send: Send) -> None:
    text = b"request too large"
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": text})
