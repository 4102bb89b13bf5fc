"""The ``nudge`` command line: thin commands over the services and the runtime."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.logging import configure_logging
from shared.ports.api_keys import SCOPES
from shared.settings import Settings

if TYPE_CHECKING:
    from services.bootstrap import Runtime
    from services.running.lifecycle import Gate
    from shared.adapters.store.api_keys import SqlApiKeys
    from shared.ports.api_keys import ApiKey, Scope
    from shared.ports.bus import Bus

app = typer.Typer(
    name="nudge",
    help="Trigger communications for retail CRM marketing.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
keys_app = typer.Typer(help="API keys for the HTTP API.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
export_app = typer.Typer(help="What nudge knows, as files.", no_args_is_help=True)
app.add_typer(export_app, name="export")
dlq_app = typer.Typer(help="Dead letters: records a service could not apply.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
from services.cli.segments import app as segments_app  # noqa: E402
from services.cli.users import console_command, users_app  # noqa: E402 - beside its peers

app.add_typer(users_app, name="users")
app.command("console")(console_command)
app.add_typer(segments_app, name="segments")
console = Console()
errors = Console(stderr=True)


def _settings(**overrides: Any) -> Settings:
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up where it installs

        uvloop.run(main())
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(main())


async def _until_signalled(*stoppers: Callable[[], None]) -> asyncio.Event:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        for stop in stoppers:
            stop()
        stopped.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)
    return stopped


def _refuse_memory_bus(settings: Settings) -> None:
    """A lone service on the in-process bus would talk to nobody: say so and stop."""
    if settings.bus == "memory":
        console.print(
            "[red]A single service needs the shared bus: set NUDGE_BUS=kafka "
            "(or run every service in one process with `nudge serve --embedded`).[/red]"
        )
        raise typer.Exit(2)


class _Server:
    """uvicorn's server, with shut-down left to our own signal handlers."""

    def __init__(self, config: Any) -> None:
        import uvicorn  # noqa: PLC0415

        class Quiet(uvicorn.Server):
            def capture_signals(self) -> Any:
                return contextlib.nullcontext()

        self._server = Quiet(config)

    async def serve(self) -> None:
        await self._server.serve()

    def stop(self) -> None:
        self._server.should_exit = True


@app.command()
def demo(
    *,
    customers: Annotated[int, typer.Option(min=1, help="Synthetic buyers.")] = 200,
    days: Annotated[int, typer.Option(min=1, help="Simulated days.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same shop.")] = 1,
    out: Annotated[Path, typer.Option(help="Where sent messages and the demo database go.")] = Path(
        "demo-out"
    ),
) -> None:
    """Run the whole pipeline embedded on synthetic buyers over simulated days."""
    from services.tools.demo import run_demo  # noqa: PLC0415 - keeps `nudge --help` fast

    configure_logging("WARNING")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=days + 1)  # the simulated days end yesterday
    summary = asyncio.run(run_demo(customers, days, seed, out, start=start))
    table = Table(title=f"nudge demo: {customers} buyers over {days} simulated days")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("events accepted", str(summary.events))
    for segment, count in sorted(summary.segment_entries.items()):
        table.add_row(f"entered segment {segment}", str(count))
    for (campaign, channel, status), count in sorted(summary.messages.items()):
        table.add_row(f"messages {campaign} / {channel} / {status}", str(count))
    table.add_row("messages held out (holdout arms)", str(summary.held_out))
    table.add_row("customer equity (CLV of the base)", f"{summary.customer_equity:,.2f}")
    console.print(table)
    console.print(f"Sent messages are under {summary.out / 'email'} (open the .eml files).")
    console.print(
        f"See it in the console: NUDGE_DATA_DIR={summary.out} nudge serve --embedded, then "
        f"log in at http://127.0.0.1:8000/login as {summary.console_user} / "
        f"{summary.console_password}"
    )


