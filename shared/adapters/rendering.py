"""Renderers: where marketers' templates are rendered, and how long they may take.

- :class:`ProcessRenderer`, the one services use: a small pool of worker processes.
  Each render is sent to an idle worker over a pipe; the event loop waits on the
  pipe, so it is free meanwhile. A render past the time limit is stopped by killing
  its worker (a thread cannot be stopped inside one long C call, such as a huge
  power; a process can), and a fresh worker takes its place on the next render. Each
  worker may use at most ``memory_mb`` of memory more than it starts with, and at most
  ``ceil(timeout) + 1`` seconds of processor time per render; it dies with this process.
- :class:`InlineRenderer` renders in the caller: bounded in output only. For tests of
  other things and for measuring the pool's overhead.

Workers start lazily (none until the first render), in a thread, as fresh
interpreters (``python -m shared.adapters.render_worker``): nothing of the serving
process (its threads, sockets, main module) is copied, and of its environment only
what an interpreter needs (``PATH``, ``PYTHONPATH``, the locale, ``PYTHONHASHSEED``):
no database URL, key or provider secret. A killed worker's replacement is started at
once. A render cancelled while its worker starts leaves that worker to the pool (the
start is shielded, and the worker adopted as idle); ``aclose`` waits for every start
under way, then kills and reaps every worker.

A worker runs a marketer's template, so what it sends back is not trusted: a request
is written and an answer read on the event loop without ever blocking it (pipes set
non-blocking, written and read as they are ready); an answer is refused past
:func:`answer_bound` bytes from its length header alone, and rebuilt only from the
few classes a render answers with (:func:`decoded_answer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import os
import pickle
import signal
import struct
import subprocess
import sys
import weakref
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from shared.domain.message_templates import TemplateContentError, checked_and_rendered
from shared.domain.push import PushContent
from shared.domain.rendering import (
    DEFAULT_LIMITS,
    AnyTemplate,
    RenderedEmail,
    RenderedMessage,
    RenderedSms,
    RenderError,
    RenderLimits,
    RenderTooCostly,
    render_message,
)
from shared.domain.sms import SmsLength
from shared.errors import RendererUnavailable
from shared.logging import get_logger

__all__ = [
    "InlineRenderer",
    "ProcessRenderer",
    "answer_bound",
    "decoded_answer",
    "read_answer",
    "write_request",
]

log = get_logger(__name__)

T = TypeVar("T")


class InlineRenderer:
    """Renders in the calling thread: bounded in output, not in time (tests, benchmarks)."""

    def __init__(self, limits: RenderLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits

    async def parts(
        self, channel: str, content: Mapping[str, Any], context: Mapping[str, Any]
    ) -> dict[str, Any]:
        return checked_and_rendered(channel, content, context, limits=self.limits)

    async def message(
        self, template: AnyTemplate, context: Mapping[str, Any], *, max_segments: int | None = None
    ) -> RenderedMessage:
        return render_message(template, context, limits=self.limits, max_segments=max_segments)

    async def aclose(self) -> None:
        return None


_ANSWER_CLASSES: dict[tuple[str, str], type] = {
    (kind.__module__, kind.__qualname__): kind
    for kind in (
        RenderedEmail,
        RenderedSms,
        SmsLength,
        PushContent,
        RenderError,
        RenderTooCostly,
        TemplateContentError,
    )
}
"""Every class a worker's answer may hold (with plain str, int, dict, list, tuple, None)."""
_ENVIRONMENT = ("PATH", "PYTHONHASHSEED", "LANG", "LANGUAGE")
"""What a worker keeps of the serving process's environment (with ``LC_*``)."""


class _AnswerUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _ANSWER_CLASSES.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"{module}.{name}")
        return found


