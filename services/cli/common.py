"""What the ``nudge`` commands share: the settings, the ``--db`` option, how a command
runs its coroutine and waits for a stop signal, and how it refuses what it cannot do.

A user error is one line on standard error saying what to do (:func:`fail`), and the
command exits with its code; the output a command promises goes to standard output.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from shared.logging import configure_logging
from shared.settings import Settings

if TYPE_CHECKING:
    from services.bootstrap import Database

__all__ = [
    "DbOption",
    "Server",
    "State",
    "console",
    "errors",
    "fail",
    "refuse_memory_bus",
    "run",
    "settings",
    "state",
    "until_signalled",
    "with_database",
]

console = Console()
errors = Console(stderr=True)


@dataclass
class State:
    """What the ``nudge`` command's own options set for the run (``--debug``)."""

    debug: bool = False


state = State()

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL; default from NUDGE_DATABASE_URL, else SQLite under NUDGE_DATA_DIR.",
    ),
]
"""The one ``--db`` option: every command that opens the database takes it this way."""


_OPTIONS = {"database_url": "--db"}
"""The settings a command line option gives too, by the option's name."""


def settings(**overrides: Any) -> Settings:
    """The ``NUDGE_*`` settings, options given on the command line winning; logging set.

    A setting nudge cannot take is one line naming the option or variable and what to
    write, and exit code 2, as for any other bad option."""
    try:
        found = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        where = " / ".join(filter(None, (_OPTIONS.get(name), f"NUDGE_{name.upper()}")))
        message = str(first["msg"]).removeprefix("Value error, ")
        fail(f"{where}: {message}", code=2)
    configure_logging(found.log_level, found.log_format)
    return found


T = TypeVar("T")


def with_database(db: str | None, use: Callable[[Database], Awaitable[T]]) -> T:
    """``use`` the database ``db`` (default from settings; SQLite is migrated first), and
    close it after."""
    from services.bootstrap import open_database, prepare_database_now  # noqa: PLC0415

    url = settings(database_url=db).db_url
    prepare_database_now(url)
    database = open_database(url)

    async def main() -> T:
        try:
            return await use(database)
        finally:
            await database.close()

    return asyncio.run(main())


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` on one line of standard error, in red, and exit with ``code``."""
    errors.print(message, style="red", markup=False, soft_wrap=True)
    raise typer.Exit(code) from None


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up where it installs

        uvloop.run(main())
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(main())


async def until_signalled(*stoppers: Callable[[], None]) -> asyncio.Event:
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


def refuse_memory_bus(found: Settings) -> None:
    """A lone service on the in-process bus would talk to nobody: say so and stop."""
    if found.bus == "memory":
        console.print(
            "[red]A single service needs the shared bus: set NUDGE_BUS=kafka "
            "(or run every service in one process with `nudge serve --embedded`).[/red]"
        )
        raise typer.Exit(2)


class Server:
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
