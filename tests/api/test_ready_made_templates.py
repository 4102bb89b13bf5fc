"""The ready-made campaigns' templates as a marketer meets them in the API: listed and read
as shipped, changed under their key, and put back to the shipped text.

Seen: ``GET /v1/templates`` answered ``[]`` while three active campaigns sent these
templates; they could only be overwritten blind by key."""

from __future__ import annotations

import httpx

from services.catalogue import Catalogue
from shared.adapters.store.definitions import SqlDefinitions
from shared.domain.campaigns import BUILTIN_PUSH_TEMPLATES, BUILTIN_SMS_TEMPLATES, BUILTIN_TEMPLATES
from shared.domain.rendering import SmsTemplate
from tests.api.definitions_app import *  # noqa: F403 - the fixtures

SHIPPED_SMS = BUILTIN_SMS_TEMPLATES["pre-churn-sms"].text
CHANGED_SMS = {"channel": "sms", "content": {"text": "Come back: STAY15. {{ unsubscribe_url }}"}}


async def test_every_ready_made_template_is_listed_as_shipped(reader: httpx.AsyncClient) -> None:
    listed = (await reader.get("/v1/templates")).json()["templates"]
    by_key = {t["key"]: t for t in listed}
    assert set(by_key) == set(BUILTIN_TEMPLATES) | set(BUILTIN_SMS_TEMPLATES) | set(
        BUILTIN_PUSH_TEMPLATES
    )
    sms = by_key["pre-churn-sms"]
    assert (sms["channel"], sms["content"], sms["ready_made"], sms["customised"]) == (
        "sms",
        {"text": SHIPPED_SMS},
        True,
        False,
    )
    assert sms["version"] is None
    assert (
        by_key["win-back-email"]["content"]["subject"]
        == BUILTIN_TEMPLATES["win-back-email"].subject
    )
    assert by_key["second-order-push"]["channel"] == "push"


async def test_a_ready_made_template_is_read_and_previewed_as_shipped(
    reader: httpx.AsyncClient,
) -> None:
    read = await reader.get("/v1/templates/pre-churn-sms")
    assert read.status_code == 200, read.text
    assert read.json()["content"] == {"text": SHIPPED_SMS}
    assert "etag" not in read.headers, "never stored: a change needs no If-Match"
    preview = (await reader.post("/v1/templates/pre-churn-sms/preview", json={})).json()
    assert preview["rendered"]["text"].startswith("We miss you! 15% off")


async def test_a_ready_made_template_changed_is_in_force_and_reset_puts_the_shipped_text_back(
    writer: httpx.AsyncClient, definitions: SqlDefinitions
) -> None:
    changed = await writer.put("/v1/templates/pre-churn-sms", json=CHANGED_SMS)
    assert changed.status_code == 201, changed.text
    body = changed.json()
    assert (body["ready_made"], body["customised"], body["version"]) == (True, True, 1)
    catalogue = Catalogue(definitions)
    await catalogue.refresh()
    assert catalogue.templates.sms["pre-churn-sms"] == SmsTemplate(CHANGED_SMS["content"]["text"])
    listed = {t["key"]: t for t in (await writer.get("/v1/templates")).json()["templates"]}
    assert listed["pre-churn-sms"]["content"] == CHANGED_SMS["content"]

    stale = await writer.post("/v1/templates/pre-churn-sms/reset", headers={"If-Match": '"7"'})
    assert stale.status_code == 412, stale.text
    reset = await writer.post("/v1/templates/pre-churn-sms/reset", headers={"If-Match": '"1"'})
    assert reset.status_code == 200, reset.text
    assert reset.json()["content"] == {"text": SHIPPED_SMS}
    assert (reset.json()["customised"], reset.json()["version"]) == (False, 2)
    assert reset.headers["etag"] == '"2"'
    await catalogue.refresh()
    assert catalogue.templates.sms["pre-churn-sms"] == BUILTIN_SMS_TEMPLATES["pre-churn-sms"]
    again = await writer.post("/v1/templates/pre-churn-sms/reset")
    assert again.status_code == 200, "already as shipped: nothing to do"

    # Changed again against the version the reset answered.
    second = await writer.put(
        "/v1/templates/pre-churn-sms", json=CHANGED_SMS, headers={"If-Match": '"2"'}
    )
    assert second.status_code == 200, second.text
    assert second.json()["customised"] is True


async def test_a_reset_needs_the_current_version_and_a_ready_made_key(
    writer: httpx.AsyncClient,
) -> None:
    await writer.put("/v1/templates/pre-churn-sms", json=CHANGED_SMS)
    missing = await writer.post("/v1/templates/pre-churn-sms/reset")
    assert missing.status_code == 428, missing.text
    await writer.put("/v1/templates/thanks", json=CHANGED_SMS)
    mine = await writer.post("/v1/templates/thanks/reset", headers={"If-Match": '"1"'})
    assert mine.status_code == 404
    assert "not a ready-made template" in mine.json()["detail"]


async def test_a_ready_made_templates_channel_stays(writer: httpx.AsyncClient) -> None:
    moved = {"channel": "email", "content": {"subject": "s", "html": "h", "text": "t"}}
    refused = await writer.put("/v1/templates/pre-churn-sms", json=moved)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["pointer"] == "/channel"
    assert (await writer.get("/v1/templates/pre-churn-sms")).json()["customised"] is False


async def test_a_reset_needs_the_write_scope(reader: httpx.AsyncClient) -> None:
    answer = await reader.post("/v1/templates/pre-churn-sms/reset")
    assert answer.status_code == 403


async def test_an_sms_preview_counts_segments_with_a_real_links_length(
    reader: httpx.AsyncClient,
) -> None:
    # Seen: the preview's 35-character placeholder link made the built-in pre-churn SMS
    # one segment; with its real unsubscribe link (about 150 characters) it is sent as two.
    preview = (await reader.post("/v1/templates/pre-churn-sms/preview", json={})).json()
    link = preview["rendered"]["text"].rsplit("Stop: ", 1)[1]
    assert len(link) >= 140
    assert preview["rendered"]["segments"] == 2