@app.command()
def serve(
    *,
    embedded: Annotated[
        bool, typer.Option(help="In-process bus and SQLite under NUDGE_DATA_DIR; no server.")
    ] = False,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Every service in one process: ingest and the console over HTTP, the segmenter, the
    dispatcher."""
    overrides: dict[str, Any] = {"http_host": host, "http_port": port}
    settings = _settings(**overrides)
    if embedded:
        settings = settings.model_copy(
            update={"bus": "memory", "email": "folder", "database_url": None}
        )
    _run(lambda: _serve_all(settings))


async def _serve_all(settings: Settings) -> None:
    import uvicorn  # noqa: PLC0415

    from services.bootstrap import bootstrap  # noqa: PLC0415
    from services.console.app import mount_console  # noqa: PLC0415
    from services.console.wiring import build_console  # noqa: PLC0415
    from services.dispatcher.service import DispatcherService  # noqa: PLC0415
    from services.ingest.app import create_app  # noqa: PLC0415
    from services.running.lifecycle import Gate  # noqa: PLC0415
    from services.segmenter.service import SegmenterService  # noqa: PLC0415
    from shared.adapters.bus.sqlite import ConsumedElsewhere  # noqa: PLC0415

    runtime = await bootstrap(settings)
    segmenter, dispatcher = SegmenterService(runtime), DispatcherService(runtime)
    try:
        await segmenter.start()
        await dispatcher.start()
    except ConsumedElsewhere as exc:
        await runtime.close()
        errors.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    publisher = runtime.bus.publisher()
    http = create_app(
        settings,
        publisher,
        runtime.api_keys,
        clock=runtime.clock,
        event_ids=runtime.event_ids,
        metrics_registries=[
            runtime.provider_metrics.registry,
            dispatcher.dispatcher.metrics.registry,
        ],
    )
    mount_console(
        http, build_console(settings, runtime.store.engine, runtime.clock, runtime.api_keys)
    )
    gate = Gate(http)
    server = _Server(
        uvicorn.Config(
            gate,
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
            proxy_headers=False,  # NUDGE_TRUSTED_PROXIES is the only rule (operations.md)
        )
    )
    stopping = _stop_in_order(gate, server, runtime, segmenter.stop, dispatcher.stop)
    console.print(
        f"nudge on http://{settings.http_host}:{settings.http_port}: the console at /, "
        "the API's docs at /docs (console users: `nudge users create`)"
    )
    try:
        await asyncio.gather(server.serve(), segmenter.run(), dispatcher.run(), stopping)
    finally:
        await publisher.close()
        await runtime.close()


async def _stop_in_order(
    gate: Gate, server: _Server, runtime: Runtime, *stop_consumers: Callable[[], None]
) -> None:
    """Until a stop signal; then refuse new requests, finish those in flight, drain what was
    accepted (on the embedded bus), and stop the server and the consumers
    (:mod:`services.running.lifecycle`)."""
    from services.running.lifecycle import on_stop_signal, settle_and_drain  # noqa: PLC0415
    from shared.adapters.bus.sqlite import SqliteBus  # noqa: PLC0415

    signalled, hurry = asyncio.Event(), asyncio.Event()
    on_stop_signal(
        asyncio.get_running_loop(),
        gate.close,
        lambda: hurry.set() if signalled.is_set() else signalled.set(),
    )
    await signalled.wait()
    settings, bus = runtime.settings, runtime.bus
    console.print("stopping: new requests are refused (503); applying what was accepted")
    outstanding: list[Callable[[], Awaitable[int]]] = []
    if isinstance(bus, SqliteBus):
        events, changes = settings.topic("events"), settings.topic("segment-changes")
        outstanding = [
            lambda: bus.lag(settings.group("segmenter"), [events]),
            lambda: _unpublished_outbox(runtime),
            lambda: bus.lag(settings.group("dispatcher"), [changes]),
            lambda: bus.lag(settings.group("dispatcher-events"), [events]),
        ]
    drained = asyncio.ensure_future(settle_and_drain(gate, outstanding, settings.drain_timeout))
    hurried = asyncio.ensure_future(hurry.wait())
    await asyncio.wait({drained, hurried}, return_when="FIRST_COMPLETED")
    for task in (drained, hurried):
        task.cancel()
    server.stop()
    for stop in stop_consumers:
        stop()


async def _unpublished_outbox(runtime: Runtime) -> int:
    from sqlalchemy import func, select  # noqa: PLC0415

    from shared.adapters.store import schema  # noqa: PLC0415

    async with runtime.store.engine.connect() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(schema.outbox)
            .where(schema.outbox.c.published_at.is_(None))
        )
    return int(count or 0)


@app.command()
def ingest(
    *,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes on one socket (one per core).")
    ] = 1,
) -> None:
    """The ingest HTTP API alone (settings from NUDGE_* variables)."""
    settings = _settings(http_host=host, http_port=port)
    _refuse_memory_bus(settings)
    if workers == 1:
        _run(lambda: _serve_ingest(settings))
        return
    import uvicorn  # noqa: PLC0415

    _run(lambda: _prepare_ingest(settings))
    uvicorn.run(
        "services.ingest.main:app_from_environment",
        factory=True,
        workers=workers,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        proxy_headers=False,
    )


async def _prepare_ingest(settings: Settings) -> None:
    """What the worker processes share, done once: the topics, an embedded database."""
    from services.bootstrap import TOPICS, build_bus  # noqa: PLC0415
    from shared.adapters.store.migrate import upgrade_async  # noqa: PLC0415
    from shared.errors import BusUnavailable  # noqa: PLC0415

    if settings.db_url.startswith("sqlite"):
        await upgrade_async(settings.db_url)
    bus = build_bus(settings)
    try:
        await bus.ensure_topics([settings.topic(t) for t in TOPICS])
    except BusUnavailable:
        console.print("broker unreachable at start; /v1/events answers 503 until it is back")
    finally:
        await bus.close()


async def _serve_ingest(settings: Settings) -> None:
    import uvicorn  # noqa: PLC0415

    from services.bootstrap import TOPICS, build_bus  # noqa: PLC0415
    from services.ingest.app import create_app  # noqa: PLC0415
    from shared.adapters.store.api_keys import open_api_keys  # noqa: PLC0415
    from shared.adapters.store.event_ids import SqlEventIds  # noqa: PLC0415
    from shared.adapters.store.migrate import upgrade_async  # noqa: PLC0415
    from shared.errors import BusUnavailable  # noqa: PLC0415

    if settings.db_url.startswith("sqlite"):
        await upgrade_async(settings.db_url)
    api_keys = open_api_keys(settings.db_url)
    event_ids = SqlEventIds(api_keys.engine)  # one pool to the database, closed with the keys
    bus = build_bus(settings)
    try:
        await bus.ensure_topics([settings.topic(t) for t in TOPICS])
    except BusUnavailable:
        console.print("broker unreachable at start; /v1/events answers 503 until it is back")
    publisher = bus.publisher()
    server = _Server(
        uvicorn.Config(
            create_app(settings, publisher, api_keys, event_ids=event_ids),
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
            proxy_headers=False,
        )
    )
    await _until_signalled(server.stop)
    try:
        await server.serve()
    finally:
        await publisher.close()
        await bus.close()
        await api_keys.close()


@app.command()
def score(
    *,
    db: Annotated[
        str | None, typer.Option(help="Database URL (default: NUDGE_DATABASE_URL, or SQLite).")
    ] = None,
) -> None:
    """Score the whole base now: RFM, BG/NBD and Gamma-Gamma predictions, CLV.

    The segmenter does it on its own every NUDGE_SCORING_INTERVAL_HOURS; the segment
    changes this writes are published by the running segmenter's outbox relay.
    """
    settings = _settings(database_url=db)
    _run(lambda: _score(settings))


async def _score(settings: Settings) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn  # noqa: PLC0415

    from services.bootstrap import bootstrap  # noqa: PLC0415
    from services.segmenter.service import SegmenterService  # noqa: PLC0415

    runtime = await bootstrap(settings, create_topics=False)
    try:
        service = SegmenterService(runtime)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console) as progress:
            tasks: dict[str, Any] = {}

            def advance(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = progress.add_task(f"{stage:>5} buyers", total=total)
                progress.update(tasks[stage], completed=done, total=total)

            run = await service.score(advance)
    finally:
        await runtime.close()
    if run is None:
        console.print("[yellow]another segmenter is scoring the base now; nothing done[/yellow]")
        raise typer.Exit(1)
    table = Table(title="base scored", box=box.SIMPLE)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("buyers", f"{run.buyers:,}")
    table.add_row("with orders (scored)", f"{run.scored:,}")
    table.add_row("scores changed", f"{run.changed:,}")
    table.add_row("customer equity", f"{run.customer_equity:,.2f}")
    table.add_row("models fitted", "yes" if run.models is not None else "no")
    table.add_row("seconds", f"{run.seconds:.1f}")
    console.print(table)
    for note in run.notes:
        console.print(f"note: {escape(note)}")


@app.command()
def segmenter() -> None:
    """The segmenter alone: events in, profiles and segment changes out."""
    from services.segmenter.service import SegmenterService  # noqa: PLC0415

    _run_consumer_service(SegmenterService)


@app.command()
def dispatcher() -> None:
    """The dispatcher alone: segment changes in, messages out."""
    from services.dispatcher.service import DispatcherService  # noqa: PLC0415

    _run_consumer_service(DispatcherService)


def _run_consumer_service(factory: Any) -> None:
    settings = _settings()
    _refuse_memory_bus(settings)

    async def main() -> None:
        from services.bootstrap import bootstrap  # noqa: PLC0415

        runtime = await bootstrap(settings)
        service = factory(runtime)
        if settings.metrics_port is not None:
            from shared.metrics import serve_metrics  # noqa: PLC0415

            serve_metrics(settings.metrics_host, settings.metrics_port, *service.metrics_registries)
        await service.start()
        await _until_signalled(service.stop)
        try:
            await service.run()
        finally:
            await runtime.close()

    _run(main)


@db_app.command("upgrade")
def db_upgrade(
    *,
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL; default from settings.")
    ] = None,
) -> None:
    """Bring the database schema to the newest migration."""
    from shared.adapters.store.migrate import upgrade  # noqa: PLC0415

    settings = _settings(database_url=db)
    upgrade(settings.db_url)
    console.print("database schema is up to date")


def _key_store(db: str | None) -> SqlApiKeys:
    """The API keys in ``db`` (default from settings); SQLite is migrated first."""
    from shared.adapters.store.api_keys import open_api_keys  # noqa: PLC0415
    from shared.adapters.store.migrate import upgrade  # noqa: PLC0415

    url = _settings(database_url=db).db_url
    if url.startswith("sqlite"):
        upgrade(url)
    return open_api_keys(url)


def _known_scopes(values: list[str]) -> list[str]:
    unknown = [v for v in values if v not in SCOPES]
    if unknown:
        raise typer.BadParameter(f"unknown scope {', '.join(unknown)}; one of {', '.join(SCOPES)}")
    return values


DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL; default from NUDGE_DATABASE_URL.")
]


@keys_app.command("create")
def keys_create(
    *,
    name: Annotated[str, typer.Option(help="Who holds the key, e.g. the shop's backend.")],
    scope: Annotated[
        list[str],
        typer.Option(callback=_known_scopes, help=f"A scope, repeatable: {', '.join(SCOPES)}."),
    ],
    store: Annotated[
        list[str] | None,
        typer.Option(help="Bind the key to a store id, repeatable; default: any store."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Create an API key and print it, once: only its hash is kept."""
    keys = _key_store(db)

    async def main() -> tuple[ApiKey, str]:
        try:
            return await keys.create(name, cast("list[Scope]", scope), store or ())
        finally:
            await keys.close()

    try:
        key, plaintext = asyncio.run(main())
    except ValueError as exc:
        errors.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    errors.print(
        f"API key {key.id} ({escape(key.name)}), scopes {', '.join(sorted(key.scopes))}, "
        f"stores {escape(', '.join(sorted(key.stores))) or 'any'}.\n"
        "[yellow]Keep it now: it will not be shown again.[/yellow]"
    )
    typer.echo(plaintext)


@keys_app.command("list")
def keys_list(*, db: DbOption = None) -> None:
    """Every API key, revoked ones too (never a secret)."""
    keys = _key_store(db)

    async def main() -> Sequence[ApiKey]:
        try:
            return await keys.list()
        finally:
            await keys.close()

    table = Table(title="API keys", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("scopes", no_wrap=True)
    table.add_column("stores", overflow="fold")
    table.add_column("created (UTC)", min_width=10)
    table.add_column("revoked (UTC)", min_width=10)
    for key in asyncio.run(main()):
        table.add_row(
            key.id,
            escape(key.name),
            "\n".join(sorted(key.scopes)),
            escape("\n".join(sorted(key.stores))) or "any",
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id (`nudge keys list`).")],
    *,
    db: DbOption = None,
) -> None:
    """Revoke an API key for good: requests with it are refused from now on."""
    keys = _key_store(db)

    async def main() -> bool:
        try:
            return await keys.revoke(key_id)
        finally:
            await keys.close()

    if not asyncio.run(main()):
        errors.print(f"no API key {key_id}", style="red", markup=False)
        raise typer.Exit(1)
    console.print(f"API key {key_id} is revoked", markup=False)


def _moment_option(value: str | None, zone: tzinfo) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            "expected an ISO 8601 date or date and time, e.g. 2026-06-30 or 2026-06-30T12:00+03:00",
            param_hint="--as-of",
        ) from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _zone_option(name: str) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(
            f"unknown time zone {name!r}; e.g. UTC or Europe/Moscow", param_hint="--timezone"
        ) from None


@app.command()
def replay(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="The transactions CSV to replay."
        ),
    ],
    *,
    embedded: Annotated[
        bool,
        typer.Option(help="Run the pipeline in this process, on SQLite (--db or NUDGE_DATA_DIR)."),
    ] = False,
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL for --embedded; default: settings.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="Embedded only: run due timers day by day up to this moment."),
    ] = None,
    timezone: Annotated[
        str, typer.Option(help="Time zone of dates written without an offset.")
    ] = "UTC",
    currency: Annotated[str, typer.Option(help="Currency of the amounts (ISO 4217).")] = "RUB",
    skip_bad: Annotated[
        bool, typer.Option(help="Replay the other orders when some rows are bad.")
    ] = False,
) -> None:
    """Replay a transactions CSV as purchase events (replaying it again changes nothing)."""
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from services.tools import replay as replaying  # noqa: PLC0415

    zone = _zone_option(timezone)
    moment = _moment_option(as_of, zone)
    settings = _settings(database_url=db)
    if embedded:
        settings = settings.model_copy(update={"bus": "memory", "email": "folder"})
    elif as_of is not None:
        errors.print(
            "--as-of needs --embedded: on the production stack the segmenter fires timers "
            "on its own (system) clock, as time passes.",
            style="red",
        )
        raise typer.Exit(2)
    elif db is not None:
        errors.print("--db needs --embedded: production replays through the bus.", style="red")
        raise typer.Exit(2)
    else:
        _refuse_memory_bus(settings)

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors, transient=True) as bar:
        reading = bar.add_task("rows read", total=None)
        try:
            found, summary = replaying.read_file(
                file,
                timezone=zone,
                currency=currency.upper(),
                skip_bad=skip_bad,
                on_row=lambda: bar.advance(reading),
            )
        except (replaying.ReplayRefused, ValueError) as exc:
            bar.stop()
            _print_bad_rows(getattr(exc, "bad_rows", []))
            errors.print(str(exc), style="red", markup=False)
            raise typer.Exit(1) from None
        publishing = bar.add_task("events published", total=len(found.events))

        def published(count: int) -> None:
            bar.advance(publishing, count)

        async def main() -> replaying.ReplaySummary:
            if embedded:
                return await replaying.replay_embedded(
                    settings, found, summary, published, as_of=moment
                )
            return await replaying.replay_production(settings, found, summary, published)

        from shared.adapters.bus.sqlite import ConsumedElsewhere  # noqa: PLC0415

        try:
            done = asyncio.run(main())
        except (replaying.ReplayRefused, ConsumedElsewhere) as exc:
            bar.stop()
            errors.print(str(exc), style="red", markup=False)
            raise typer.Exit(1) from None
    _print_bad_rows(done.bad_rows)
    console.print(_replay_table(done, embedded=embedded))


