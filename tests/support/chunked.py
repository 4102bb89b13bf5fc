"""POSTing a chunked body to an ASGI app the way uvicorn hands one over, counting
what the app pulled: a test sees how much of a 200 MB body was read, without making
200 MB.

The raw ASGI client makes each chunk only when the app asks for it (no
``Content-Length``, ``Transfer-Encoding: chunked``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI

__all__ = ["CHUNK", "Answer", "post_chunked", "repeated"]

CHUNK = 64 * 1024


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    pulled: int
    """Bytes of the request body the app received."""

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/problem+json"
        document: dict[str, Any] = orjson.loads(self.body)
        return document


@dataclass
class _Streamed:
    chunks: Iterator[bytes]
    pulled: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)

    done: bool = False

    async def receive(self) -> dict[str, Any]:
        if self.done:
            return {"type": "http.disconnect"}
        chunk = next(self.chunks, None)
        if chunk is None:  # the body ended with the chunk before
            self.done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        self.pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


def repeated(piece: bytes, total: int) -> Iterator[bytes]:
    """``total`` bytes of ``piece`` over and over, a chunk at a time, made when asked for."""
    chunk = (piece * (CHUNK // len(piece) + 1))[:CHUNK]
    for _ in range(total // CHUNK):
        yield chunk


async def post_chunked(
    app: FastAPI, path: str, headers: dict[str, str], chunks: Iterator[bytes]
) -> Answer:
    """POST ``chunks`` as a chunked body (no Content-Length), as uvicorn hands it to the app."""
    streamed = _Streamed(chunks)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"ingest"),
            (b"transfer-encoding", b"chunked"),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("ingest", 80),
    }
    await app(scope, streamed.receive, streamed.send)
    start = next(m for m in streamed.sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in streamed.sent if m["type"] == "http.response.body")
    found = {k.decode(): v.decode() for k, v in start["headers"]}
    return Answer(start["status"], found, body, streamed.pulled)
