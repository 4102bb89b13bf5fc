"""``python -m bench [NAME ...]`` (``make bench``): the benchmarks, printing figures and ratios.

With no name, every benchmark runs, in the order below; ``python -m bench ingest`` runs
one. Each needs the real Kafka and PostgreSQL (``make bench`` starts them), but ``bus``
and ``scoring``.
At the end, one table of every figure the run measured (name, value, unit, baseline,
ratio, issue 13's aim); ``--json FILE`` writes the same figures.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench import (
    bus,
    dispatcher,
    ingest,
    pipeline,
    programmes,
    replay,
    replicas,
    scoring,
    segmenter,
    timers,
)
from bench.common import console, summary, write_json

BENCHMARKS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, None]]] = {
    "pipeline": lambda args: pipeline.main(args.rates, args.seconds),
    "ingest": lambda args: ingest.main(args.events, args.connections, args.workers),
    "timers": lambda args: timers.main(args.timers_base),
    "segmenter": lambda args: segmenter.main(args.events),
    "replicas": lambda args: replicas.main(args.events),
    "replay": lambda args: replay.main(args.replay_events),
    "dispatcher": lambda args: dispatcher.main(args.buyers),
    "bus": lambda args: bus.main(args.events),
    "scoring": lambda args: scoring.main(args.scoring_buyers),
    "programmes": lambda args: programmes.main(args.programme_buyers),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)",
    )
    sizes: list[tuple[str, type, object, str]] = [
        ("--events", int, 20_000, "events to push (ingest, segmenter, replicas, bus)"),
        ("--replay-events", int, 100_000, "replay: purchases in the file (replay.100k at this)"),
        ("--buyers", int, dispatcher.BUYERS, "dispatcher: buyers, one message each per run"),
        ("--seconds", float, pipeline.SECONDS, "pipeline: seconds each rate is offered for"),
        ("--timers-base", int, timers.BASES[1], "timers: buyers in the large base"),
        ("--programme-buyers", int, programmes.BUYERS, "programmes: members entered at activation"),
        ("--connections", int, 8, "ingest: concurrent HTTP connections of the load generator"),
        ("--workers", int, 1, "ingest: worker processes of `nudge ingest` (one per core)"),
    ]
    for flag, kind, default, what in sizes:
        parser.add_argument(flag, type=kind, default=default, help=f"{what} (default {default})")
    parser.add_argument(
        "--rates",
        type=int,
        nargs="+",
        default=list(pipeline.RATES),
        help="pipeline: offered rates, purchases per second",
    )
    parser.add_argument(
        "--scoring-buyers",
        type=int,
        nargs="+",
        default=list(scoring.SIZES),
        help="scoring: base sizes fitted, scored and validated",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="also write every figure, its raw baseline and the ratio to FILE",
    )
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; one of {', '.join(BENCHMARKS)}")
    for name in args.names or list(BENCHMARKS):
        asyncio.run(BENCHMARKS[name](args))
    console.print(summary())
    if args.json:
        write_json(args.json)
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