def _print_bad_rows(bad_rows: Sequence[Any], shown: int = 50) -> None:
    for bad in bad_rows[:shown]:
        errors.print(str(bad), markup=False)
    if len(bad_rows) > shown:
        errors.print(f"... and {len(bad_rows) - shown} more bad rows")


def _replay_table(done: Any, *, embedded: bool) -> Table:
    table = Table(title="nudge replay", box=box.SIMPLE_HEAD)
    table.add_column("what")
    table.add_column("value", justify="right")
    span = (
        f"{done.first_at:%Y-%m-%d %H:%M} .. {done.last_at:%Y-%m-%d %H:%M} UTC"
        if done.first_at and done.last_at
        else "none"
    )
    rows: list[tuple[str, object]] = [
        ("rows read", done.rows),
        ("orders", done.orders),
        ("buyers", done.buyers),
        ("events published", done.published),
        ("rows repeating an earlier row of their order (kept)", done.repeated_rows),
        ("bad rows (skipped)", len(done.bad_rows)),
        ("orders skipped for a bad row", done.skipped_orders),
        ("time span", span),
    ]
    if embedded and done.ran_until is not None:
        rows.append(("timers run up to", f"{done.ran_until:%Y-%m-%d %H:%M} UTC"))
    if done.ignored_columns:
        rows.append(("columns ignored", ", ".join(done.ignored_columns)))
    rows.append(("seconds", f"{done.seconds:.1f}"))
    for what, value in rows:
        table.add_row(what, escape(str(value)))
    return table


