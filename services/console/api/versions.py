"""Optimistic concurrency over HTTP: a definition's version is its ``ETag``, and a change
names the version it was made against in ``If-Match`` (RFC 9110, section 13.1.1).

- ``GET`` answers ``ETag: "<version>"``.
- ``PUT`` of a new key needs no ``If-Match`` (201).
- ``PUT`` (or ``DELETE``) of an existing key needs ``If-Match: "<version>"``; without it,
  ``428 precondition-required``: an edit that did not say what it was made against
  could overwrite someone else's. ``If-Match: *`` matches whatever version is there.
- An ``If-Match`` that is not the current version (or a weak or malformed one, since
  the comparison is strong) is ``412 stale-version``, with the current ``ETag``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from services.http.problems import Problem
from shared.ports.definitions import StaleVersion

__all__ = ["etag", "expected_version", "saved"]

_STRONG = re.compile(r'^"(\d{1,9})"$')
T = TypeVar("T")


def etag(version: int) -> str:
    return f'"{version}"'


def _stale(key: str, current: int | None, detail: str) -> Problem:
    headers = {"ETag": etag(current)} if current is not None else {}
    return Problem("stale-version", detail, headers=headers)


def expected_version(key: str, if_match: str | None, current: int | None) -> int | None:
    """The version a change is made against, from ``If-Match`` and the current version
    (``None``: there is none): ``None`` to create; a :class:`Problem` when refused."""
    if if_match is None:
        if current is not None:
            raise Problem(
                "precondition-required",
                f"{key} exists (version {current}): send If-Match: {etag(current)} with the "
                "version your change is made against",
                headers={"ETag": etag(current)},
            )
        return None
    if if_match.strip() == "*":
        if current is None:
            raise _stale(key, None, f"If-Match: * but there is no {key}")
        return current
    match = _STRONG.match(if_match.strip())
    if match is None:
        raise _stale(key, current, 'If-Match takes one strong ETag such as "3"')
    wanted = int(match.group(1))
    if wanted != current:
        raise _stale(key, current, f"If-Match names version {wanted}; current: {current}")
    return wanted


async def saved(key: str, write: Callable[[], Awaitable[T]]) -> T:
    """``write()``, with a change that lost a race answered as ``412 stale-version``."""
    try:
        return await write()
    except StaleVersion as stale:
        raise _stale(
            key,
            stale.current,
            f"{key} changed meanwhile (version {stale.current}); read it again and reapply",
        ) from None
