"""``nudge segments recompute KEY``: the whole base evaluated against one segment's
current rule again, batch by batch.

It writes its ``entered`` / ``exited`` changes to the outbox like the running
segmenter does, and the running segmenter's relay publishes them; it needs the
database only, no broker.
"""

from __future__ import annotations

from collections.abc import Callable

from services.bootstrap import open_database, prepare_database
from services.segmenter.handlers import Segmenter
from shared.domain.segments import BUILTIN_SEGMENTS
from shared.ports.definitions import Recompute
from shared.settings import Settings

__all__ = ["RecomputeRestarted", "recompute_segment"]


class RecomputeRestarted(RuntimeError):
    """The segment's rule changed while recomputing: the base is being evaluated again
    for the new rule (by the running segmenter); this run stopped."""


Progress = Callable[[int, int], None]
"""Told how many buyers were evaluated so far, of how many."""


async def recompute_segment(
    settings: Settings, key: str, *, batch: int = 1000, progress: Progress | None = None
) -> int:
    """Evaluate every buyer against segment ``key`` from the start; return how many were.

    Raises :class:`KeyError` for a segment that is neither built in, stored nor archived,
    :class:`RecomputeRestarted` when the recompute is started again elsewhere meanwhile.
    """
    await prepare_database(settings.db_url)
    database = open_database(settings.db_url)
    segmenter = Segmenter(
        store=database.store,
        clock=database.clock,
        segments=BUILTIN_SEGMENTS,
        changes_topic=settings.topic("segment-changes"),
        definitions=database.definitions,
        recompute_size=batch,
    )
    try:
        total = await database.definitions.count_profiles()
        state: Recompute | None = await segmenter.restart_recompute(key)
        if progress is not None:
            progress(0, total)
        while state is not None and state.finished_at is None:
            state = await segmenter.recompute_batch(key, state)
            if progress is not None and state is not None:
                progress(state.evaluated, max(total, state.evaluated))
        if state is None:
            raise RecomputeRestarted(f"{key}: the rule changed while recomputing; run it again")
        return state.evaluated
    finally:
        await database.close()
