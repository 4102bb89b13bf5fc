"""The console-session port: who a session cookie belongs to, until it ends.

A login starts a session: a random id of 256 bits that only the browser's cookie
holds; the server keeps a SHA-256 hash of it, so that a copy of the table opens
nothing. A session ends when it expires (a fixed lifetime from login, however
active it was), at logout, or when its user is disabled: every request asks the
store, so an ended session is refused at once, whatever copy of the cookie is sent.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

__all__ = ["Sessions"]


class Sessions(Protocol):
    async def start(self, user_id: str, lifetime: timedelta) -> str:
        """A new session for ``user_id`` that lasts ``lifetime``: its id, shown only here."""
        ...

    async def user_of(self, session_id: str) -> str | None:
        """The user of the live session ``session_id``; ``None`` once it ended, or for an
        id that never was one. Notes that the session was seen (at most once a minute)."""
        ...

    async def end(self, session_id: str) -> None:
        """End the session ``session_id`` (logout); an ended or unknown one is no error."""
        ...

    async def end_all(self, user_id: str) -> int:
        """End every live session of ``user_id`` (the user is disabled): how many."""
        ...

    async def close(self) -> None: ...
