"""The marketer's pages as a browser gets them (htmx fragments included): segments,
templates, the dashboard's KPIs, customers; what an analyst may and may not do; and
``GET /v1/kpis`` with its filters."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from html import unescape

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from services.catalogue import editing
from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema
from shared.adapters.store.api_keys import SqlApiKeys
from shared.adapters.store.console_queries import SqlConsoleQueries
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.engine import open_store
from tests.api.console_fixtures import *  # noqa: F403 - the fixtures
from tests.support.console_app import (
    Base,
    session_client,
)

HTML = {"Accept": "text/html"}
HTMX = {"HX-Request": "true"}
REPEAT_RULE = {"stat": "orders_count", "at_least": 2}


@pytest.fixture
async def marketer(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with session_client(app, "olga") as client:
        yield client


@pytest.fixture
async def analyst(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with session_client(app, "ivan") as client:
        yield client


def text_of(page: httpx.Response) -> str:
    """The page's text without tags, entities read: what a person sees."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", page.text)))


@pytest.fixture(params=["olga", "ivan"], ids=["marketer", "analyst"])
async def anyone(app: FastAPI, request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    async with session_client(app, request.param) as client:
        yield client


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/segments",
        "/segments/_new",
        "/segments/lifecycle-loyal",
        "/templates",
        "/templates/_new?channel=sms",
        "/customers",
        "/dashboard/kpis",
    ],
)
async def test_every_page_renders_for_marketers_and_analysts(
    anyone: httpx.AsyncClient, path: str
) -> None:
    page = await anyone.get(path, headers=HTML)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")


async def test_the_segments_list_shows_built_in_and_stored_segments_with_sizes(
    marketer: httpx.AsyncClient, definitions: SqlDefinitions
) -> None:
    await definitions.segments.put(
        "north-regulars",
        name="North regulars",
        description="",
        rule=REPEAT_RULE,
        expected_version=None,
    )
    page = await marketer.get("/segments", headers=HTML)
    assert 'data-segment="lifecycle-loyal"' in page.text
    row = re.search(r'data-segment="lifecycle-loyal">(.*?)</tr>', page.text, re.S)
    assert row
    assert re.search(r'class="num">1</td>', row.group(1)), "Anna is in it"
    assert 'data-segment="north-regulars"' in page.text
    assert "v1" in page.text


async def test_the_preview_shows_an_unsaved_rules_size_and_a_masked_sample(
    analyst: httpx.AsyncClient,
) -> None:
    answer = await analyst.post(
        "/segments/_preview", data={"rule": json.dumps(REPEAT_RULE)}, headers=HTMX
    )
    assert answer.status_code == 200
    size = re.search(r'id="preview-size">(\d+)<', answer.text)
    assert size
    assert size.group(1) == "7", "Anna and six of the other twelve ordered twice"
    assert "of 13 match now" in text_of(answer)
    assert "a***@shop.ru" in answer.text
    assert "anna@shop.ru" not in answer.text


async def test_a_bad_rule_is_shown_at_its_bad_node(analyst: httpx.AsyncClient) -> None:
    rule = {"all": [{"stat": "orders_count", "at_least": 2}, {"stat": "shoe_size", "at_least": 1}]}
    answer = await analyst.post("/segments/_preview", data={"rule": json.dumps(rule)}, headers=HTMX)
    assert 'id="rule-error"' in answer.text
    marked = re.search(
        r'<mark class="bad-node" id="bad-node" data-pointer="([^"]+)">(.*?)</mark>',
        answer.text,
        re.S,
    )
    assert marked, answer.text
    assert marked.group(1).startswith("/all/1")
    assert "shoe_size" in unescape(marked.group(2))
    assert "orders_count" not in unescape(marked.group(2)), "only the bad node is marked"


async def test_a_rule_built_on_another_segment_is_sized_and_an_unknown_one_shown_at_its_node(
    analyst: httpx.AsyncClient,
) -> None:
    on_leads = {"not": {"segment": "lifecycle-lead"}}
    answer = await analyst.post(
        "/segments/_preview", data={"rule": json.dumps(on_leads)}, headers=HTMX
    )
    assert answer.status_code == 200
    assert 'id="preview-size"' in answer.text

    unknown = {"all": [{"stat": "orders_count", "at_least": 2}, {"segment": "no-such"}]}
    answer = await analyst.post(
        "/segments/_preview", data={"rule": json.dumps(unknown)}, headers=HTMX
    )
    assert 'id="rule-error"' in answer.text
    marked = re.search(r'data-pointer="([^"]+)"', answer.text)
    assert marked
    assert marked.group(1).startswith("/all/1")