@export_app.command("profiles")
def export_profiles(
    *,
    db: DbOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Write to this file instead of standard output.")
    ] = None,
) -> None:
    """Every buyer as one JSON line (identifiers masked), in id order."""
    from services.tools.export import export_profiles as export  # noqa: PLC0415
    from shared.adapters.store.exports import open_profile_export  # noqa: PLC0415
    from shared.adapters.store.migrate import upgrade  # noqa: PLC0415

    url = _settings(database_url=db).db_url
    if url.startswith("sqlite"):
        upgrade(url)
    source = open_profile_export(url)

    async def main(write: Callable[[bytes], object]) -> int:
        try:
            return await export(source, write)
        finally:
            await source.close()

    if out is None:
        count = asyncio.run(main(lambda lines: typer.echo(lines, nl=False)))
    else:
        with out.open("wb") as file:
            count = asyncio.run(main(file.write))
    errors.print(f"{count} buyers exported" + (f" to {out}" if out else ""), markup=False)


TopicOption = Annotated[
    str, typer.Option(help="The topic whose dead letters: events or segment-changes.")
]


def _dead_letter_bus() -> tuple[Settings, Bus]:
    """The bus whose dead letters: Kafka, or the embedded bus in the SQLite database (beside
    a running ``nudge serve --embedded`` too: its consumers see a replay within a moment)."""
    from services import bootstrap  # noqa: PLC0415
    from shared.adapters.store.migrate import upgrade  # noqa: PLC0415

    settings = _settings()
    if settings.bus != "kafka":
        if not settings.db_url.startswith("sqlite"):
            errors.print(
                "The embedded bus lives in the embedded SQLite database, and NUDGE_DATABASE_URL "
                "is not SQLite: set NUDGE_BUS=kafka for the production bus.",
                style="red",
                markup=False,
            )
            raise typer.Exit(2)
        database = bootstrap.sqlite_path(settings.db_url)
        if not database.is_file():
            # Opening it would create an empty one there, holding no dead letter.
            errors.print(
                f"There is no database at {database}: check NUDGE_DATA_DIR (or "
                "NUDGE_DATABASE_URL), it must name the data dir of `nudge serve --embedded`.",
                style="red",
                markup=False,
                soft_wrap=True,  # one line, the path whole
            )
            raise typer.Exit(2)
        upgrade(settings.db_url)
    return settings, bootstrap.build_bus(settings)


