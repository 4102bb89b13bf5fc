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

The JSON published for one event sent twice also depends on the deployment: the key
bank card tokens are hashed with, the default region phones are read in, the event
models (a new field with a default is published too) and how nudge normalises. So a
digest starts with :data:`VERSION_BYTES` bytes naming all that
(:func:`digest_version`), and two digests of different versions are no evidence of
other content: :func:`same_content` takes them for the same, and the retry is a
duplicate, published again (the segmenter applies an id once), instead of a 409 for
an event that did not change.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Final

import orjson

from shared.domain.events import event_adapter

__all__ = [
    "DIGEST_BYTES",
    "DIGEST_FORMAT",
    "VERSION_BYTES",
    "content_digest",
    "digest_version",
    "same_content",
]

DIGEST_BYTES: Final = 16
"""A BLAKE2b-128 digest: a false "same content" between two events of one id is a
2**-128 chance, and the index of accepted ids keeps 16 bytes per event (after the
version)."""

VERSION_BYTES: Final = 4
"""The version a digest starts with: two deployments that publish one event alike
share a version; two that may not have another one but for a 2**-32 chance."""

DIGEST_FORMAT: Final = 1
"""Bump when the code publishes the same event differently (normalisation, the
digest itself) in a way the event models' schema does not show."""


def digest_version(*, default_region: str | None, token_key: bytes | None) -> bytes:
    """The version of the digests a deployment makes: of :data:`DIGEST_FORMAT`, the
    event models' JSON Schema, ``default_region`` and ``token_key`` (the bank card token
    key, ``None`` for a publisher of events without tokens), never the key itself."""
    named = hashlib.blake2b(digest_size=VERSION_BYTES)
    named.update(f"{DIGEST_FORMAT}\x00{default_region or ''}\x00".encode())
    named.update(_schema_fingerprint())
    named.update(b"\x00" if token_key is None else hashlib.sha256(token_key).digest())
    return named.digest()


@functools.cache
def _schema_fingerprint() -> bytes:
    schema = orjson.dumps(event_adapter.json_schema(), option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(schema, digest_size=16).digest()


def same_content(claimed: bytes, digest: bytes) -> bool:
    """Whether the event ``claimed`` was the digest of and the one of ``digest`` count as
    the same content: equal digests, or digests of two versions (see the module's
    docstring)."""
    return claimed[:VERSION_BYTES] != digest[:VERSION_BYTES] or claimed == digest


def content_digest(published: bytes, *, version: bytes) -> bytes:
    """The digest of an event's content (see the module's docstring): a hash of the JSON
    ingest publishes for it (``model_dump_json(exclude_none=True)``), as it is. Those
    bytes are canonical already: a model's fields come in the order of its class, and
    its objects of the sender's (``traits``, ``properties``, ``consents``) sorted by key
    as they are validated, so the order they were sent in does not count. No parse, no
    second serialisation. ``version`` (:func:`digest_version`) first, then
    :data:`DIGEST_BYTES` of hash."""
    return version + hashlib.blake2b(published, digest_size=DIGEST_BYTES).digest()
