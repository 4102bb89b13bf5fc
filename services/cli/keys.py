"""``nudge keys``: API keys for the HTTP API (only a key's hash is kept)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from services.cli.common import DbOption, console, errors, fail, with_database
from shared.ports.api_keys import SCOPES

if TYPE_CHECKING:
    from shared.ports.api_keys import Scope

__all__ = ["app"]

app = typer.Typer(help="API keys for the HTTP API.", no_args_is_help=True)


def _known_scopes(values: list[str]) -> list[str]:
    unknown = [v for v in values if v not in SCOPES]
    if unknown:
        raise typer.BadParameter(f"unknown scope {', '.join(unknown)}; one of {', '.join(SCOPES)}")
    return values


@app.command("create")
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
    try:
        key, plaintext = with_database(
            db,
            lambda database: database.api_keys.create(
                name, cast("list[Scope]", scope), store or ()
            ),
        )
    except ValueError as exc:
        fail(str(exc), 2)
    errors.print(
        f"API key {key.id} ({escape(key.name)}), scopes {', '.join(sorted(key.scopes))}, "
        f"stores {escape(', '.join(sorted(key.stores))) or 'any'}.\n"
        "[yellow]Keep it now: it will not be shown again.[/yellow]"
    )
    typer.echo(plaintext)


@app.command("list")
def keys_list(*, db: DbOption = None) -> None:
    """Every API key, revoked ones too (never a secret)."""
    table = Table(title="API keys", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("scopes", no_wrap=True)
    table.add_column("stores", overflow="fold")
    table.add_column("created (UTC)", min_width=10)
    table.add_column("revoked (UTC)", min_width=10)
    for key in with_database(db, lambda database: database.api_keys.list()):
        table.add_row(
            key.id,
            escape(key.name),
            "\n".join(sorted(key.scopes)),
            escape("\n".join(sorted(key.stores))) or "any",
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    console.print(table)


@app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id (`nudge keys list`).")],
    *,
    db: DbOption = None,
) -> None:
    """Revoke an API key for good: requests with it are refused from now on."""
    if not with_database(db, lambda database: database.api_keys.revoke(key_id)):
        fail(f"no API key {key_id}: `nudge keys list` shows their ids", 2)
    console.print(f"API key {key_id} is revoked", markup=False)
