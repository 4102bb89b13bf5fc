"""What the benchmarks share: where the real services are, timing, and the figures.

Every figure a run measures is kept by its stable name (:func:`record`), with its raw
baseline and the ratio where it has one; ``python -m bench`` prints them all in one
table at the end (:func:`summary`) and ``--json FILE`` writes the same (:func:`write_json`).
The names are :data:`NAMES`' (docs/operations.md "Benchmarks" lists the same), and no
benchmark records any other: a test holds the two together.
"""

from __future__ import annotations

import os
import re
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


# --- the figures' names ------------------------------------------------------------------

NAMES: dict[str, str] = {
    # name (``<x>`` stands for a part the run's flags choose): issue 13's aim, or ""
    "ingest.http": "≥ 0.5 of raw produce",
    "ingest.http_p50_ms": "",
    "ingest.http_p99_ms": "",
    "ingest.card_scan.<body>": "",
    "ingest.peak_rss_mb": "",
    "segmenter.builtin": "≥ 0.2 of the raw upsert, and ≥ ingest.http",
    "segmenter.builtin_vs_rows": "",
    "segmenter.rules20": "≥ 0.2 of the raw upsert",
    "segmenter.rules20_over_builtin": "",
    "segmenter.builtin_cpu_us": "",
    "segmenter.rules20_cpu_us": "",
    "segmenter.peak_rss_mb": "≤ 500 MB, cache at its default size",
    "dispatcher.email": "≥ 0.5 of the raw concurrent loop",
    "dispatcher.sms": "≥ 0.5 of the raw concurrent loop",
    "dispatcher.email_cpu_ms": "",
    "dispatcher.sms_cpu_ms": "",
    "dispatcher.decide_only": "≥ 2,000 decisions/s",
    "dispatcher.peak_rss_mb": "",
    "timers.tick_1m_over_10k": "ratio ≤ 1.5",
    "programmes.activation": "",
    "pipeline.e2e_p50_ms@<rate>": "",
    "pipeline.e2e_p99_ms@<rate>": "≤ 1,000 ms at 1,000 events/s",
    "replay.100k": "≥ 10,000 events/s",
    "replicas.1": "",
    "replicas.2": "",
    "replicas.1_cpu_us": "",
    "replicas.2_cpu_us": "",
    "replicas.2_over_1": "",
    "bus.publish": "",
    "bus.consume": "",
    "scoring.fit_s@<buyers>": "",
    "scoring.mbgnbd_fit_s@<buyers>": "",
    "scoring.score_s@<buyers>": "",
    "scoring.validate_s@<buyers>": "",
}
"""Every name a figure may have, with the aim issue 13 set for it (``""``: none)."""


def documented(name: str) -> bool:
    """Whether ``name`` is one of :data:`NAMES` (``<x>`` matching one part without a dot)."""
    return any(_pattern(known).fullmatch(name) for known in NAMES)


def _pattern(known: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"<[^>]+>", "[^.]+", re.escape(known)))


def aim_of(name: str) -> str:
    return next((aim for known, aim in NAMES.items() if _pattern(known).fullmatch(name)), "")


# --- the figures of this run -------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One figure as written to the JSON file and the summary table."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    n: int | None = None
    """How many events, messages or requests the figure was measured on."""

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "ratio": self.ratio,
            "n": self.n,
            "aim": aim_of(self.name) or None,
        }


FIGURES: dict[str, Recorded] = {}
"""Every figure this run measured, by its stable name."""


def record(
    name: str,
    value: float,
    unit: str,
    *,
    baseline: float | None = None,
    baseline_name: str = "",
    n: int | None = None,
) -> None:
    """Keep one figure (and its raw baseline, when it has one) for the summary and JSON."""
    if not documented(name):
        raise ValueError(f"figure {name!r} is not one of bench.common.NAMES")
    FIGURES[name] = Recorded(name, value, unit, baseline, baseline_name or None, n)


def as_json(figures: dict[str, Recorded]) -> bytes:
    return orjson.dumps(
        {name: figure.to_json() for name, figure in figures.items()},
        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
    )


def write_json(path: Path, figures: dict[str, Recorded] | None = None) -> None:
    path.write_bytes(as_json(FIGURES if figures is None else figures))


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def summary(figures: dict[str, Recorded] | None = None) -> Table:
    """One table of every figure: name, value, unit, baseline, ratio, the aim."""
    table = Table(title="every figure of this run (the same as --json writes)")
    for column in ("figure", "value", "unit", "n", "baseline", "raw baseline", "ratio", "aim"):
        table.add_column(
            column, justify="right" if column in ("value", "n", "baseline") else "left"
        )
    for name, figure in sorted((FIGURES if figures is None else figures).items()):
        table.add_row(
            name,
            _number(figure.value),
            figure.unit,
            f"{figure.n:,}" if figure.n is not None else "",
            _number(figure.baseline),
            figure.baseline_name or "",
            f"{figure.ratio:.2f}" if figure.ratio is not None else "",
            aim_of(name),
        )
    return table


# --- one benchmark's own table -----------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    name: str
    count: int
    seconds: float
    key: str | None = None
    """Its stable name (``ingest.http``, one of :data:`NAMES`); unnamed figures are
    baselines, kept with the figure they are the baseline of."""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else float("inf")


def report(title: str, rows: list[tuple[Figure, Figure | None]]) -> None:
    """Print each figure with its rate and, beside it, the raw baseline's and the ratio;
    record the named ones."""
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
                n=figure.count,
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
