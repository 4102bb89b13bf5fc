"""``python -m bench [NAME ...]`` (``make bench``): the benchmarks, printing figures and ratios.

With no name, every benchmark runs (pipeline, then ingest); ``python -m bench ingest``
runs one. Each needs the real Kafka and PostgreSQL (``make bench`` starts them).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench import bus, dispatcher, ingest, pipeline, segmenter, timers
from bench.common import write_json

BENCHMARKS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, None]]] = {
    "pipeline": lambda args: pipeline.main(args.events),
    "ingest": lambda args: ingest.main(args.events, args.connections, args.workers),
    "timers": lambda _args: timers.main(),
    "segmenter": lambda args: segmenter.main(args.events),
    "dispatcher": lambda _args: dispatcher.main(),
    "bus": lambda args: bus.main(args.events),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument("--events", type=int, default=20_000, help="purchase events to push")
    parser.add_argument(
        "--connections",
        type=int,
        default=8,
        help="ingest: concurrent HTTP connections of the load generator",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="ingest: worker processes of `nudge ingest` (one per core in production)",
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
    if args.json:
        write_json(args.json)
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