async def test_a_json_typo_is_shown_with_its_line_and_column(analyst: httpx.AsyncClient) -> None:
    answer = await analyst.post(
        "/segments/_preview",
        data={"rule": '{\n  "stat": "orders_count",\n  at_least: 2\n}'},
        headers=HTMX,
    )
    assert "line 3, column 3" in text_of(answer)


async def test_a_marketer_saves_a_segment_and_a_stale_save_is_refused(
    marketer: httpx.AsyncClient, definitions: SqlDefinitions
) -> None:
    form = {"key": "regulars", "name": "Regulars", "rule": json.dumps(REPEAT_RULE)}
    created = await marketer.post("/segments/_new", data=form, headers=HTML)
    assert created.status_code == 303
    assert created.headers["location"] == "/segments/regulars?saved=1"
    edit = await marketer.get("/segments/regulars?saved=1", headers=HTML)
    assert "Saved as version 1." in edit.text
    assert 'name="version" value="1"' in edit.text

    changed = {**form, "rule": json.dumps({"stat": "orders_count", "at_least": 3}), "version": "1"}
    assert (await marketer.post("/segments/regulars", data=changed)).status_code == 303
    stale = await marketer.post("/segments/regulars", data={**changed, "name": "Mine"})
    assert stale.status_code == 412
    assert "changed meanwhile" in stale.text or "current: 2" in stale.text
    found = await definitions.segments.get("regulars")
    assert found is not None
    assert (found.version, found.name) == (2, "Regulars"), "the colleague's change stands"


async def test_a_segment_whose_rule_does_not_parse_is_not_saved(
    marketer: httpx.AsyncClient, definitions: SqlDefinitions
) -> None:
    form = {"key": "broken", "name": "Broken", "rule": json.dumps({"stat": "nope"})}
    answer = await marketer.post("/segments/_new", data=form, headers=HTML)
    assert answer.status_code == 422
    assert "does not parse" in answer.text
    assert await definitions.segments.get("broken") is None


async def test_an_analyst_cannot_save_a_segment_or_a_template(
    analyst: httpx.AsyncClient, definitions: SqlDefinitions
) -> None:
    editor = await analyst.get("/segments/_new", headers=HTML)
    assert "saving needs the marketer role" in editor.text
    assert ">Save</button>" not in editor.text
    segment = {"key": "mine", "name": "Mine", "rule": json.dumps(REPEAT_RULE)}
    template = {"key": "mine", "channel": "sms", "text": "Hello"}
    for path, form in (("/segments/_new", segment), ("/templates/_new", template)):
        answer = await analyst.post(path, data=form)
        assert answer.status_code == 403
    assert await definitions.segments.get("mine") is None
    assert await definitions.templates.get("mine") is None
    assert (await analyst.post("/segments/_snapshot")).status_code == 403


async def test_todays_sizes_are_recorded_and_drawn_over_time(
    marketer: httpx.AsyncClient, queries: SqlConsoleQueries, clock: SimulatedClock
) -> None:
    from datetime import timedelta  # noqa: PLC0415

    await queries.snapshot_segment_sizes(clock.now().date() - timedelta(days=1), clock.now())
    answer = await marketer.post("/segments/_snapshot")
    assert answer.status_code == 303
    listing = await marketer.get("/segments", headers=HTML)
    assert '<svg class="spark"' in listing.text
    page = await marketer.get("/segments/lifecycle-loyal", headers=HTML)
    history = re.search(r'id="size-history">(.*?)</script>', page.text, re.S)
    assert history
    assert [point["size"] for point in json.loads(history.group(1))] == [1, 1]
    assert "/static/vendor/chart.umd.min.js" in page.text
    chart = await marketer.get("/static/vendor/chart.umd.min.js")
    assert chart.status_code == 200
    assert "Chart.js v4" in chart.text[:200]


