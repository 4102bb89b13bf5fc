"""Request bodies, as every HTTP app of nudge reads them: within a size limit, as JSON.

Each refusal is a :class:`~services.http.problems.Problem`: ``body-too-large`` (413),
``unsupported-media-type`` (415), ``malformed-json`` (400).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from services.http.problems import Problem

__all__ = ["MAX_BODY_BYTES", "parse_json", "read_body", "require_json"]

MAX_BODY_BYTES = 4 * 1024 * 1024


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, or ``body-too-large`` as soon as more than ``limit`` bytes came.

    The bytes are counted while they stream in, chunked bodies (no ``Content-Length``)
    too, so an oversized body is never held whole. The body read is kept on
    ``request``: ``request.body()`` and ``request.form()`` read it from there.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem("body-too-large", f"at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem("body-too-large", f"at most {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # what Starlette's own body() keeps, so later readers see it
    return body


def require_json(request: Request) -> None:
    """``unsupported-media-type`` unless the body is said to be JSON (``application/json``,
    ``application/<anything>+json``)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise Problem("unsupported-media-type", f"got {media or 'no content type'}")


def parse_json(body: bytes) -> Any:
    """``body`` parsed, or ``malformed-json``."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem("malformed-json", str(exc)) from None
