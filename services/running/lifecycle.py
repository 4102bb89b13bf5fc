"""Stopping a serving process in order: stop accepting, drain what was accepted, stop.

On SIGTERM (or SIGINT) ``nudge serve``:

1. closes the :class:`Gate` in the signal handler itself, before the event loop runs
   anything else: every request from then on is answered 503 ``shutting-down`` with
   ``Retry-After`` (``/healthz`` still answers), so no 202 is given after the signal;
2. waits for the requests already past the gate (their records are then on the bus);
3. on the embedded bus, :func:`drain`: the segmenter and the dispatcher keep consuming
   until their groups' lag is 0 and the outbox is relayed (a failed look at the lag is
   logged and taken again); steps 2 and 3 together take at most ``NUDGE_DRAIN_TIMEOUT``
   seconds (what is left stays on the durable bus for the next start);
4. stops the HTTP server and the consumers, which finish and commit the batch in hand.

A second signal skips what is left of the drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence
from types import FrameType

from starlette.types import ASGIApp, Receive, Scope, Send

from services.http.problems import (
    Problem,
    ProblemKind,
    problem_response,
    register_problem_kinds,
)
from shared.logging import get_logger

__all__ = [
    "RETRY_AFTER",
    "STOPPING_PROBLEM_KINDS",
    "Gate",
    "drain",
    "on_stop_signal",
    "settle_and_drain",
]

log = get_logger(__name__)

RETRY_AFTER = 5
"""Seconds a client refused while the process stops is told to wait."""

STOPPING_PROBLEM_KINDS: dict[str, ProblemKind] = {
    "shutting-down": (
        503,
        "Shutting down",
        "This process is stopping and accepts no new request; nothing of this request was "
        "applied. Retry after the number of seconds in Retry-After (another replica, or this "
        "one once restarted, answers): a retried event is deduplicated by its event_id.",
    ),
}


class Gate:
    """ASGI middleware that refuses every request once closed, and counts those in flight."""

    def __init__(self, app: ASGIApp, *, always_open: Sequence[str] = ("/healthz",)) -> None:
        register_problem_kinds(STOPPING_PROBLEM_KINDS)
        self.app = app
        self.always_open = frozenset(always_open)
        self.closed = False
        self._in_flight = 0
        self._settled = asyncio.Event()
        self._settled.set()

    def close(self) -> None:
        """Refuse from now on. Safe to call from a signal handler: it only sets a flag."""
        self.closed = True

    async def settled(self) -> None:
        """Return once no request that passed the gate is still being answered."""
        await self._settled.wait()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.always_open:
            await self.app(scope, receive, send)
            return
        if self.closed:
            refusal = Problem(
                "shutting-down",
                "nudge is stopping; retry later",
                headers={"Retry-After": str(RETRY_AFTER), "Connection": "close"},
            )
            await problem_response(refusal)(scope, receive, send)
            return
        self._in_flight += 1
        self._settled.clear()
        try:
            await self.app(scope, receive, send)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._settled.set()


def on_stop_signal(
    loop: asyncio.AbstractEventLoop, at_once: Callable[[], None], then: Callable[[], None]
) -> None:
    """On SIGTERM or SIGINT, run ``at_once`` inside the signal handler (it must only set
    flags) and ``then`` on the event loop. A handler installed with ``signal.signal`` runs
    as soon as the signal arrives, before the loop reads any socket that became ready
    after it: a request sent after the signal always meets a closed gate. (The loop's
    own ``add_signal_handler`` would queue the callback behind sockets ready at once.)"""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        at_once()
        loop.call_soon_threadsafe(then)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread: no signals here
            signal.signal(sig, handler)


Outstanding = Callable[[], Awaitable[int]]
"""How much accepted work is not done yet (a group's lag, unpublished outbox rows)."""


async def drain(outstanding: Sequence[Outstanding], timeout: float, interval: float = 0.05) -> bool:
    """Wait until every probe says 0 twice in a row (the relay may add work between two
    looks), at most ``timeout`` seconds; whether it got there. A look that fails (the
    bus's database busy a moment) is logged and taken again: it says nothing is done."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    quiet = 0
    left = -1
    while loop.time() < deadline:
        try:
            left = sum([await probe() for probe in outstanding])
        except Exception as exc:  # whatever failed, the work is not known to be done
            log.warning("drain: looking at the work left failed; looking again", error=str(exc))
            quiet, left = 0, -1
        else:
            quiet = quiet + 1 if left == 0 else 0
            if quiet >= 2:
                return True
        await asyncio.sleep(interval)
    log.warning("drain timed out; the rest is applied at the next start", left=left)
    return False


async def settle_and_drain(
    gate: Gate, outstanding: Sequence[Outstanding], timeout: float, interval: float = 0.05
) -> bool:
    """Wait for the requests past ``gate`` to be answered, then :func:`drain`, both within
    one deadline ``timeout`` seconds away; whether everything got done."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        async with asyncio.timeout_at(deadline):
            await gate.settled()
    except TimeoutError:
        log.warning("requests still in flight at the drain timeout; stopping anyway")
        return False
    if not outstanding:
        return True
    return await drain(outstanding, deadline - loop.time(), interval)