async def test_an_email_preview_is_rendered_in_a_sandboxed_frame_for_a_picked_buyer(
    analyst: httpx.AsyncClient, base: Base
) -> None:
    draft = {
        "channel": "email",
        "subject": "{{ customer.orders_count }} orders, thank you",
        "html": "<p>You ordered {{ customer.orders_count }} times</p><script>alert(1)</script>",
        "text": "You ordered {{ customer.orders_count }} times",
        "buyer": "Anna@Shop.ru",
    }
    answer = await analyst.post("/templates/_preview", data=draft, headers=HTMX)
    assert answer.status_code == 200
    frame = re.search(
        r'<iframe class="email" id="preview-email" sandbox="" srcdoc="([^"]*)"', answer.text
    )
    assert frame, answer.text
    assert "You ordered 4 times" in unescape(frame.group(1))
    assert "<script>" not in answer.text.replace(frame.group(1), ""), "only inside the frame"
    assert "4 orders, thank you" in answer.text
    assert f"/customers/{base.anna}" in answer.text


async def test_an_sms_preview_counts_its_length_and_segments(analyst: httpx.AsyncClient) -> None:
    latin = await analyst.post(
        "/templates/_preview", data={"channel": "sms", "text": "x" * 161}, headers=HTMX
    )
    assert "161 characters (GSM-7)" in text_of(latin)
    assert "2 segments" in text_of(latin)
    cyrillic = await analyst.post(
        "/templates/_preview", data={"channel": "sms", "text": "Привет"}, headers=HTMX
    )
    assert "6 UTF-16 units (UCS-2)" in text_of(cyrillic)
    assert "1 segment" in text_of(cyrillic)


async def test_a_push_preview_shows_title_body_and_deep_link(analyst: httpx.AsyncClient) -> None:
    answer = await analyst.post(
        "/templates/_preview",
        data={
            "channel": "push",
            "title": "Hi",
            "body": "{{ customer.orders_count }} orders",
            "deep_link": "shop://basket",
        },
        headers=HTMX,
    )
    assert 'id="preview-title">Hi<' in answer.text
    assert "3 orders" in answer.text, "the sample buyer has 3"
    assert "shop://basket" in answer.text


async def test_a_template_error_is_shown_with_its_part_and_line(analyst: httpx.AsyncClient) -> None:
    answer = await analyst.post(
        "/templates/_preview",
        data={
            "channel": "email",
            "subject": "Hi",
            "text": "x",
            "html": "<p>one</p>\n<p>{{ customer.orders_count + }}</p>",
        },
        headers=HTMX,
    )
    assert 'id="template-errors"' in answer.text
    assert "html, line 2:" in text_of(answer)


async def test_a_marketer_saves_a_template_from_the_editor(
    marketer: httpx.AsyncClient, definitions: SqlDefinitions
) -> None:
    form = {"key": "hello-sms", "channel": "sms", "text": "Hello, {{ customer.orders_count }}"}
    created = await marketer.post("/templates/_new", data=form)
    assert created.status_code == 303
    page = await marketer.get("/templates/hello-sms", headers=HTML)
    assert 'name="version" value="1"' in page.text
    bad = await marketer.post(
        "/templates/hello-sms", data={**form, "text": "{% if %}", "version": "1"}, headers=HTML
    )
    assert bad.status_code == 422
    stored = await definitions.templates.get("hello-sms")
    assert stored is not None
    assert stored.version == 1


