"""What the HTTP providers (SMS, push) share: one httpx client each, and reading failures.

A provider's HTTP answer becomes nudge's error tree here once:

- no answer (connection refused, reset, DNS) is :class:`ProviderUnavailable`, and
  no answer in time is :class:`ProviderTimeout`;
- 408, 429 and 5xx are :class:`ProviderUnavailable`, carrying ``Retry-After``
  (seconds or an HTTP date) when the provider sent one;
- 401 is :class:`ProviderUnavailable` too: nudge's own credentials were refused,
  which says nothing about the buyer's address and must not mark it bad; the
  breaker opens and every send fails fast until an operator fixes the secret;
- any other 4xx is :class:`ProviderRejected`, unless the provider's own error
  code says otherwise (each adapter decides).
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

import httpx

from shared.errors import ProviderTimeout, ProviderUnavailable

__all__ = ["HttpProviderBase", "json_object", "retry_after", "retryable_status"]


def retryable_status(status: int) -> bool:
    return status in (401, 408, 429) or status >= 500


def json_object(response: httpx.Response) -> dict[str, object]:
    """The answer's JSON object, or an empty one when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the provider asked us to wait (``Retry-After``), if it said."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        until = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    sent = response.headers.get("date")
    try:
        now = email.utils.parsedate_to_datetime(sent) if sent else datetime.now(UTC)
    except (TypeError, ValueError):
        now = datetime.now(UTC)
    return max(0.0, (until - now).total_seconds())


class HttpProviderBase:
    """One httpx client for the provider's life, with its timeouts; ``aclose()`` when done.

    The client keeps up to ``connections`` connections to the provider open between
    calls (HTTP/1.1 keep-alive), each unused one for ``idle_timeout`` seconds: sized to
    the sends in flight per channel, a send waits neither for a new TCP and TLS
    handshake nor for another send's connection. A call past ``connections`` in flight
    waits for one to come free (within its timeout).
    """

    name: str

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        connect_timeout: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        connections: int = 16,
        idle_timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=connect_timeout or timeout),
            transport=transport,
            auth=auth,
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=connections,
                max_keepalive_connections=connections,
                keepalive_expiry=idle_timeout,
            ),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _post(
        self,
        path: str,
        *,
        headers: dict[str, str],
        form: dict[str, str] | None = None,
        json: object = None,
    ) -> httpx.Response:
        """POST, with no answer translated into the error tree."""
        try:
            return await self.client.post(path, headers=headers, data=form, json=json)
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"{self.name}: no answer within {self.timeout}s") from exc
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"{self.name} unreachable: {type(exc).__name__}") from exc
