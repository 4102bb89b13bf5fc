"""``nudge ingest`` without ``--workers`` runs one worker process per core it may use:
its CPU affinity, within its cgroup's CPU quota (a container's CPU limit)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from services.cli import serving
from services.cli.serving import available_cores

AFFINITY = len(os.sched_getaffinity(0))


def test_without_a_cgroup_quota_every_core_of_the_affinity_counts(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cores(tmp_path) == AFFINITY


def test_a_cgroup_v2_quota_bounds_the_cores_rounded_up(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU: still one worker
    assert available_cores(tmp_path) == 1


def test_a_cgroup_v1_quota_bounds_the_cores(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cores(tmp_path) == 1


def test_a_cgroup_v1_without_quota_leaves_the_affinity(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cores(tmp_path) == AFFINITY


def test_no_cgroup_files_leave_the_affinity(tmp_path: Path) -> None:
    assert available_cores(tmp_path / "absent") == AFFINITY


@pytest.mark.parametrize(("cores", "given", "processes"), [(3, None, 3), (3, 2, 2), (1, None, 1)])
def test_ingest_runs_one_worker_per_core_unless_told(
    monkeypatch: pytest.MonkeyPatch, cores: int, given: int | None, processes: int
) -> None:
    started: dict[str, Any] = {}
    monkeypatch.setenv("NUDGE_BUS", "kafka")
    monkeypatch.setattr(serving, "available_cores", lambda: cores)
    monkeypatch.setattr(serving, "run", lambda main: started.setdefault("in_process", main))
    monkeypatch.setattr(uvicorn, "run", lambda *_, **options: started.update(options))
    serving.ingest(workers=given)
    assert started.get("workers", 1) == processes
    assert ("workers" in started) == (processes > 1)
