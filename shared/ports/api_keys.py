"""The API-key port: scoped keys for the HTTP API, kept only as a hash.

A key is shown once, when it is created: ``nk_<key id>_<random secret>``. The key
id is not secret (it names the key in ``nudge keys list`` and in logs); the whole
key is. A key holds scopes, and may be bound to stores: then it may post only
events whose ``store_id`` is one of them.

Scopes:

- ``events:write``: post events (``POST /v1/events``);
- ``console:read``, ``console:write``: the marketer's API, when it exists;
- ``admin``: every scope.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, Protocol, get_args

__all__ = ["SCOPES", "ApiKey", "ApiKeys", "Scope"]

Scope = Literal["events:write", "console:read", "console:write", "admin"]
SCOPES: Final[tuple[Scope, ...]] = get_args(Scope)


@dataclass(frozen=True)
class ApiKey:
    """What is known about a key; never its secret nor its hash."""

    id: str
    name: str
    scopes: frozenset[Scope]
    stores: frozenset[str]
    """The stores whose events the key may post; empty: any store."""
    created_at: datetime
    revoked_at: datetime | None = None

    def allows(self, scope: Scope) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def may_post_for(self, store_id: str | None) -> bool:
        """A key bound to stores posts only events that name one of them."""
        return not self.stores or store_id in self.stores


class ApiKeys(Protocol):
    async def create(
        self, name: str, scopes: Collection[Scope], stores: Collection[str] = ()
    ) -> tuple[ApiKey, str]:
        """A new key and its plaintext, which is shown once and never kept.

        Raises :class:`ValueError` for an empty name, no scope or an unknown scope.
        """
        ...

    async def authenticate(self, secret: str) -> ApiKey | None:
        """The key ``secret`` is, unless it is unknown, malformed or revoked."""
        ...

    async def list(self) -> Sequence[ApiKey]:
        """Every key, revoked ones too, oldest first."""
        ...

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key for good; ``False`` when there is no key ``key_id``.

        Revoking a revoked key keeps its first revocation time and returns ``True``.
        """
        ...

    async def ping(self) -> None:
        """Return once the keys can be read; raise :class:`~shared.errors.StoreUnavailable`."""
        ...

    async def close(self) -> None: ...