async def test_the_ready_made_templates_are_listed_edited_and_reset_from_the_pages(
    marketer: httpx.AsyncClient, definitions: SqlDefinitions
) -> None:
    # Seen: "No template yet" while three active campaigns sent the ready-made ones.
    listing = await marketer.get("/templates", headers=HTML)
    row = re.search(r'<tr data-template="pre-churn-sms">.*?</tr>', listing.text, re.S)
    assert row is not None, "the ready-made SMS is listed"
    assert "ready-made" in text_of_html(row.group(0))
    assert "No template yet" not in listing.text
    page = await marketer.get("/templates/pre-churn-sms", headers=HTML)
    assert "We miss you! 15% off" in page.text
    assert "Reset to ready-made" not in page.text, "as shipped: nothing to reset"
    form = {"channel": "sms", "text": "Come back: STAY15. {{ unsubscribe_url }}"}
    saved = await marketer.post("/templates/pre-churn-sms", data=form)
    assert saved.status_code == 303, saved.text
    page = await marketer.get("/templates/pre-churn-sms", headers=HTML)
    assert "Come back: STAY15." in page.text
    assert "Reset to ready-made" in page.text
    stale = await marketer.post("/templates/pre-churn-sms/_reset", data={"version": "7"})
    assert stale.status_code == 412
    reset = await marketer.post("/templates/pre-churn-sms/_reset", data={"version": "1"})
    assert reset.status_code == 303
    page = await marketer.get(reset.headers["location"], headers=HTML)
    assert "Back to the shipped text" in page.text
    assert "We miss you! 15% off" in page.text
    stored = await definitions.templates.get("pre-churn-sms")
    assert stored is not None
    assert stored.archived_at is not None


def text_of_html(fragment: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", fragment)))


async def test_the_dashboard_shows_kpis_the_heat_map_and_the_rfm_grid(
    analyst: httpx.AsyncClient,
) -> None:
    page = await analyst.get("/", headers=HTML)
    assert 'hx-get="/dashboard/kpis"' in page.text
    kpis = await analyst.get("/dashboard/kpis", headers=HTMX)
    assert 'id="cohorts"' in kpis.text
    assert re.findall(r'data-cohort="([\d-]+)"', kpis.text) == ["2025-12", "2026-01", "2026-02"]
    assert 'id="rfm-grid"' in kpis.text
    assert len(re.findall(r'data-r="\d" data-fm="\d"', kpis.text)) == 25
    assert "customer equity" in kpis.text
    stores = await analyst.get("/dashboard/kpis?store=st-1", headers=HTMX)
    assert "match the filter" in text_of(stores)


async def test_a_buyer_is_looked_up_and_shown_masked_to_a_marketer(
    marketer: httpx.AsyncClient, base: Base
) -> None:
    found = await marketer.get("/customers", params={"kind": "phone", "value": "8 916 123-45-67"})
    assert found.status_code == 303
    assert found.headers["location"] == f"/customers/{base.anna}"
    page = await marketer.get(found.headers["location"], headers=HTML)
    assert 'id="phone">+7*******67<' in page.text
    assert "+79161234567" not in page.text
    assert "win-back" in page.text
    assert "held out" in page.text
    assert 'id="clv-interval">(interval 21000.00 – 29500.00)<' in page.text
    missing = await marketer.get("/customers", params={"kind": "email", "value": "x@y.ru"})
    assert missing.status_code == 404
    assert "No buyer with that email." in missing.text


async def test_the_customer_page_says_decisions_in_words_and_times_in_the_buyers_zone(
    marketer: httpx.AsyncClient,
    base: Base,
    queries: SqlConsoleQueries,
    sqlite_url: str,
    clock: SimulatedClock,
) -> None:
    # Seen: raw codes (capped_deferred) and UTC timestamps with microseconds.
    store = open_store(sqlite_url)
    try:
        async with store.unit_of_work() as uow:
            (anna,) = (await uow.profiles.resolve([{"id": "shop-1"}], clock.now())).profiles
            assert anna.id == base.anna
            anna.traits = {**anna.traits, "timezone": "Europe/Moscow"}
            await uow.profiles.save([anna], clock.now())
            await uow.commit()
    finally:
        await store.close()
    room = datetime(2026, 3, 2, 18, 30, 15, 123456, tzinfo=UTC)
    async with queries.engine.begin() as conn:
        await conn.execute(
            insert(schema.messages),
            [
                {
                    "key": "basket:anna",
                    "campaign": "monthly-basket",
                    "profile_id": base.anna,
                    "channel": "sms",
                    "occurrence_id": "o-3",
                    "status": "scheduled",
                    "reason": "capped_deferred",
                    "holdout": False,
                    "decision": [
                        {
                            "step": "caps",
                            "code": "capped_deferred",
                            "detail": f"the frequency caps leave room at {room.isoformat()}",
                        }
                    ],
                    "created_at": datetime(2026, 3, 1, 21, 5, tzinfo=UTC),
                    "scheduled_for": room,
                    "sent_at": None,
                }
            ],
        )
    page = await marketer.get(f"/customers/{base.anna}", headers=HTML)
    row = re.search(r'<tr data-message="basket:anna">.*?</tr>', page.text, re.S)
    assert row is not None
    seen = text_of_html(row.group(0))
    assert "deferred: the frequency caps leave room soon" in seen
    assert "frequency caps: deferred" in seen
    assert "capped_deferred" not in seen, "the code only as the tag's title"
    assert "2026-03-02 21:30" in seen, "18:30 UTC is 21:30 in Moscow"
    assert "2026-03-02 00:05" in seen, "created 21:05 UTC, past midnight in Moscow"
    assert ".123456" not in page.text
    assert "Europe/Moscow" in text_of(page)


async def test_the_kpi_endpoint_answers_the_dashboards_figures_filtered(
    app: FastAPI, api_keys: SqlApiKeys
) -> None:
    _key, secret = await api_keys.create("bi export", ["console:read"])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://console",
        headers={"Authorization": f"Bearer {secret}"},
    ) as bi:
        whole = (await bi.get("/v1/kpis")).json()
        north = (await bi.get("/v1/kpis", params={"region": "north", "group": "store"})).json()
        bad = await bi.get("/v1/kpis", params={"since": "2026-02-01", "until": "2026-01-01"})
    assert whole["buyers"] == 13
    assert whole["second_order"]["buyers"] == 7
    assert whole["second_order"]["rate"] == pytest.approx(7 / 13)
    assert [c["month"] for c in whole["cohorts"]] == ["2025-12", "2026-01", "2026-02"]
    assert whole["cohorts"][0]["active"][0] == whole["cohorts"][0]["buyers"] == 5
    assert whole["stores"] == ["st-1", "st-2"]
    assert whole["regions"] == ["north", "south"]
    assert sum(map(sum, whole["rfm_grid"]["counts"])) == 13
    assert north["filter"]["region"] == "north"
    assert north["buyers"] == 7, "Anna and the six odd-numbered others"
    assert set(north["groups"]["figures"]) == {"st-1", "st-2"}
    assert bad.status_code == 422


