"""The templates API as a marketer's editor sees it: save what renders, refuse what does not
(with the line), preview on a buyer, and never overwrite a colleague's edit unknowingly."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.engine import open_store
from tests.api.definitions_app import *  # noqa: F403 - the fixtures
from tests.conftest import T0

EMAIL = {
    "channel": "email",
    "content": {
        "subject": "Your {{ customer.orders_count }} orders",
        "html": "<p>Thank you!</p>\n<p>{{ customer.revenue_total }} so far.</p>",
        "text": "Thank you! Unsubscribe: {{ unsubscribe_url }}",
    },
}
SMS = {"channel": "sms", "content": {"text": "Come back: {{ customer.orders_count }} orders"}}
PUSH = {
    "channel": "push",
    "content": {
        "title": "Your cart",
        "body": "{{ trigger.items_count }} items wait for you",
        "deep_link": "shop://cart",
    },
}


def problem(response: httpx.Response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"/problems/{kind}"
    return body


@pytest.mark.parametrize("template", [EMAIL, SMS, PUSH], ids=["email", "sms", "push"])
async def test_a_template_of_each_channel_is_saved_and_read_back(
    writer: httpx.AsyncClient, template: dict
) -> None:
    created = await writer.put("/v1/templates/thanks", json=template)
    assert created.status_code == 201, created.text
    assert created.headers["etag"] == '"1"'
    read = await writer.get("/v1/templates/thanks")
    assert read.headers["etag"] == '"1"'
    assert (read.json()["channel"], read.json()["content"]) == (
        template["channel"],
        template["content"],
    )
    listed = (await writer.get("/v1/templates")).json()["templates"]
    assert [t["key"] for t in listed if not t["ready_made"]] == ["thanks"]


async def test_a_change_needs_the_current_etag(writer: httpx.AsyncClient) -> None:
    await writer.put("/v1/templates/thanks", json=EMAIL)
    problem(await writer.put("/v1/templates/thanks", json=SMS), 428, "precondition-required")
    changed = await writer.put("/v1/templates/thanks", json=SMS, headers={"If-Match": '"1"'})
    assert changed.status_code == 200
    assert changed.headers["etag"] == '"2"'
    stale = await writer.put("/v1/templates/thanks", json=EMAIL, headers={"If-Match": '"1"'})
    problem(stale, 412, "stale-version")
    assert (await writer.get("/v1/templates/thanks")).json()["channel"] == "sms"


async def test_a_template_that_does_not_render_is_refused_with_its_line(
    writer: httpx.AsyncClient,
) -> None:
    broken = {
        "channel": "email",
        "content": {
            **EMAIL["content"],
            "html": "<p>Hello</p>\n<p>{{ customer.orders_count }}</p>\n<p>{{ coupon.code }}</p>",
        },
    }
    body = problem(await writer.put("/v1/templates/thanks", json=broken), 422, "invalid-template")
    (error,) = body["errors"]
    assert error["pointer"] == "/content/html"
    assert error["line"] == 3
    assert "coupon" in error["detail"]
    assert (await writer.get("/v1/templates/thanks")).status_code == 404


async def test_a_syntax_error_is_refused_with_its_line(writer: httpx.AsyncClient) -> None:
    broken = {"channel": "sms", "content": {"text": "Hi\n{% if customer.orders_count %}no end"}}
    body = problem(await writer.put("/v1/templates/hi", json=broken), 422, "invalid-template")
    (error,) = body["errors"]
    assert error["pointer"] == "/content/text"
    assert error["line"] == 2


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{% if false %}{{ customer.__class__ }}{% endif %}",
        "{{ customer['__class__'] }}",
        "{{ __builtins__ }}",
    ],
    ids=["mro", "hidden-in-a-branch", "by-subscript", "builtins"],
)
async def test_a_template_reaching_for_python_internals_is_refused(
    writer: httpx.AsyncClient, source: str
) -> None:
    sneaky = {"channel": "sms", "content": {"text": source}}
    body = problem(await writer.put("/v1/templates/x", json=sneaky), 422, "invalid-template")
    assert body["errors"][0]["pointer"] == "/content/text"


@pytest.mark.parametrize(
    ("template", "pointer"),
    [
        ({"channel": "email", "content": {"subject": "s", "html": "h"}}, "/content/text"),
        ({"channel": "sms", "content": {"text": "t", "subject": "s"}}, "/content/subject"),
        ({"channel": "push", "content": {"title": "t", "body": 3}}, "/content/body"),
    ],
    ids=["missing-part", "unknown-part", "not-text"],
)
async def test_content_that_is_not_its_channels_is_refused(
    writer: httpx.AsyncClient, template: dict, pointer: str
) -> None:
    body = problem(await writer.put("/v1/templates/x", json=template), 422, "invalid-template")
    assert body["errors"][0]["pointer"] == pointer


async def test_an_unknown_channel_is_refused(writer: httpx.AsyncClient) -> None:
    response = await writer.put("/v1/templates/x", json={"channel": "fax", "content": {}})
    problem(response, 422, "invalid-request")


async def test_preview_renders_for_the_sample_buyer(
    reader: httpx.AsyncClient, writer: httpx.AsyncClient
) -> None:
    await writer.put("/v1/templates/thanks", json=EMAIL)
    response = await reader.post("/v1/templates/thanks/preview", json={})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["channel"], body["version"], body["profile_id"]) == ("email", 1, None)
    assert body["rendered"]["subject"] == "Your 3 orders"
    assert "14970.00 so far" in body["rendered"]["html"]


async def test_preview_renders_for_a_chosen_buyer(
    reader: httpx.AsyncClient, writer: httpx.AsyncClient, sqlite_url: str
) -> None:
    store = open_store(sqlite_url)
    try:
        async with store.unit_of_work() as uow:
            (buyer,) = (await uow.profiles.resolve([{"id": "c-1"}], T0)).profiles
            buyer.orders_count, buyer.revenue_total = 7, Decimal("700.00")
            await uow.profiles.save([buyer], T0)
            await uow.commit()
    finally:
        await store.close()
    await writer.put("/v1/templates/thanks", json=EMAIL)
    body = (await reader.post("/v1/templates/thanks/preview", json={"profile_id": buyer.id})).json()
    assert body["profile_id"] == buyer.id
    assert body["rendered"]["subject"] == "Your 7 orders"
    missing = await reader.post("/v1/templates/thanks/preview", json={"profile_id": "nobody"})
    problem(missing, 404, "not-found")


async def test_preview_takes_trigger_properties_or_shows_sample_ones(
    reader: httpx.AsyncClient, writer: httpx.AsyncClient
) -> None:
    await writer.put("/v1/templates/cart", json=PUSH)
    sample = (await reader.post("/v1/templates/cart/preview", json={})).json()
    assert sample["rendered"]["body"] == "[items_count] items wait for you"
    given = (
        await reader.post("/v1/templates/cart/preview", json={"trigger": {"items_count": 3}})
    ).json()
    assert given["rendered"] == {
        "title": "Your cart",
        "body": "3 items wait for you",
        "deep_link": "shop://cart",
    }


async def test_preview_of_an_unsaved_draft_renders_it_and_shows_its_faults(
    reader: httpx.AsyncClient,
) -> None:
    draft = await reader.post("/v1/templates/new-one/preview", json=SMS)
    assert draft.status_code == 200, draft.text
    assert draft.json()["rendered"]["text"] == "Come back: 3 orders"
    broken = await reader.post(
        "/v1/templates/new-one/preview", json={"channel": "sms", "content": {"text": "{{ x.y }}"}}
    )
    problem(broken, 422, "invalid-template")
    problem(await reader.post("/v1/templates/nothing/preview", json={}), 404, "not-found")


async def test_templates_need_their_scopes(
    nobody: httpx.AsyncClient, reader: httpx.AsyncClient, events_only: httpx.AsyncClient
) -> None:
    problem(await nobody.get("/v1/templates"), 401, "unauthorized")
    problem(await nobody.post("/v1/templates/x/preview", json={}), 401, "unauthorized")
    problem(await events_only.get("/v1/templates/x"), 403, "forbidden")
    problem(await events_only.post("/v1/templates/x/preview", json={}), 403, "forbidden")
    problem(await reader.put("/v1/templates/x", json=SMS), 403, "forbidden")
    problem(await nobody.put("/v1/templates/x", json=SMS), 401, "unauthorized")


SLOW = (
    "{% set s = 'x' * 1000 %}"
    "{% for a in s %}{% for b in s %}{% for c in s %}{% endfor %}{% endfor %}{% endfor %}"
)
"""A billion loop steps: no up-front rule refuses it; the renderer's time limit stops it."""