def _position(value: str) -> tuple[int, int]:
    partition, separator, offset = value.partition(":")
    if not (separator and partition.isdigit() and offset.isdigit()):
        raise typer.BadParameter(
            f"{value!r}: expected PARTITION:OFFSET, as `nudge dlq list` shows them (e.g. 0:17)"
        )
    return int(partition), int(offset)


@dlq_app.command("list")
def dlq_list(
    *,
    topic: TopicOption = "events",
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 50,
    everything: Annotated[
        bool, typer.Option("--all", help="Replayed dead letters too, not only waiting ones.")
    ] = False,
) -> None:
    """Dead letters waiting for a replay: where they failed and why (keys masked)."""
    from services.tools.dlq import list_dead_letters, masked_key  # noqa: PLC0415

    settings, bus = _dead_letter_bus()

    async def main() -> Any:
        try:
            return await list_dead_letters(bus, settings, topic, limit=limit, everything=everything)
        finally:
            await bus.close()

    page = asyncio.run(main())
    table = Table(
        title=f"dead letters of {settings.topic(topic)}: {page.waiting} waiting, "
        f"{page.total - page.waiting} replayed",
        box=box.SIMPLE_HEAD,
    )
    for column in ("partition:offset", "key", "error", "failed in", "failed at (UTC)"):
        table.add_column(column, overflow="fold")
    if everything:
        table.add_column("replayed at (UTC)")
    for letter in page.shown:
        source = f"{letter.source_topic} {letter.source_partition}:{letter.source_offset}"
        row = [
            f"{letter.record.partition}:{letter.record.offset}",
            escape(masked_key(letter.record.key)),
            escape(letter.error),
            escape(source),
            f"{letter.failed_at:%Y-%m-%d %H:%M:%S}" if letter.failed_at else "",
        ]
        if everything:
            row.append(f"{letter.replayed_at:%Y-%m-%d %H:%M:%S}" if letter.replayed_at else "")
        table.add_row(*row)
    console.print(table)
    hidden = (page.total if everything else page.waiting) - len(page.shown)
    if hidden > 0:
        console.print(f"... and {hidden} more (--limit)")


