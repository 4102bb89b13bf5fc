"""The whole pipeline in one process, driven step by step: for the demo, an embedded
replay and the tests.

:class:`Pipeline` holds ingest (as an ASGI app), the segmenter and the dispatcher
on one runtime. :meth:`Pipeline.settle` runs every loop's next round until none
has anything left to do, so a caller that moves a simulated clock sees exactly
the effects of that move, deterministically. It posts with an ``events:write`` key
named :data:`KEY_NAME` that it creates in the runtime's database when it starts and
revokes when it closes, so no run (a demo, an embedded replay) leaves one active. Only a
key's hash is kept, so a key made before cannot be presented again: one left active by a
run that crashed is found by its name and scope and revoked when the next one is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from services.bootstrap import Runtime
from services.dispatcher.service import DispatcherService
from services.ingest.app import create_app
from services.segmenter.service import SegmenterService

__all__ = ["KEY_NAME", "Pipeline"]

KEY_NAME = "embedded pipeline"
"""The name of the ``events:write`` key the pipeline posts with."""


class Pipeline:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.segmenter = SegmenterService(runtime)
        self.dispatcher = DispatcherService(runtime)
        self._publisher = runtime.bus.publisher()
        self.app = create_app(
            runtime.settings,
            self._publisher,
            runtime.api_keys,
            clock=runtime.clock,
            event_ids=runtime.event_ids,
        )
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://nudge.embedded"
        )
        self._key_id: str | None = None

    async def __aenter__(self) -> Pipeline:
        await self._authorise()
        await self.segmenter.start()
        await self.dispatcher.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.http.aclose()
        if self._key_id is not None:
            await self.runtime.api_keys.revoke(self._key_id)
        await self.segmenter.close()
        await self.dispatcher.close()
        await self._publisher.close()

    async def post_events(self, events: Sequence[dict[str, Any]]) -> httpx.Response:
        """Post events to ``/v1/events`` in batches of at most 1000; the last answer."""
        response: httpx.Response | None = None
        for start in range(0, len(events), 1000):
            response = await self.http.post(
                "/v1/events", json={"events": list(events[start : start + 1000])}
            )
            response.raise_for_status()
        assert response is not None, "no events to post"
        return response

    async def _authorise(self) -> None:
        """The pipeline's key made, an earlier run's left active revoked."""
        keys = self.runtime.api_keys
        for left in await keys.list():
            if left.name == KEY_NAME and left.scopes == {"events:write"} and not left.revoked_at:
                await keys.revoke(left.id)
        key, secret = await keys.create(KEY_NAME, ["events:write"])
        self._key_id = key.id
        self.http.headers["Authorization"] = f"Bearer {secret}"

    async def settle(self) -> int:
        """Run every loop until nothing is left to do; return how much was done."""
        total = 0
        while True:
            done = await self.segmenter.step() + await self.dispatcher.step()
            if not done:
                return total
            total += done