@pytest.mark.parametrize(
    ("source", "limit"),
    [
        ("{{ (10**(10**7)) % 7 }}", "time"),
        ("{{ 'x' * 2*10**7 }}", "output"),
        (
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
            "time",
        ),
        (SLOW, "time"),
        ("{% for i in range(1000) %}{{ i }}{% endfor %}", "output"),
    ],
    ids=["huge-power", "huge-repetition", "nested-ranges", "slow-loop", "long-output"],
)
async def test_a_template_over_a_render_limit_is_not_saved(
    writer: httpx.AsyncClient, source: str, limit: str
) -> None:
    hostile = {"channel": "sms", "content": {"text": source}}
    answer = await writer.put("/v1/templates/costly", json=hostile)
    body = problem(answer, 422, "template-too-costly")
    assert body["errors"][0]["limit"] == limit
    assert body["errors"][0]["pointer"] in ("/content/text", "/content")
    assert (await writer.get("/v1/templates/costly")).status_code == 404


async def test_a_preview_over_a_render_limit_is_refused_and_says_which_limit(
    reader: httpx.AsyncClient,
) -> None:
    power = {"channel": "sms", "content": {"text": "{{ (10**(10**7)) % 7 }}"}}
    body = problem(
        await reader.post("/v1/templates/x/preview", json=power), 422, "template-too-costly"
    )
    assert body["errors"][0] == {
        "pointer": "/content/text",
        "line": 1,
        "limit": "time",
        "detail": body["errors"][0]["detail"],
    }
    slow = {"channel": "email", "content": {**EMAIL["content"], "html": SLOW}}
    body = problem(
        await reader.post("/v1/templates/x/preview", json=slow), 422, "template-too-costly"
    )
    assert body["errors"][0]["limit"] == "time"
    assert "longer than 1 s" in body["detail"]
    big = {"channel": "email", "content": {**EMAIL["content"], "text": "{{ 'x' * 300000 }}"}}
    body = problem(
        await reader.post("/v1/templates/x/preview", json=big), 422, "template-too-costly"
    )
    assert body["errors"][0]["limit"] == "output"
    assert body["errors"][0]["pointer"] == "/content/text"
    fine = await reader.post("/v1/templates/x/preview", json=SMS)
    assert fine.status_code == 200, fine.text


async def test_a_stored_template_over_a_limit_is_refused_at_preview(
    reader: httpx.AsyncClient, definitions: SqlDefinitions
) -> None:
    # Saved before renders were bounded: the preview refuses it as it is.
    await definitions.templates.put(
        "old", channel="sms", content={"text": SLOW}, expected_version=None
    )
    body = problem(
        await reader.post("/v1/templates/old/preview", json={}), 422, "template-too-costly"
    )
    assert body["errors"][0]["limit"] == "time"


async def test_with_no_render_worker_a_save_or_preview_is_a_503_to_retry(
    writer: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seen: a worker that did not start answered 500.
    monkeypatch.setattr("shared.adapters.rendering.sys.executable", "/bin/false")
    for sent in (
        writer.post("/v1/templates/x/preview", json=SMS),
        writer.put("/v1/templates/x", json=SMS),
    ):
        response = await sent
        problem(response, 503, "renderer-unavailable")
        assert response.headers["retry-after"] == "5"
    assert (await writer.get("/v1/templates/x")).status_code == 404
