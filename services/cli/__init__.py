"""The ``nudge`` command line: one module per command group, each command parsing its
options and calling one function of a service or a tool.

- :mod:`services.cli.serving`: ``serve``, ``ingest``, ``segmenter``, ``dispatcher``,
  ``console``, the long-running processes;
- :mod:`services.cli.demo`, :mod:`services.cli.score`, :mod:`services.cli.replay`:
  ``demo``, ``score`` and ``replay``;
- :mod:`services.cli.db`, :mod:`services.cli.keys`, :mod:`services.cli.users`,
  :mod:`services.cli.segments`, :mod:`services.cli.export`, :mod:`services.cli.dlq`,
  :mod:`services.cli.models`: the command groups of the same names.

What they share (the settings, ``--db``, one-line errors) is in :mod:`services.cli.common`.
Each module imports what it wires inside its commands, so that ``nudge --help`` stays quick.

:func:`main` is the ``nudge`` script: every error a user can make (a bad option, a file
that is not there, a database that cannot be reached, a setting nudge cannot take) is one
line on standard error saying what to do, exit code 2; anything else is one line too,
exit code 1. The traceback only with ``nudge --debug ...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, NoReturn

import typer

from services.cli import common, db, dlq, export, keys, models, segments, serving, users
from services.cli.demo import demo
from services.cli.replay import replay
from services.cli.score import score

__all__ = ["app", "main"]

app = typer.Typer(
    name="nudge",
    help="Trigger communications for retail CRM marketing.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root(
    *,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the whole traceback of an error.")
    ] = False,
) -> None:
    """Trigger communications for retail CRM marketing."""
    common.state.debug = debug


app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(export.app, name="export")
app.add_typer(dlq.app, name="dlq")
app.add_typer(models.app, name="models")
app.add_typer(users.app, name="users")
app.command("console")(serving.console_command)
app.add_typer(segments.app, name="segments")
app.command()(demo)
app.command()(serving.serve)
app.command()(serving.ingest)
app.command()(score)
app.command()(serving.segmenter)
app.command()(serving.dispatcher)
app.command()(replay)


def _one_line(message: str, code: int) -> NoReturn:
    common.errors.print(" ".join(message.split()), style="red", markup=False, soft_wrap=True)
    raise SystemExit(code)


def _refusal(exc: typer.TyperException) -> tuple[str, int]:
    """One of typer's own refusals (a bad option or argument, a missing one, an unknown
    command) as one line, with where its help is, and its exit code."""
    message = str(getattr(exc, "format_message", exc.__str__)())
    code = int(getattr(exc, "exit_code", 2))
    ctx = getattr(exc, "ctx", None)
    if code == 2:
        path = ctx.command_path if ctx is not None else "nudge"
        message = f"{message} (see '{path} --help')"
    return message, code


def _file(exc: OSError) -> str:
    what = exc.strerror.lower() if exc.strerror else str(exc)
    return f"{exc.filename}: {what}: check the path, and that its folder exists and may be written"


def main(args: Sequence[str] | None = None) -> NoReturn:
    """Run ``nudge`` with ``args`` (default: the command line's) and exit with its code."""
    from shared.errors import StoreUnavailable  # noqa: PLC0415

    command = typer.main.get_command(app)
    common.state.debug = False
    try:
        code = command.main(
            list(args) if args is not None else None, "nudge", standalone_mode=False
        )
    except typer.Abort:
        _one_line("stopped", 1)
    except typer.TyperException as exc:
        _one_line(*_refusal(exc))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:
        if common.state.debug:
            raise
        if isinstance(exc, StoreUnavailable):
            _one_line(f"{exc}; check --db or NUDGE_DATABASE_URL, and that the server is up", 2)
        if isinstance(exc, OSError) and exc.filename is not None:
            _one_line(_file(exc), 2)
        said = str(exc).strip().splitlines()
        what = f"{type(exc).__name__}: {said[0]}" if said else type(exc).__name__
        _one_line(f"{what} (run 'nudge --debug ...' to see where)", 1)
    raise SystemExit(code if isinstance(code, int) else 0)
