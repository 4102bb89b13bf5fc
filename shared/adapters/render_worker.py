"""A render worker: ``python -m shared.adapters.render_worker IN OUT MEMORY BOUND PARENT CPU``.

It reads calls (a module-level function of the domain and its arguments, pickled) from
the pipe ``INBOX``, runs each, and writes back its outcome (the value, or a render
error) to ``OUTBOX``, framed with its length, until the serving process closes the
pipe or dies. An outcome over ``BOUND`` bytes is sent as a render over the output
limit instead (the serving process would refuse it); an exception other than a
render error is sent as one, described.

It does not outlive its serving process (``PARENT``, its pid): on Linux the kernel kills
it when that process dies (``PR_SET_PDEATHSIG``), even in the middle of a render. And
each call may use at most ``CPU`` seconds of processor time (``RLIMIT_CPU``, raised
again before each call): a render the serving process cannot stop is stopped anyway. With
``MEMORY_BYTES`` above zero, it may use that much memory more than it started with. It
imports only the standard library itself: the domain comes in with the first call.
See :class:`shared.adapters.rendering.ProcessRenderer`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["main"]


def _answer(call: Any, args: Any, kwargs: Any, bound: int) -> bytes:
    """The outcome of one call, pickled: at most ``bound`` bytes, and only classes the
    serving process rebuilds (a value, a ``RenderError`` or ``TemplateContentError``)."""
    from shared.domain.message_templates import TemplateContentError  # noqa: PLC0415
    from shared.domain.rendering import RenderError, RenderTooCostly  # noqa: PLC0415

    try:
        outcome: tuple[bool, Any] = (True, call(*args, **kwargs))
    except (RenderError, TemplateContentError) as exc:  # sent back to the caller to raise
        outcome = (False, exc)
    except Exception as exc:  # described: the serving process rebuilds render errors only
        outcome = (False, RenderError("template", f"{type(exc).__name__}: {exc}"[:1000]))
    try:
        payload = pickle.dumps(outcome)
    except Exception as exc:  # an outcome that does not pickle: its description does
        payload = pickle.dumps((False, RenderError("template", f"{type(exc).__name__}")))
    if len(payload) > bound:
        over = RenderTooCostly("template", f"the answer is over {bound} bytes", "output")
        payload = pickle.dumps((False, over))
    return payload


def _serve(inbox: Connection, outbox: Connection, bound: int, cpu: int) -> None:
    """A worker: run each call received and send back its outcome, until the serving
    process closes the pipe (or dies)."""
    outbox.send_bytes(b"ready")
    while True:
        try:
            call, args, kwargs = inbox.recv()
        except (EOFError, OSError):
            return
        if cpu > 0:
            with contextlib.suppress(OSError, ValueError):
                _limit_cpu(cpu)
        try:
            outbox.send_bytes(_answer(call, args, kwargs, bound))  # framed: length, then bytes
        except (EOFError, OSError):
            return


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


def _limit_cpu(seconds: int) -> None:
    """Allow the next call ``seconds`` of processor time: past it, SIGXCPU ends this worker
    (its replacement is started). The limit counts the worker's whole life, so it is
    moved on before each call."""
    import resource  # noqa: PLC0415 - POSIX only, and only in a worker

    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime) + seconds
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _die_with(parent: int) -> None:
    """Be killed by the kernel when ``parent`` dies (Linux); gone already, exit now."""
    if sys.platform.startswith("linux"):
        import ctypes  # noqa: PLC0415 - Linux only

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above: nobody would stop us
        os._exit(0)


def main(argv: list[str]) -> None:
    """Serve calls on the pipes ``argv`` names (see the module's docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the parent stops us
    _die_with(int(argv[4]))
    inbox = Connection(int(argv[0]), writable=False)
    outbox = Connection(int(argv[1]), readable=False)
    if int(argv[2]) > 0:
        with contextlib.suppress(OSError, ValueError):  # no /proc: bounded in time only
            _limit_memory(int(argv[2]))
    _serve(inbox, outbox, int(argv[3]), int(argv[5]))


if __name__ == "__main__":
    main(sys.argv[1:])
