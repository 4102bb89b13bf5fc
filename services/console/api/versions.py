"""Optimistic concurrency over HTTP: a definition's version is its ``ETag``, and a change
names the version it was made against in ``If-Match`` (RFC 9110, section 13.1.1).

- ``GET`` answers ``ETag: "<version>"``.
- ``PUT`` of a new key needs no ``If-Match`` (201).
- ``PUT`` (or ``DELETE``) of an existing key needs ``If-Match: "<version>"``; without it,
  ``428 precondition-required``: an edit that did not say what it was made against
  could overwrite someone else's. ``If-Match: *`` matches whatever version is there.
- An ``If-Match`` that is not the current version (or a weak or malformed one, since
  the comparison is strong) is ``412 stale-version``, with the current ``ETag``.

The editors (:mod:`services.catalogue.editing`) take these rules as their ``against``:
:func:`if_match` for the API, :func:`read_at` for the pages, which send the version
they were read at as the save's ``If-Match``.
"""

from __future__ import annotations

import re

from services.catalogue.editing import Against, Exists
from services.http.problems import Problem
from shared.ports.definitions import StaleVersion

__all__ = ["etag", "expected_version", "if_match", "read_at", "stale_problem"]

_STRONG = re.compile(r'^"(\d{1,9})"$')


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


def if_match(key: str, header: str | None) -> Against:
    """The version rule of a change to ``key`` sent with the ``If-Match`` ``header``."""
    return lambda current: expected_version(key, header, current)


def read_at(kind: str, key: str, version: int | None, *, new: bool = False) -> Against:
    """The version rule of a page's save of the ``kind`` ``key``: the ``version`` the page
    was read at, as its ``If-Match``; a ``new`` one's key may not be taken (:class:`Exists`)."""

    def against(current: int | None) -> int | None:
        if new and current is not None:
            raise Exists(kind, key)
        return expected_version(key, etag(version) if version is not None else None, current)

    return against


def stale_problem(stale: StaleVersion) -> Problem:
    """A change that lost a race, as ``412 stale-version``."""
    return _stale(
        stale.key,
        stale.current,
        f"{stale.key} changed meanwhile (version {stale.current}); read it again and reapply",
    )
