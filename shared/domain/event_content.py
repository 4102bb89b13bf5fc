"""When two events with one ``event_id`` are the same event: their content digest.

An event id names one event for good. The same id sent again with the same content
is a retry (a duplicate, applied once); the same id with other content is a
conflict, refused, because the segmenter keeps the first event of an id and would
silently drop the other.

"The same content" is judged on the event as ingest validated, normalised and
publishes it: everything the sender sent and nothing ingest adds (nudge stamps no
receive time on an event). So these are the same content:

- the members of an object in another order, at any depth (the event's own keys,
  ``traits``, ``properties``, ``consents``);
- a field left out and the same field sent as ``null`` (``store_id``, ``channel``),
  and a field left out and its default sent (``"currency": "RUB"``); a trait sent as
  ``null`` is kept (it means "remove the trait");
- identifiers as ingest normalises them (``+7 916 123-45-67`` and ``89161234567``
  in region RU, ``Anna@Shop.RU`` and ``anna@shop.ru``); a bank card token as its
  keyed hash, which is the same for the same token.

Everything else is compared as it is published, so another buyer, type, amount,
item, trait or time is other content; amounts and times as written, too: ``"10.50"``
is not ``"10.5"``, and ``12:00:00+03:00`` is not ``09:00:00Z``. A retry sends the
event as it was sent the first time.
"""

from __future__ import annotations

import hashlib
from typing import Final

__all__ = ["DIGEST_BYTES", "content_digest"]

DIGEST_BYTES: Final = 16
"""A BLAKE2b-128 digest: a false "same content" between two events of one id is a
2**-128 chance, and the index of accepted ids keeps 16 bytes per event."""


def content_digest(published: bytes) -> bytes:
    """The digest of an event's content (see the module's docstring): a hash of the JSON
    ingest publishes for it (``model_dump_json(exclude_none=True)``), as it is. Those
    bytes are canonical already: a model's fields come in the order of its class, and
    its objects of the sender's (``traits``, ``properties``, ``consents``) sorted by key
    as they are validated, so the order they were sent in does not count. No parse, no
    second serialisation. :data:`DIGEST_BYTES` long."""
    return hashlib.blake2b(published, digest_size=DIGEST_BYTES).digest()
