"""nudge's own exceptions. Adapters translate library errors into this tree::

    NudgeError
    ├── BusError
    │   ├── BusUnavailable        the broker did not answer in time (retry later)
    │   └── CommitFailed          offsets not committed (a rebalance took the partition)
    ├── StoreError
    │   └── StoreUnavailable      the database did not answer (retry later)
    ├── RendererUnavailable       no render worker could be started (retry later)
    ├── ProviderError
    │   ├── ProviderUnavailable   worth retrying: connection refused, HTTP 5xx/408/429/401, SMTP 4xx
    │   │   ├── ProviderTimeout   the provider did not answer within the call's timeout
    │   │   └── CircuitOpen       not called at all: its breaker is open (fail fast, not retried)
    │   └── ProviderRejected      permanent: bad address or token, other HTTP 4xx, SMTP 5xx
    └── PoisonRecord              a record that cannot be applied, whatever the retries

The HTTP API answers every refusal as an RFC 9457 problem from one catalogue
(``services/ingest/problems.py``); of this tree, a client can meet only
``BusUnavailable``, as ``503 broker-unavailable``, ``StoreUnavailable``, as
``503 auth-unavailable`` (the API key could not be checked) or ``503
database-unavailable`` (the event ids could not be claimed), both as ``503
not-ready`` from ``/readyz``, and ``RendererUnavailable``, as ``503
renderer-unavailable`` from a template's save or preview. At a send, the dispatcher
tries a ``RendererUnavailable`` message again later, as it does a provider outage.
"""

from __future__ import annotations

__all__ = [
    "BusError",
    "BusUnavailable",
    "CircuitOpen",
    "CommitFailed",
    "NudgeError",
    "PoisonRecord",
    "ProviderError",
    "ProviderRejected",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RendererUnavailable",
    "StoreError",
    "StoreUnavailable",
]


class NudgeError(Exception):
    """Base of every error nudge raises on purpose."""


class BusError(NudgeError):
    pass


class BusUnavailable(BusError):
    pass


class CommitFailed(BusError):
    pass


class StoreError(NudgeError):
    pass


class StoreUnavailable(StoreError):
    pass


class RendererUnavailable(NudgeError):
    """No render worker could be started (the machine out of processes or memory, or a
    worker too slow to start): the template is not at fault; retry later."""


class ProviderError(NudgeError):
    pass


class ProviderUnavailable(ProviderError):
    """A failure worth retrying; ``retry_after`` is the provider's own word on when
    (HTTP ``Retry-After``), in seconds, if it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderTimeout(ProviderUnavailable):
    pass


class CircuitOpen(ProviderUnavailable):
    """The provider's breaker is open after consecutive failures: the call was not made."""


class ProviderRejected(ProviderError):
    pass


class PoisonRecord(NudgeError):
    """A record that cannot be applied: it goes to the dead-letter topic."""