async def test_a_template_preview_cannot_reach_pythons_internals(
    analyst: httpx.AsyncClient,
) -> None:
    answer = await analyst.post(
        "/templates/_preview",
        data={"channel": "sms", "text": "{{ customer.__class__.__mro__ }}"},
        headers=HTMX,
    )
    assert 'id="template-errors"' in answer.text
    assert "names starting with _ are not allowed" in text_of(answer)


async def test_a_large_base_gets_an_estimate_while_the_marketer_types(
    analyst: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(editing, "PREVIEW_BATCH", 5)
    monkeypatch.setattr(editing, "PREVIEW_SCAN", 5)
    answer = await analyst.post(
        "/segments/_preview", data={"rule": json.dumps(REPEAT_RULE)}, headers=HTMX
    )
    seen = text_of(answer)
    assert "About" in seen
    assert "of 13 match now (±" in seen
    assert "Estimated from a random 5 buyers" in seen
    size = re.search(r'id="preview-size">(\d+)<', answer.text)
    assert size
    assert 0 <= int(size.group(1)) <= 13


async def test_a_template_over_a_render_limit_is_shown_in_the_preview_and_not_saved(
    analyst: httpx.AsyncClient, marketer: httpx.AsyncClient, definitions: SqlDefinitions
) -> None:
    huge = "Hi\n{{ (10**(10**7)) % 7 }}"
    answer = await analyst.post(
        "/templates/_preview", data={"channel": "sms", "text": huge}, headers=HTMX
    )
    assert 'id="template-errors"' in answer.text
    assert "text, line 2: over the render time limit" in text_of(answer)
    long = {"channel": "push", "title": "Hi", "body": "{{ 'x' * 10**7 }}"}
    answer = await analyst.post("/templates/_preview", data=long, headers=HTMX)
    assert "body, line 1: over the render output limit" in text_of(answer)

    form = {"key": "costly", "channel": "sms", "text": huge}
    refused = await marketer.post("/templates/_new", data=form, headers=HTML)
    assert refused.status_code == 422
    assert "over the render time limit" in text_of(refused)
    assert await definitions.templates.get("costly") is None
