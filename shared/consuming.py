"""The consume loop every consumer service runs: poll, handle, commit, dead-letter.

A batch is handled, then its offsets are committed, so a crash in between
delivers it again (at least once) and the handlers' dedupe makes that harmless.
Transient failures (the database or the broker away) are retried with backoff,
the batch held in memory; any other failure is narrowed down record by record,
and the one record that fails alone goes to the dead-letter topic
(``<topic>.dlq``) with its error, so the partition moves on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from shared.errors import BusUnavailable, CommitFailed, StoreUnavailable
from shared.logging import get_logger
from shared.ports.bus import Consumer, Publisher, Record

__all__ = ["BatchHandler", "ConsumerLoop"]

BatchHandler = Callable[[Sequence[Record]], Awaitable[None]]
TRANSIENT = (StoreUnavailable, BusUnavailable)

log = get_logger(__name__)


class ConsumerLoop:
    def __init__(
        self,
        name: str,
        consumer: Consumer,
        handle: BatchHandler,
        dead_letters: Publisher,
        *,
        max_records: int = 500,
        poll_timeout: float = 0.5,
    ) -> None:
        self.name = name
        self.consumer = consumer
        self.handle = handle
        self.dead_letters = dead_letters
        self.max_records = max_records
        self.poll_timeout = poll_timeout
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        """Consume until :meth:`stop`; the batch in hand is finished first."""
        while not self.stopping.is_set():
            try:
                await self.step(self.poll_timeout)
            except TRANSIENT as exc:
                # Nothing was committed: the batch comes again once the dependency is back.
                log.warning("dependency unavailable, retrying", loop=self.name, error=str(exc))
                if not self.stopping.is_set():
                    await asyncio.sleep(1.0)

    def stop(self) -> None:
        self.stopping.set()

    async def step(self, timeout: float = 0.0) -> int:
        """Handle and commit one batch; return how many records it held."""
        records = await self.consumer.poll(self.max_records, timeout)
        if not records:
            return 0
        await self._handle(records)
        try:
            await self.consumer.commit(records)
        except CommitFailed as exc:
            # A rebalance gave the partitions away: the new owner gets these records again
            # and the handlers' dedupe makes that harmless.
            log.warning("commit failed after rebalance", loop=self.name, error=str(exc))
        return len(records)

    async def _handle(self, records: Sequence[Record]) -> None:
        try:
            await self._with_retries(records)
        except TRANSIENT:
            raise
        except Exception as exc:
            if len(records) == 1:
                await self._dead_letter(records[0], exc)
                return
            log.warning("batch failed, isolating the bad record", loop=self.name, size=len(records))
            for record in records:
                await self._handle([record])

    async def _with_retries(self, records: Sequence[Record]) -> None:
        await self._retrying(lambda: self.handle(records))

    async def _retrying(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work``, retrying transient failures with backoff until it succeeds or we stop."""

        def give_up(state: RetryCallState) -> bool:
            return self.stopping.is_set()

        def warn(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "transient failure, retrying",
                loop=self.name,
                attempt=state.attempt_number,
                error=str(error),
            )

        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TRANSIENT),
            wait=wait_exponential_jitter(multiplier=0.2, max=5.0, jitter=0.2),
            stop=give_up,
            before_sleep=warn,
            reraise=True,
        ):
            with attempt:
                await work()

    async def _dead_letter(self, record: Record, error: Exception) -> None:
        log.error(
            "poison record sent to the dead-letter topic",
            loop=self.name,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=f"{type(error).__name__}: {error}",
        )
        headers = [
            ("error", f"{type(error).__name__}: {error}"[:2000].encode()),
            ("source.topic", record.topic.encode()),
            ("source.partition", str(record.partition).encode()),
            ("source.offset", str(record.offset).encode()),
        ]
        await self._retrying(
            lambda: self.dead_letters.publish(
                f"{record.topic}.dlq", [(record.key, record.value)], headers
            )
        )
