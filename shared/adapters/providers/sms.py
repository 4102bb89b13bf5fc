"""SMS through an HTTP API in the shape of Twilio's Messages API.

``POST {base}/2010-04-01/Accounts/{account_sid}/Messages.json``, form-encoded
``To``, ``From``, ``Body``, HTTP basic auth ``account_sid:auth_token``; the
answer is JSON with the message's ``sid``. Errors come as Twilio's JSON
``{"code", "message", "status"}``. The message's idempotency key travels in
``I-Twilio-Idempotency-Token``, so a retried send is one SMS at a provider
that dedupes on it.

429, 408, 401 and 5xx are worth retrying (see :mod:`shared.adapters.providers.http`);
any other 4xx is a rejection (a number that is not a phone, one that opted
out, a region not enabled).
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
from shared.ports.providers import SendReceipt, SmsMessage

__all__ = ["IDEMPOTENCY_HEADER", "TwilioSmsProvider"]

IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


class TwilioSmsProvider(HttpProviderBase):
    name = "sms"

    def __init__(
        self,
        base_url: str,
        account_sid: str,
        auth_token: str,
        sender: str,
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
            auth=(account_sid, auth_token),
            connections=connections,
            idle_timeout=idle_timeout,
        )
        self.account_sid = account_sid
        self.sender = sender

    async def send(self, message: SmsMessage) -> SendReceipt:
        response = await self._post(
            f"/2010-04-01/Accounts/{self.account_sid}/Messages.json",
            headers={IDEMPOTENCY_HEADER: message.idempotency_key},
            form={"To": message.to, "From": message.sender or self.sender, "Body": message.text},
        )
        if response.is_success:
            sid = json_object(response).get("sid")
            if not isinstance(sid, str) or not sid:
                # Sent or not, a retry with the same key is safe: the provider dedupes it.
                raise ProviderUnavailable(f"sms: HTTP {response.status_code} without a sid")
            return SendReceipt(provider_message_id=sid)
        error = json_object(response)
        detail = f"sms: HTTP {response.status_code}"
        if "code" in error or "message" in error:
            detail += f", Twilio {error.get('code')}: {error.get('message')}"
        if retryable_status(response.status_code):
            raise ProviderUnavailable(detail, retry_after=retry_after(response))
        raise ProviderRejected(detail)
