"""The backlog port: what a process accepted and has not applied yet.

A process that stops waits for its backlog to reach 0 before it stops its consumers
(:mod:`services.running.lifecycle`), when the work left would otherwise wait for its next
start: on the embedded bus, which lives in the process's own database.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Backlog"]


class Backlog(Protocol):
    async def outstanding(self) -> int:
        """How much accepted work is not done yet: records the consumer groups have not
        committed, outbox rows not published."""
        ...
