"""The event-id port: every event id ingest accepted, with the digest of its content.

Ingest claims a request's ids before it publishes the request's events, so that an
id reused with other content is refused (409 ``event-id-conflict``) instead of
being published and then dropped by the segmenter's dedupe. The index is shared
by every ingest worker and replica (it lives in the database), and it is kept as
long as the segmenter's ``processed_events``: forgetting an id there would let a
reuse of it through to be silently dropped again.

An id is claimed within a tenant (:data:`EventKey`): the stores a store-bound API key
posts for each have their own ids, the shop-wide keys (and nudge's own webhooks) share
the tenant ``""``. A tenant never sees nor blocks another tenant's ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["EventIds", "EventKey"]

EventKey = tuple[str, str]
"""``(tenant, event_id)``: the tenant is the store of a store-bound key's event, ``""``
for everything else."""


class EventIds(Protocol):
    async def claim(self, digests: Mapping[EventKey, bytes]) -> set[EventKey]:
        """Claim each event id of ``digests`` (in its tenant) for its content digest, all
        or nothing.

        Returns the ids claimed before with other content (the conflicts:
        :func:`~shared.domain.event_content.same_content` is false); when there is any,
        nothing of ``digests`` is claimed. An id claimed before with the same content is
        no conflict; claiming it again keeps the digest given (of this deployment's
        version), so a retried request claims again and is published again. Claims
        that race on one id are decided one after the other: one wins, the other sees
        its digest.

        Raises :class:`~shared.errors.StoreUnavailable` when the index does not answer.
        """
        ...
