"""``nudge serve``, ``nudge ingest``, ``nudge segmenter``, ``nudge dispatcher`` and
``nudge console``: the commands that run the services, until a stop signal."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from services.cli.common import (
    Server,
    console,
    fail,
    refuse_memory_bus,
    run,
    settings,
    until_signalled,
)
from shared.settings import Settings

if TYPE_CHECKING:
    from services.bootstrap import Runtime
    from services.running.lifecycle import Gate
    from shared.ports.bus import Bus

__all__ = ["available_cores", "console_command", "dispatcher", "ingest", "segmenter", "serve"]

HostOption = Annotated[str | None, typer.Option(help="Address to listen on.")]
PortOption = Annotated[int | None, typer.Option(help="Port to listen on.")]


def _listening(found: Settings) -> dict[str, Any]:
    """Where a server listens, and how loudly. Each server is built with
    ``proxy_headers=False``: NUDGE_TRUSTED_PROXIES is the only rule (operations.md)."""
    return {"host": found.http_host, "port": found.http_port, "log_level": "warning"}


def serve(
    *,
    embedded: Annotated[
        bool, typer.Option(help="In-process bus and SQLite under NUDGE_DATA_DIR; no server.")
    ] = False,
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """Every service in one process: ingest and the console over HTTP, the segmenter, the
    dispatcher."""
    found = settings(http_host=host, http_port=port)
    if embedded:
        found = found.model_copy(update={"bus": "memory", "email": "folder", "database_url": None})
    run(lambda: _serve_all(found))


async def _serve_all(found: Settings) -> None:
    import uvicorn  # noqa: PLC0415

    from services.bootstrap import ConsumedElsewhere, bootstrap  # noqa: PLC0415
    from services.console.app import mount_console  # noqa: PLC0415
    from services.console.wiring import build_console  # noqa: PLC0415
    from services.dispatcher.service import DispatcherService  # noqa: PLC0415
    from services.ingest.app import create_app  # noqa: PLC0415
    from services.running.lifecycle import Gate  # noqa: PLC0415
    from services.segmenter.service import SegmenterService  # noqa: PLC0415

    runtime = await bootstrap(found)
    segmenter, dispatcher = SegmenterService(runtime), DispatcherService(runtime)
    try:
        await segmenter.start()
        await dispatcher.start()
    except ConsumedElsewhere as exc:
        await runtime.close()
        fail(str(exc), 2)
    publisher = runtime.bus.publisher()
    http = create_app(
        found,
        publisher,
        runtime.api_keys,
        clock=runtime.clock,
        event_ids=runtime.event_ids,
        metrics_registries=[
            runtime.provider_registry,
            dispatcher.metrics.registry,
            *segmenter.metrics_registries,
        ],
    )
    mount_console(http, build_console(found, runtime.database))
    gate = Gate(http)
    server = Server(uvicorn.Config(gate, proxy_headers=False, **_listening(found)))
    stopping = _stop_in_order(gate, server, runtime, segmenter.stop, dispatcher.stop)
    console.print(
        f"nudge on http://{found.http_host}:{found.http_port}: the console at /, "
        "the API's docs at /docs (console users: `nudge users create`)"
    )
    try:
        await asyncio.gather(server.serve(), segmenter.run(), dispatcher.run(), stopping)
    finally:
        await publisher.close()
        await runtime.close()


async def _stop_in_order(
    gate: Gate, server: Server, runtime: Runtime, *stop_consumers: Callable[[], None]
) -> None:
    """Until a stop signal; then refuse new requests, finish those in flight, apply the
    runtime's backlog (on the embedded bus), and stop the server and the consumers
    (:mod:`services.running.lifecycle`)."""
    from services.running.lifecycle import on_stop_signal, settle_and_drain  # noqa: PLC0415

    signalled, hurry = asyncio.Event(), asyncio.Event()
    on_stop_signal(
        asyncio.get_running_loop(),
        gate.close,
        lambda: hurry.set() if signalled.is_set() else signalled.set(),
    )
    await signalled.wait()
    console.print("stopping: new requests are refused (503); applying what was accepted")
    backlog = runtime.backlog
    outstanding = [backlog.outstanding] if backlog is not None else []
    drained = asyncio.ensure_future(
        settle_and_drain(gate, outstanding, runtime.settings.drain_timeout)
    )
    hurried = asyncio.ensure_future(hurry.wait())
    await asyncio.wait({drained, hurried}, return_when="FIRST_COMPLETED")
    for task in (drained, hurried):
        task.cancel()
    server.stop()
    for stop in stop_consumers:
        stop()


def ingest(
    *,
    host: HostOption = None,
    port: PortOption = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes on one socket; by default one per core this process "
            "may use (its CPU affinity, within its cgroup's CPU quota).",
        ),
    ] = None,
) -> None:
    """The ingest HTTP API alone (settings from NUDGE_* variables)."""
    found = settings(http_host=host, http_port=port)
    refuse_memory_bus(found)
    workers = workers or available_cores()
    if workers == 1:
        run(lambda: _serve_ingest(found))
        return
    import uvicorn  # noqa: PLC0415

    run(lambda: _prepare_ingest(found))
    uvicorn.run(
        "services.ingest.main:app_from_environment",
        factory=True,
        workers=workers,
        proxy_headers=False,
        **_listening(found),
    )


def available_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may keep busy: those it may run on (its CPU affinity), at
    most its cgroup's CPU quota rounded up (a container's CPU limit), at least one."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # pragma: no cover - platforms without CPU affinity
        cores = os.cpu_count() or 1
    quota = _cpu_quota(cgroup)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def _cpu_quota(cgroup: Path) -> float | None:
    """The CPUs' worth of time ``cgroup`` allows per period (cgroup v2 ``cpu.max``, or v1
    ``cpu/cpu.cfs_quota_us`` over ``cpu.cfs_period_us``); ``None`` without a quota."""
    try:
        if (cgroup / "cpu.max").exists():
            quota, period = (cgroup / "cpu.max").read_text().split()
        else:
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        if quota in ("max", "-1"):
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):  # no cgroup file to read here, or not as expected
        return None


async def _prepare_ingest(found: Settings) -> None:
    """What the worker processes share, done once: an embedded database migrated, the
    topics made."""
    bus = await _ready_bus(found)
    await bus.close()


async def _ready_bus(found: Settings) -> Bus:
    """The bus, its topics made, after an embedded database is migrated; a broker out of
    reach at start is said, not fatal."""
    from services.bootstrap import TOPICS, build_bus, prepare_database  # noqa: PLC0415
    from shared.errors import BusUnavailable  # noqa: PLC0415

    await prepare_database(found.db_url)
    bus = build_bus(found)
    try:
        await bus.ensure_topics([found.topic(t) for t in TOPICS])
    except BusUnavailable:
        console.print("broker unreachable at start; /v1/events answers 503 until it is back")
    except BaseException:
        await bus.close()
        raise
    return bus


async def _serve_ingest(found: Settings) -> None:
    import uvicorn  # noqa: PLC0415

    from services.bootstrap import open_database  # noqa: PLC0415
    from services.ingest.app import create_app  # noqa: PLC0415

    bus = await _ready_bus(found)
    database = open_database(found.db_url)  # one pool for the keys and the event ids
    publisher = bus.publisher()
    app = create_app(found, publisher, database.api_keys, event_ids=database.event_ids)
    server = Server(uvicorn.Config(app, proxy_headers=False, **_listening(found)))
    await until_signalled(server.stop)
    try:
        await server.serve()
    finally:
        await publisher.close()
        await bus.close()
        await database.close()


def segmenter() -> None:
    """The segmenter alone: events in, profiles and segment changes out."""
    from services.segmenter.service import SegmenterService  # noqa: PLC0415

    _run_consumer_service(SegmenterService)


def dispatcher() -> None:
    """The dispatcher alone: segment changes in, messages out."""
    from services.dispatcher.service import DispatcherService  # noqa: PLC0415

    _run_consumer_service(DispatcherService)


def _run_consumer_service(factory: Any) -> None:
    found = settings()
    refuse_memory_bus(found)

    async def main() -> None:
        from services.bootstrap import bootstrap  # noqa: PLC0415

        runtime = await bootstrap(found)
        service = factory(runtime)
        if found.metrics_port is not None:
            from shared.metrics import serve_metrics  # noqa: PLC0415

            serve_metrics(found.metrics_host, found.metrics_port, *service.metrics_registries)
        await service.start()
        await until_signalled(service.stop)
        try:
            await service.run()
        finally:
            await runtime.close()

    run(main)


def console_command(*, host: HostOption = None, port: PortOption = None) -> None:
    """The marketer's console alone (settings from NUDGE_* variables)."""
    found = settings(http_host=host, http_port=port)
    asyncio.run(_serve_console(found))


async def _serve_console(found: Settings) -> None:
    """Serve the console alone until interrupted; SQLite is migrated first."""
    import uvicorn  # noqa: PLC0415

    from services.bootstrap import open_database, prepare_database  # noqa: PLC0415
    from services.console.wiring import build_console  # noqa: PLC0415

    await prepare_database(found.db_url)
    database = open_database(found.db_url)
    server = uvicorn.Server(
        uvicorn.Config(build_console(found, database), proxy_headers=False, **_listening(found))
    )
    console.print(f"nudge console on http://{found.http_host}:{found.http_port}")
    try:
        await server.serve()
    finally:
        await database.close()
