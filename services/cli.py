"""The ``nudge`` command line: thin commands over the services and the runtime."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Sequence
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
    from shared.adapters.store.api_keys import SqlApiKeys
    from shared.ports.api_keys import ApiKey, Scope

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
    from services.demo import run_demo  # noqa: PLC0415 - keeps `nudge --help` fast

    configure_logging("WARNING")
    summary = asyncio.run(run_demo(customers, days, seed, out))
    table = Table(title=f"nudge demo: {customers} buyers over {days} simulated days")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("events accepted", str(summary.events))
    for segment, count in sorted(summary.segment_entries.items()):
        table.add_row(f"entered segment {segment}", str(count))
    for (campaign, channel, status), count in sorted(summary.messages.items()):
        table.add_row(f"messages {campaign} / {channel} / {status}", str(count))
    console.print(table)
    console.print(f"Sent messages are under {summary.out / 'email'} (open the .eml files).")


@app.command()
def serve(
    *,
    embedded: Annotated[
        bool, typer.Option(help="In-process bus and SQLite under NUDGE_DATA_DIR; no server.")
    ] = False,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Every service in one process: ingest over HTTP, the segmenter, the dispatcher."""
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
    from services.dispatcher.service import DispatcherService  # noqa: PLC0415
    from services.ingest.app import create_app  # noqa: PLC0415
    from services.segmenter.service import SegmenterService  # noqa: PLC0415

    runtime = await bootstrap(settings)
    segmenter, dispatcher = SegmenterService(runtime), DispatcherService(runtime)
    await segmenter.start()
    await dispatcher.start()
    publisher = runtime.bus.publisher()
    server = _Server(
        uvicorn.Config(
            create_app(settings, publisher, runtime.api_keys, clock=runtime.clock),
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
        )
    )
    await _until_signalled(server.stop, segmenter.stop, dispatcher.stop)
    console.print(f"nudge on http://{settings.http_host}:{settings.http_port} (docs at /docs)")
    try:
        await asyncio.gather(server.serve(), segmenter.run(), dispatcher.run())
    finally:
        await publisher.close()
        await runtime.close()


@app.command()
def ingest(
    *,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """The ingest HTTP API alone (settings from NUDGE_* variables)."""
    settings = _settings(http_host=host, http_port=port)
    _refuse_memory_bus(settings)
    _run(lambda: _serve_ingest(settings))


async def _serve_ingest(settings: Settings) -> None:
    import uvicorn  # noqa: PLC0415

    from services.bootstrap import TOPICS, build_bus  # noqa: PLC0415
    from services.ingest.app import create_app  # noqa: PLC0415
    from shared.adapters.store.api_keys import open_api_keys  # noqa: PLC0415
    from shared.adapters.store.migrate import upgrade_async  # noqa: PLC0415
    from shared.errors import BusUnavailable  # noqa: PLC0415

    if settings.db_url.startswith("sqlite"):
        await upgrade_async(settings.db_url)
    api_keys = open_api_keys(settings.db_url)
    bus = build_bus(settings)
    try:
        await bus.ensure_topics([settings.topic(t) for t in TOPICS])
    except BusUnavailable:
        console.print("broker unreachable at start; /v1/events answers 503 until it is back")
    publisher = bus.publisher()
    server = _Server(
        uvicorn.Config(
            create_app(settings, publisher, api_keys),
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
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


if __name__ == "__main__":  # pragma: no cover
    app()
