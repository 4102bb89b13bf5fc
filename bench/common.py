"""What the benchmarks share: where the real services are, timing, and printing."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

KAFKA = os.environ.get("NUDGE_TEST_KAFKA", "127.0.0.1:9092")
DATABASE_URL = os.environ.get(
    "NUDGE_TEST_DATABASE_URL", "postgresql+asyncpg://nudge:nudge@127.0.0.1:5432/nudge_test"
)
console = Console(width=150)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@dataclass
class Timing:
    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timing]:
    timing = Timing()
    started = time.perf_counter()
    try:
        yield timing
    finally:
        timing.seconds = time.perf_counter() - started


FIGURES: dict[str, dict[str, Any]] = {}
"""Every figure this run measured, by its stable name, for ``python -m bench --json FILE``."""


def record(
    key: str, value: float, unit: str, *, baseline: float | None = None, baseline_name: str = ""
) -> None:
    """Keep one figure (and its raw baseline, when it has one) for the JSON file."""
    FIGURES[key] = {
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_name": baseline_name or None,
        "ratio": value / baseline if baseline else None,
    }


def write_json(path: Path) -> None:
    path.write_bytes(orjson.dumps(FIGURES, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


@dataclass(frozen=True)
class Figure:
    name: str
    count: int
    seconds: float
    key: str | None = None
    """Its stable name in the JSON file (``ingest.http``); unnamed figures are only printed."""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else float("inf")


def report(title: str, rows: list[tuple[Figure, Figure | None]]) -> None:
    """Print each figure with its rate and, beside it, the raw baseline's and the ratio."""
    table = Table(title=title)
    for column in ("measure", "n", "seconds", "per second", "raw baseline", "raw /s", "ratio"):
        table.add_column(
            column, justify="left" if column in ("measure", "raw baseline") else "right"
        )
    for figure, baseline in rows:
        if figure.key:
            record(
                figure.key,
                figure.rate,
                "per second",
                baseline=baseline.rate if baseline else None,
                baseline_name=baseline.name if baseline else "",
            )
        table.add_row(
            figure.name,
            f"{figure.count}",
            f"{figure.seconds:.2f}",
            f"{figure.rate:,.0f}",
            baseline.name if baseline else "",
            f"{baseline.rate:,.0f}" if baseline else "",
            f"{figure.rate / baseline.rate:.2f}" if baseline else "",
        )
    console.print(table)
