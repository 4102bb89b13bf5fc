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
"""

from __future__ import annotations

import typer

from services.cli import db, dlq, export, keys, models, segments, serving, users
from services.cli.demo import demo
from services.cli.replay import replay
from services.cli.score import score

__all__ = ["app"]

app = typer.Typer(
    name="nudge",
    help="Trigger communications for retail CRM marketing.",
    no_args_is_help=True,
    add_completion=False,
)
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
