"""The event-id port: every event id ingest accepted, with the digest of its content.

Ingest claims a request's ids before it publishes the request's events, so that an
id reused with other content is refused (409 ``event-id-conflict``) instead of
being published and then dropped by the segmenter's dedupe. The index is shared
by every ingest worker and replica (it lives in the database), and it is kept as
long as the segmenter's ``processed_events``: forgetting an id there would let a
reuse of it through to be silently dropped again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["EventIds"]


class EventIds(Protocol):
    async def claim(self, digests: Mapping[str, bytes]) -> set[str]:
        """Claim each event id of ``digests`` for its content digest, all or nothing.

        Returns the ids claimed before with another digest (the conflicts); when there
        is any, nothing of ``digests`` is claimed. An id claimed before with the same
        digest is no conflict, and claiming it again changes nothing, so a retried
        request claims again and is published again. Claims that race on one id are
        decided one after the other: one wins, the other sees its digest.

        Raises :class:`~shared.errors.StoreUnavailable` when the index does not answer.
        """
        ...
