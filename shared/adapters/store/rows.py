"""Rows into the ports' dataclasses: each field read from the column of its name."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["from_row"]

T = TypeVar("T", bound="DataclassInstance")


def from_row(kind: type[T], row: Any, **given: Any) -> T:
    """A ``kind`` of the row's columns named as its fields, but those ``given`` (the
    ones a column holds in another shape: a flag as an integer, a trail as JSON)."""
    read = {f.name: getattr(row, f.name) for f in fields(kind) if f.name not in given}
    return kind(**read, **given)