def decoded_answer(payload: bytes) -> tuple[bool, Any]:
    """A worker's answer (``(True, value)`` or ``(False, error)``) rebuilt from ``payload``,
    refused as :class:`RenderError` if it holds anything but the classes a render sends."""
    try:
        outcome = _AnswerUnpickler(io.BytesIO(payload)).load()
    except Exception as exc:  # whatever a broken or hostile worker sent
        raise RenderError(
            "template", f"the render worker sent what is not an answer ({exc})"
        ) from None
    if not (
        isinstance(outcome, tuple)
        and len(outcome) == 2
        and isinstance(outcome[0], bool)
        and (outcome[0] or isinstance(outcome[1], (RenderError, TemplateContentError)))
    ):
        raise RenderError("template", "the render worker sent what is not an answer")
    return outcome[0], outcome[1]


def answer_bound(limits: RenderLimits) -> int:
    """The most bytes a worker's answer may take: every channel's output limit together,
    twice (a pickle's own bytes), and room for an error's text."""
    return 2 * (limits.email + limits.sms + limits.push) + 64 * 1024


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, _wake, ready)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def read_answer(fd: int, bound: int) -> bytes:
    """One framed answer (a 4-byte big-endian length, then that many bytes) read from the
    pipe ``fd`` as it arrives, never blocking the event loop; :class:`RenderError` if its
    length is over ``bound`` (nothing more is read), ``EOFError`` if the pipe closes."""
    os.set_blocking(fd, False)
    buffer = bytearray()
    wanted, header = 4, True
    while len(buffer) < wanted or header:
        if len(buffer) == wanted:  # the header is in
            (size,) = struct.unpack("!i", buffer)
            if not 0 <= size <= bound:
                raise RenderError(
                    "template", f"the render worker's answer is over {bound} bytes: refused"
                )
            buffer, wanted, header = bytearray(), size, False
            continue
        try:
            chunk = os.read(fd, wanted - len(buffer))
        except BlockingIOError:
            await _readable(fd)
            continue
        if not chunk:
            raise EOFError("the render worker closed its pipe")
        buffer += chunk
    return bytes(buffer)


async def _writable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    loop.add_writer(fd, _wake, ready)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


async def write_request(fd: int, payload: bytes) -> None:
    """``payload`` framed as the worker reads it (a 4-byte big-endian length, then the
    bytes: ``multiprocessing.connection``'s format), written to the pipe ``fd`` as the
    worker takes it, never blocking the event loop (a worker that stops reading holds up
    only its own render, until its time limit). ``OSError`` if the worker is gone."""
    os.set_blocking(fd, False)
    frame = memoryview(struct.pack("!i", len(payload)) + payload)
    while frame:
        try:
            frame = frame[os.write(fd, frame) :]
        except BlockingIOError:
            await _writable(fd)


def _environment() -> dict[str, str]:
    """What a worker keeps of this process's environment: nothing secret."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name in _ENVIRONMENT or name.startswith("LC_")
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the same modules
    return env


class _Worker:
    """One worker process (a fresh interpreter: nothing of the serving process's threads,
    sockets or main module) and the serving side of its pipes."""

    def __init__(self, memory_bytes: int | None, bound: int, cpu_seconds: int) -> None:
        inbox, to_worker = os.pipe()  # the worker reads its calls from inbox
        from_worker, outbox = os.pipe()  # and writes its answers to outbox
        self.bound = bound
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [
                    sys.executable,
                    "-m",
                    "shared.adapters.render_worker",
                    str(inbox),
                    str(outbox),
                    str(memory_bytes or 0),
                    str(bound),
                    str(os.getpid()),
                    str(cpu_seconds),
                ],
                pass_fds=(inbox, outbox),
                stdin=subprocess.DEVNULL,
                env=_environment(),
            )
        finally:
            os.close(inbox)
            os.close(outbox)
        self.requests = Connection(to_worker, readable=False)
        self.answers = Connection(from_worker, writable=False)

    async def ready(self) -> None:
        """Wait until the worker has imported what it needs: a render's time starts after
        that. ``EOFError`` if it exits first, :class:`RenderError` if it says otherwise."""
        if await read_answer(self.answers.fileno(), 16) != b"ready":
            raise EOFError("the render worker did not say it is ready")

    def alive(self) -> bool:
        return self.process.poll() is None

    async def call(
        self, call: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[bool, Any]:
        request = pickle.dumps((call, args, dict(kwargs)))
        await write_request(self.requests.fileno(), request)  # never blocks the loop either
        # EOFError if the worker died; RenderError for an answer that is not one
        return decoded_answer(await read_answer(self.answers.fileno(), self.bound))

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        self.requests.close()
        self.answers.close()

    def reap(self) -> int | None:
        """Wait (a few seconds at most) for the killed worker to end; its exit status."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.process.wait(5.0)
        return None


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def _kill_all(workers: set[_Worker]) -> None:
    """Kill and reap every worker (also when a renderer is dropped without ``aclose``)."""
    for worker in list(workers):
        worker.kill()
    for worker in list(workers):
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.process.wait(1.0)
    workers.clear()


