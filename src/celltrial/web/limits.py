"""Request hygiene before anything is parsed: a body size limit, and JSON that is text.

- :class:`BodyLimit` (ASGI middleware) answers 413 to a request whose body is over the limit,
  from its Content-Length or while it streams, before any route reads it
  (:data:`MAX_BODY_BYTES`, setting ``CELLTRIAL_MAX_BODY_BYTES``).
- :func:`json_problem` says what is wrong with a decoded JSON body that Python's parser
  accepted but the store cannot keep: nesting deeper than :data:`MAX_DEPTH`, and text that is
  not Unicode scalar values (lone surrogates such as ``"\\ud800"`` cannot be encoded as UTF-8
  and would otherwise fail at the database).
"""

from __future__ import annotations

import json
import os
from typing import Any

MAX_BODY_BYTES = 1024 * 1024
"""Default limit of a request body (1 MiB: a data-entry form or JSON record is under 10 kB)."""
BODY_LIMIT_ENV = "CELLTRIAL_MAX_BODY_BYTES"
MAX_DEPTH = 8
"""Deepest nesting of a JSON body (a correction is two levels deep)."""


def max_body_bytes(value: int | None = None) -> int:
    """The body limit: ``value``, else ``$CELLTRIAL_MAX_BODY_BYTES``, else 1 MiB."""
    if value is not None:
        return int(value)
    text = os.environ.get(BODY_LIMIT_ENV)
    return int(text) if text else MAX_BODY_BYTES


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes; the body is read once and handed
    on whole, so the route never sees a partial body."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(scope, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: dict[str, Any], send: Any) -> None:
        detail = (f"Request body over the limit of {self.limit} bytes; nothing was read or "
                  "written")
        if scope["path"].startswith("/api"):
            payload, kind = json.dumps({"detail": detail}).encode(), b"application/json"
        else:
            payload, kind = detail.encode(), b"text/plain; charset=utf-8"
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", kind),
                                (b"content-length", str(len(payload)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})


def _text_problem(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"got `{text.encode('utf-8', 'backslashreplace').decode()}`, must be text " \
               "(a lone surrogate is not a character)"
    if "\x00" in text:
        return "must not contain a NUL character"
    return None


def json_problem(value: Any, depth: int = 0) -> str | None:
    """What makes a decoded JSON value unusable (too deep, not text), or None."""
    if depth > MAX_DEPTH:
        return f"must be nested at most {MAX_DEPTH} levels deep"
    if isinstance(value, str):
        return _text_problem(value)
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _text_problem(key) or json_problem(item, depth + 1)
            if problem:
                return problem
    if isinstance(value, list):
        for item in value:
            problem = json_problem(item, depth + 1)
            if problem:
                return problem
    return None


def form_problem(values: Any) -> str | None:
    """What makes submitted form values unusable (text that is not text), or None."""
    for key, value in values.multi_items():
        if isinstance(value, str):
            problem = _text_problem(key) or _text_problem(value)
            if problem:
                return f"`{key}`: {problem}"
    return None
