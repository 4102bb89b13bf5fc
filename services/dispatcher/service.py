"""The dispatcher service: segment changes in, campaign messages out."""

from __future__ import annotations

from services.bootstrap import Runtime, unsubscribe_key
from services.dispatcher.handlers import Dispatcher
from shared.consuming import ConsumerLoop
from shared.ports.bus import Publisher

__all__ = ["DispatcherService"]


class DispatcherService:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.dispatcher = Dispatcher(
            store=runtime.store,
            clock=runtime.clock,
            email=runtime.email,
            campaigns=runtime.campaigns,
            templates=runtime.templates,
            unsubscribe_key=unsubscribe_key(runtime.settings),
            public_url=runtime.settings.public_url,
        )
        self._publisher: Publisher | None = None
        self._loop: ConsumerLoop | None = None

    async def start(self) -> None:
        settings = self.runtime.settings
        self._publisher = self.runtime.bus.publisher()
        consumer = await self.runtime.bus.consumer(
            settings.group("dispatcher"), [settings.topic("segment-changes")]
        )
        self._loop = ConsumerLoop(
            "dispatcher.changes",
            consumer,
            self.dispatcher.handle_changes,
            self._publisher,
            max_records=min(settings.batch_size, 100),
            poll_timeout=settings.poll_timeout,
        )

    async def step(self) -> int:
        assert self._loop is not None, "start() first"
        return await self._loop.step(0)

    async def run(self) -> None:
        assert self._loop is not None, "start() first"
        try:
            await self._loop.run()
        finally:
            await self.close()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.stop()

    async def close(self) -> None:
        if self._loop is not None:
            loop, self._loop = self._loop, None
            await loop.consumer.close()
        if self._publisher is not None:
            publisher, self._publisher = self._publisher, None
            await publisher.close()
