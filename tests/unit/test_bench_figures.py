"""The bench is the one source of figures: every figure under a documented name, with its
baseline and ratio, in the JSON file and in the summary table alike."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from bench import common
from bench.common import NAMES, Recorded, as_json, documented, record, summary

ROOT = Path(__file__).resolve().parents[2]
ISSUE_NAMES = (
    "ingest.http",
    "segmenter.builtin",
    "segmenter.rules20",
    "dispatcher.email",
    "dispatcher.sms",
    "dispatcher.decide_only",
    "timers.tick_1m_over_10k",
    "pipeline.e2e_p50_ms@1000",
    "pipeline.e2e_p99_ms@1000",
    "replay.100k",
    "replicas.2_over_1",
    "segmenter.peak_rss_mb",
    "dispatcher.peak_rss_mb",
    "ingest.peak_rss_mb",
)
"""The names issue 13 asks for (the pipeline's with the rate it names)."""
SHAPE = {"value", "unit", "baseline", "baseline_name", "ratio", "n", "aim"}


@pytest.fixture
def figures() -> Iterator[dict[str, Recorded]]:
    kept = dict(common.FIGURES)
    common.FIGURES.clear()
    yield common.FIGURES
    common.FIGURES.clear()
    common.FIGURES.update(kept)


def test_every_name_the_issue_asks_for_is_documented() -> None:
    assert [name for name in ISSUE_NAMES if not documented(name)] == []


def test_a_figure_under_another_name_is_refused(figures: dict[str, Recorded]) -> None:
    with pytest.raises(ValueError, match="not one of"):
        record("segmenter.fast", 1.0, "per second")
    with pytest.raises(ValueError, match="not one of"):
        record("pipeline.e2e_p99_ms@1000.extra", 1.0, "ms")
    assert figures == {}


def test_the_json_file_holds_each_figure_with_its_baseline_and_ratio(
    figures: dict[str, Recorded], tmp_path: Path
) -> None:
    record("segmenter.builtin", 2_000.0, "per second", baseline=10_000.0,
           baseline_name="raw asyncpg upsert", n=19_500)  # fmt: skip
    record("pipeline.e2e_p99_ms@200", 180.0, "ms", n=2_000)
    common.write_json(tmp_path / "figures.json")

    written = orjson.loads((tmp_path / "figures.json").read_bytes())

    assert written == {
        "segmenter.builtin": {
            "value": 2_000.0,
            "unit": "per second",
            "baseline": 10_000.0,
            "baseline_name": "raw asyncpg upsert",
            "ratio": 0.2,
            "n": 19_500,
            "aim": NAMES["segmenter.builtin"],
        },
        "pipeline.e2e_p99_ms@200": {
            "value": 180.0,
            "unit": "ms",
            "baseline": None,
            "baseline_name": None,
            "ratio": None,
            "n": 2_000,
            "aim": NAMES["pipeline.e2e_p99_ms@<rate>"],
        },
    }


def test_the_summary_table_shows_what_the_json_file_holds(figures: dict[str, Recorded]) -> None:
    record("dispatcher.email", 50.0, "per second", baseline=500.0, baseline_name="raw loop")
    record("replicas.2_over_1", 1_500.0, "per second", baseline=1_000.0)

    table = summary()

    columns = {column.header: list(column.cells) for column in table.columns}
    assert columns["figure"] == ["dispatcher.email", "replicas.2_over_1"]
    assert columns["ratio"] == ["0.10", "1.50"]
    assert columns["raw baseline"] == ["raw loop", ""]
    assert set(orjson.loads(as_json(figures))) == set(columns["figure"])


def test_the_operations_guide_lists_every_figure_name_with_its_aim() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    section = guide.split("## Benchmarks", 1)[1].split("\n## ", 1)[0]
    table = section.split("| figure | what it measures | raw baseline | aim |", 1)[1]
    rows = table.strip().split("\n\n", 1)[0].splitlines()[1:]  # after the |---| line
    listed = {}
    for row in rows:
        name = re.match(r"\| `([^`]+)` \|", row)
        assert name is not None, row
        listed[name.group(1)] = row.rsplit("|", 2)[1].strip()
    assert listed == NAMES


def test_a_small_run_writes_only_documented_names(tmp_path: Path) -> None:
    """``python -m bench bus`` (SQLite only: no Kafka, no PostgreSQL) end to end."""
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "bus", "--events", "300", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    written = orjson.loads(out.read_bytes())
    assert set(written) == {"bus.publish", "bus.consume"}
    assert all(set(figure) == SHAPE for figure in written.values())
    assert all(
        figure["ratio"] == figure["value"] / figure["baseline"] for figure in written.values()
    )
    assert "every figure of this run" in done.stdout