@dlq_app.command("replay")
def dlq_replay(
    *,
    topic: TopicOption = "events",
    offset: Annotated[
        list[str] | None,
        typer.Option(help="A dead letter to replay, as PARTITION:OFFSET; repeatable."),
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Every dead letter not replayed yet.")
    ] = False,
) -> None:
    """Publish dead letters to the topic they failed in again (each one once)."""
    from services.tools.dlq import replay_dead_letters  # noqa: PLC0415

    if everything == bool(offset):
        errors.print("Name the dead letters with --offset PARTITION:OFFSET, or pass --all.")
        raise typer.Exit(2)
    chosen = None if everything else [_position(value) for value in offset or ()]
    settings, bus = _dead_letter_bus()

    async def main() -> Any:
        try:
            return await replay_dead_letters(bus, settings, topic, chosen=chosen)
        finally:
            await bus.close()

    outcome = asyncio.run(main())
    for letter in outcome.replayed:
        console.print(
            f"replayed {letter.record.partition}:{letter.record.offset} to {letter.source_topic}",
            markup=False,
        )
    for partition, position in outcome.already:
        errors.print(f"{partition}:{position} was replayed before: not sent again")
    for partition, position in outcome.missing:
        errors.print(f"{partition}:{position} holds no dead letter", style="red")
    console.print(f"{len(outcome.replayed)} dead letters replayed")
    if outcome.missing:
        raise typer.Exit(1)
