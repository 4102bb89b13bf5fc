"""``python -m bench`` (``make bench``): every benchmark, printing figures and ratios."""

from __future__ import annotations

import argparse
import asyncio

from bench import pipeline


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="purchase events to push")
    args = parser.parse_args()
    asyncio.run(pipeline.main(args.events))


if __name__ == "__main__":
    main()
