"""A render worker: ``python -m shared.adapters.render_worker INBOX_FD OUTBOX_FD MEMORY_BYTES``.

It reads calls (a module-level function of the domain and its arguments, pickled) from
``INBOX_FD``, runs each, and writes back its outcome (the value, or the exception) to
``OUTBOX_FD``, until the serving process closes the pipe or dies. With
``MEMORY_BYTES`` above zero, it may use that much memory more than it started with. It
imports only the standard library itself: the domain comes in with the first call.
See :class:`shared.adapters.rendering.ProcessRenderer`.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["main"]


def _serve(inbox: Connection, outbox: Connection) -> None:
    """A worker: run each call received and send back its outcome, until the serving
    process closes the pipe (or dies)."""
    outbox.send("ready")
    while True:
        try:
            call, args, kwargs = inbox.recv()
        except (EOFError, OSError):
            return
        try:
            outcome: tuple[bool, Any] = (True, call(*args, **kwargs))
        except Exception as exc:  # sent back to the caller to raise
            outcome = (False, exc)
        try:
            outbox.send(outcome)
        except (EOFError, OSError):
            return
        except Exception as exc:  # an outcome that does not pickle: its description does
            from shared.domain.rendering import RenderError  # noqa: PLC0415

            outbox.send((False, RenderError("template", f"{type(exc).__name__}: {exc}")))


def _limit_memory(extra: int) -> None:
    """Allow this process ``extra`` bytes of address space beyond what it holds now: a
    render that wants more fails with ``MemoryError`` (refused as too costly)."""
    import resource  # noqa: PLC0415 - POSIX only, and only in a worker

    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[0])
    wanted = pages * resource.getpagesize() + extra
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))


def main(argv: list[str]) -> None:
    """Serve calls on the pipes ``argv`` names (see the module's docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the parent stops us
    inbox = Connection(int(argv[0]), writable=False)
    outbox = Connection(int(argv[1]), readable=False)
    if int(argv[2]) > 0:
        with contextlib.suppress(OSError, ValueError):  # no /proc: bounded in time only
            _limit_memory(int(argv[2]))
    _serve(inbox, outbox)


if __name__ == "__main__":
    main(sys.argv[1:])
