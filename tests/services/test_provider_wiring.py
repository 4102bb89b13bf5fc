"""The providers as the composition root builds them: every channel, email included,
behind one retry mechanism (retries, a call timeout and a breaker of its own)."""

from __future__ import annotations

from services.bootstrap import bootstrap
from shared.domain.rendering import RenderedEmail
from shared.ports.providers import EmailMessage
from shared.settings import Settings
from tests.support.smtp import SmtpServer

MESSAGE = EmailMessage(
    to="anna@shop.ru",
    content=RenderedEmail(subject="We miss you", html="<p>Come back</p>", text="Come back"),
    idempotency_key="win-back-30d-anna",
)


async def test_a_busy_smtp_server_is_tried_again_and_the_email_arrives_once(
    embedded_settings: Settings, smtp: SmtpServer
) -> None:
    settings = embedded_settings.model_copy(
        update={"email": "smtp", "smtp_host": smtp.host, "smtp_port": smtp.port}
    )
    smtp.mailbox.busy = 1
    runtime = await bootstrap(settings)
    try:
        await runtime.email.send(MESSAGE)
    finally:
        await runtime.close()
    assert [m["Subject"] for m in smtp.mailbox.messages] == ["We miss you"]
    retried = runtime.provider_registry.get_sample_value(
        "nudge_provider_retries_total", {"provider": "email"}
    )
    # Seen: the email path had retries of its own in the dispatcher, with no breaker,
    # no call timeout and no metrics, beside the providers' shared ones.
    assert retried == 1


async def test_an_smtp_server_that_stays_down_opens_the_email_breaker(
    embedded_settings: Settings, smtp: SmtpServer
) -> None:
    settings = embedded_settings.model_copy(
        update={
            "email": "smtp",
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "provider_attempts": 1,
            "breaker_threshold": 2,
        }
    )
    smtp.mailbox.busy = 2
    runtime = await bootstrap(settings)
    outcomes = []
    try:
        for _ in range(3):
            try:
                await runtime.email.send(MESSAGE)
                outcomes.append("sent")
            except Exception as exc:
                outcomes.append(type(exc).__name__)
    finally:
        await runtime.close()
    assert outcomes == ["ProviderUnavailable", "ProviderUnavailable", "CircuitOpen"]
    assert smtp.mailbox.messages == []
