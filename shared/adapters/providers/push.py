"""Push notifications through an HTTP API in the shape of FCM HTTP v1.

``POST {base}/v1/projects/{project_id}/messages:send`` with ``Authorization:
Bearer <access token>`` and JSON::

    {"message": {"token": "...",
                 "notification": {"title": "...", "body": "..."},
                 "data": {..., "deep_link": "...", "idempotency_key": "..."}}}

The answer is ``{"name": "projects/<id>/messages/<id>"}``. The idempotency key
also travels as ``Idempotency-Key``, so a retried send is one notification at
a provider that dedupes on it, and in the data, so the app can drop a
notification it has already shown.

The access token is a short-lived OAuth 2 token for the Firebase messaging
scope. nudge does not mint it: production mints it from a service account
outside nudge (``gcloud auth print-access-token`` run by the deployment, or a
sidecar that refreshes it) and hands it over as ``NUDGE_PUSH_ACCESS_TOKEN``.

Errors come in Google's shape ``{"error": {"code", "message", "status",
"details": [{"errorCode": ...}]}}``. The FCM error code decides when there is
one, else the status: ``UNAVAILABLE``, ``INTERNAL``, ``QUOTA_EXCEEDED`` /
``RESOURCE_EXHAUSTED`` and ``UNAUTHENTICATED`` (nudge's token expired) are worth
retrying; ``INVALID_ARGUMENT``, ``UNREGISTERED``, ``NOT_FOUND`` and
``SENDER_ID_MISMATCH`` (this app install's token is not good, for good) are
rejections; with neither, the HTTP status decides as for every HTTP provider.
"""

from __future__ import annotations

import httpx

from shared.adapters.providers.http import (
    HttpProviderBase,
    json_object,
    retry_after,
    retryable_status,
)
from shared.errors import ProviderRejected, ProviderUnavailable
from shared.ports.providers import PushMessage, SendReceipt

__all__ = ["IDEMPOTENCY_HEADER", "FcmPushProvider", "fcm_message"]

IDEMPOTENCY_HEADER = "Idempotency-Key"

_RETRYABLE = frozenset(
    {
        "UNAVAILABLE",
        "INTERNAL",
        "QUOTA_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "UNAUTHENTICATED",
        "THIRD_PARTY_AUTH_ERROR",
        "DEADLINE_EXCEEDED",
    }
)
_PERMANENT = frozenset(
    {"INVALID_ARGUMENT", "UNREGISTERED", "NOT_FOUND", "SENDER_ID_MISMATCH", "PERMISSION_DENIED"}
)


def fcm_message(message: PushMessage) -> dict[str, object]:
    """The JSON body FCM HTTP v1 takes for ``message``."""
    content = message.content
    data = dict(content.data)
    if content.deep_link is not None:
        data["deep_link"] = content.deep_link
    data["idempotency_key"] = message.idempotency_key
    return {
        "message": {
            "token": message.token,
            "notification": {"title": content.title, "body": content.body},
            "data": data,
        }
    }


class FcmPushProvider(HttpProviderBase):
    name = "push"

    def __init__(
        self,
        base_url: str,
        project_id: str,
        access_token: str,
        *,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        connections: int = 16,
        idle_timeout: float = 30.0,
    ) -> None:
        super().__init__(
            base_url,
            timeout=timeout,
            connect_timeout=connect_timeout,
            transport=transport,
            connections=connections,
            idle_timeout=idle_timeout,
        )
        self.project_id = project_id
        self._access_token = access_token

    async def send(self, message: PushMessage) -> SendReceipt:
        response = await self._post(
            f"/v1/projects/{self.project_id}/messages:send",
            headers={
                "Authorization": f"Bearer {self._access_token}",
                IDEMPOTENCY_HEADER: message.idempotency_key,
            },
            json=fcm_message(message),
        )
        body = json_object(response)
        if response.is_success:
            name = body.get("name")
            if not isinstance(name, str) or not name:
                raise ProviderUnavailable(f"push: HTTP {response.status_code} without a name")
            return SendReceipt(provider_message_id=name)
        code, detail = _google_error(body)
        detail = f"push: HTTP {response.status_code}" + (f", {code}: {detail}" if code else "")
        if code in _RETRYABLE:
            raise ProviderUnavailable(detail, retry_after=retry_after(response))
        if code in _PERMANENT:
            raise ProviderRejected(detail)
        if retryable_status(response.status_code):
            raise ProviderUnavailable(detail, retry_after=retry_after(response))
        raise ProviderRejected(detail)


def _google_error(body: dict[str, object]) -> tuple[str | None, str]:
    """The FCM error code if there is one, else the status; and the message."""
    error = body.get("error")
    if not isinstance(error, dict):
        return None, ""
    message = str(error.get("message", ""))
    details = error.get("details")
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and isinstance(item.get("errorCode"), str):
                return str(item["errorCode"]), message
    status = error.get("status")
    return (status if isinstance(status, str) else None), message