class ProcessRenderer:
    """Renders in a pool of ``workers`` processes; a render past ``timeout`` seconds is
    stopped (its worker killed and replaced) and raises :class:`RenderTooCostly`. A
    worker that cannot be started, or is not ready within ``start_timeout`` seconds,
    raises :class:`~shared.errors.RendererUnavailable` (no fault of the template's: the
    caller retries later); the next render tries to start one again."""

    def __init__(
        self,
        *,
        limits: RenderLimits = DEFAULT_LIMITS,
        timeout: float = 1.0,
        workers: int = 2,
        memory_mb: int | None = 256,
        start_timeout: float = 30.0,
        cpu_seconds: int | None = None,
    ) -> None:
        if timeout <= 0 or workers < 1:
            raise ValueError("a renderer needs a positive timeout and at least one worker")
        self.limits = limits
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.cpu_seconds = cpu_seconds if cpu_seconds is not None else math.ceil(timeout) + 1
        """Processor time a worker may use per render (default: just over ``timeout``): its
        own backstop to the time limit, should this process be unable to kill it."""
        self.size = workers
        self.memory_bytes = memory_mb * 1024 * 1024 if memory_mb is not None else None
        self._workers: set[_Worker] = set()
        self._idle: list[_Worker] = []
        self._starting: list[asyncio.Task[_Worker]] = []
        """Replacements for killed workers, started at once so the next render need not wait."""
        self._slots: asyncio.Semaphore | None = None
        self.rendering = 0
        """Renders in a worker right now."""
        self._reaping: set[asyncio.Task[int | None]] = set()
        self._launching: set[asyncio.Task[_Worker]] = set()
        """Every start under way (replacements, and those of callers who left)."""
        self._finalizer = weakref.finalize(self, _kill_all, self._workers)

    async def parts(
        self, channel: str, content: Mapping[str, Any], context: Mapping[str, Any]
    ) -> dict[str, Any]:
        rendered: dict[str, Any] = await self._run(
            checked_and_rendered, (channel, content, context), {"limits": self.limits}
        )
        return rendered

    async def message(
        self, template: AnyTemplate, context: Mapping[str, Any], *, max_segments: int | None = None
    ) -> RenderedMessage:
        rendered: RenderedMessage = await self._run(
            render_message,
            (template, context),
            {"limits": self.limits, "max_segments": max_segments},
        )
        return rendered

    async def _run(
        self, call: Callable[..., T], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> T:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        async with self._slots:
            worker = await self._worker()
            self.rendering += 1
            try:
                async with asyncio.timeout(self.timeout):
                    ok, value = await worker.call(call, args, kwargs)
            except TimeoutError:
                self._stop(worker)
                raise RenderTooCostly(
                    "template", f"takes longer than {self.timeout:g} s to render", "time"
                ) from None
            except (EOFError, OSError):
                self._stop(worker)
                log.warning("a render worker died during a render; it is replaced")
                if await asyncio.to_thread(worker.reap) == -signal.SIGXCPU:
                    raise RenderTooCostly(
                        "template", f"takes more than {self.cpu_seconds} s of processor", "time"
                    ) from None
                raise RenderTooCostly(
                    "template", "needs more memory than a render may use", "output"
                ) from None
            except BaseException:  # cancelled mid-render: its answer would reach the next call
                self._stop(worker)
                raise
            finally:
                self.rendering -= 1
            self._idle.append(worker)
        if not ok:
            raise value
        result: T = value
        return result

    async def _worker(self) -> _Worker:
        """An idle worker, a replacement being started, or a new one; raise
        :class:`RendererUnavailable` if none can be started."""
        while self._idle:
            worker = self._idle.pop()
            if worker.alive():
                return worker
            self._stop(worker, replace=False)  # died idle (the OOM killer)
        starting = self._starting.pop(0) if self._starting else self._launch()
        try:
            # Shielded: a caller cancelled meanwhile leaves the worker to the pool, not adrift.
            return await asyncio.shield(starting)
        except asyncio.CancelledError:
            starting.add_done_callback(self._adopt)
            raise

    def _adopt(self, starting: asyncio.Task[_Worker]) -> None:
        """A worker started for a caller who left: idle for the next render."""
        if not starting.cancelled() and starting.exception() is None:
            self._idle.append(starting.result())

    async def _start(self) -> _Worker:
        """A new worker, ready; :class:`RendererUnavailable` if it cannot be started or is
        not ready within ``start_timeout`` seconds (it is killed and reaped then)."""
        try:
            # Spawning in a thread: forking a large process takes a moment.
            worker = await asyncio.to_thread(
                _Worker, self.memory_bytes, answer_bound(self.limits), self.cpu_seconds
            )
        except OSError as exc:
            log.error("a render worker could not be started", error=str(exc))
            raise RendererUnavailable(f"no render worker could be started: {exc}") from None
        self._workers.add(worker)
        try:
            async with asyncio.timeout(self.start_timeout):
                await worker.ready()
        except (TimeoutError, EOFError, OSError, RenderError) as exc:
            self._stop(worker, replace=False)
            log.error("a render worker did not start", error=str(exc) or type(exc).__name__)
            raise RendererUnavailable(
                f"a render worker was not ready within {self.start_timeout:g} s"
                if isinstance(exc, TimeoutError)
                else "a render worker exited as it started"
            ) from None
        except BaseException:  # cancelled (aclose): not left running
            self._stop(worker, replace=False)
            raise
        return worker

    def _stop(self, worker: _Worker, *, replace: bool = True) -> None:
        """Kill ``worker``, reap it in the background, and start its replacement."""
        self._workers.discard(worker)
        worker.kill()
        loop = asyncio.get_running_loop()
        reaping = loop.create_task(asyncio.to_thread(worker.reap))
        self._reaping.add(reaping)
        reaping.add_done_callback(self._reaping.discard)
        if replace:
            self._starting.append(self._launch())

    def _launch(self) -> asyncio.Task[_Worker]:
        """A worker's start, in a task of its own that ``aclose`` waits for."""
        task = asyncio.get_running_loop().create_task(self._start())
        self._launching.add(task)
        task.add_done_callback(self._launching.discard)
        return task

    async def aclose(self) -> None:
        """Stop every worker (idle or busy) and wait until they are gone."""
        self._starting = []
        for worker in await asyncio.gather(*self._launching, return_exceptions=True):
            if isinstance(worker, _Worker):
                self._workers.add(worker)
        workers = list(self._workers)
        _kill_all(self._workers)
        self._idle.clear()
        for worker in workers:
            await asyncio.to_thread(worker.reap)
        if self._reaping:
            await asyncio.gather(*self._reaping, return_exceptions=True)
