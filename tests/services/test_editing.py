"""Saving and previewing definitions without HTTP: the editors the console's API and pages
both call, over stored definitions in a real SQLite file and the inline renderer. What
each refuses says where (a rule's node, a template's part and line, a campaign's field),
a bad definition is told before a stale version, and campaigns may name what the
catalogue has in force, as the dispatcher sends."""

from __future__ import annotations

from typing import Any

import pytest

from services.catalogue import Catalogue, editing
from services.catalogue.editing import (
    PREVIEW_KEY,
    CampaignEditor,
    ChannelRequired,
    InvalidCampaign,
    InvalidRule,
    InvalidTemplate,
    NotFound,
    ReadOnly,
    SegmentEditor,
    TemplateEditor,
)
from shared.adapters.rendering import InlineRenderer
from shared.adapters.store.definitions import SqlDefinitions
from shared.domain.segments import BUILTIN_SEGMENTS
from shared.ports.definitions import StaleVersion
from tests.api.definitions_app import *  # noqa: F403 - the fixtures (definitions)
from tests.api.test_segments_api import seed_buyers
from tests.conftest import T0
from tests.services.test_stored_campaigns import TEMPLATE
from tests.services.test_stored_campaigns import WELCOME_BACK as CAMPAIGN

RULE = {"stat": "orders_count", "at_least": 2}


def create(current: int | None) -> int | None:
    """The version rule of a new definition: none may exist."""
    assert current is None, f"expected none, found version {current}"
    return None


def at(version: int) -> editing.Against:
    """The version rule of a change made against ``version``."""

    def against(current: int | None) -> int | None:
        if current != version:
            raise LookupError(f"made against {version}, current {current}")
        return version

    return against


def never(current: int | None) -> int | None:
    raise AssertionError("the version was asked of a definition that did not validate")


@pytest.fixture
def segments(definitions: SqlDefinitions) -> SegmentEditor:
    return SegmentEditor(definitions)


@pytest.fixture
def templates(definitions: SqlDefinitions) -> TemplateEditor:
    return TemplateEditor(definitions, InlineRenderer())


@pytest.fixture
def campaigns(definitions: SqlDefinitions) -> CampaignEditor:
    return CampaignEditor(definitions)


# --- segments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "pointer", "stage"),
    [
        ({"stat": "orders_count", "at_least": "two"}, "/at_least", "parse"),
        ({"all": [RULE, {"nope": 1}]}, "/all/1", "parse"),
        ({"bogus": True}, "", "parse"),
    ],
)
def test_a_rule_that_does_not_parse_is_refused_at_its_node_within_the_rule(
    rule: dict[str, Any], pointer: str, stage: str
) -> None:
    with pytest.raises(InvalidRule) as refused:
        SegmentEditor.parsed(rule)
    assert (refused.value.pointer, refused.value.stage) == (pointer, stage)
    assert refused.value.message


def test_a_rule_nested_too_deeply_is_refused_at_the_first_node_too_deep() -> None:
    rule: dict[str, Any] = RULE
    for _ in range(editing.MAX_DEPTH + 5):
        rule = {"not": rule}
    with pytest.raises(InvalidRule) as refused:
        SegmentEditor.parsed(rule)
    assert refused.value.stage == "depth"
    assert refused.value.pointer == "/not" * (editing.MAX_DEPTH + 1)
    assert str(editing.MAX_DEPTH) in refused.value.message


async def test_a_reference_to_an_unknown_segment_is_refused_at_the_reference(
    segments: SegmentEditor,
) -> None:
    with pytest.raises(InvalidRule) as refused:
        await segments.checked(PREVIEW_KEY, {"all": [RULE, {"segment": "nowhere"}]})
    assert (refused.value.pointer, refused.value.stage) == ("/all/1/segment", "link")


async def test_a_segment_closing_a_cycle_is_refused_and_the_first_one_stays(
    segments: SegmentEditor, definitions: SqlDefinitions
) -> None:
    await segments.save("b", name="B", description="", rule=RULE, against=create)
    await segments.save("a", name="A", description="", rule={"segment": "b"}, against=create)
    with pytest.raises(InvalidRule) as refused:
        await segments.save("b", name="B", description="", rule={"segment": "a"}, against=never)
    assert refused.value.stage == "link"
    stored = await definitions.segments.get("b")
    assert stored is not None
    assert stored.rule == RULE


async def test_a_segment_saved_says_whether_it_was_created_and_asks_the_version_after_checking(
    segments: SegmentEditor,
) -> None:
    first = await segments.save("repeat", name="Repeat", description="", rule=RULE, against=create)
    assert first.created
    assert first.definition.version == 1
    with pytest.raises(InvalidRule):
        await segments.save("repeat", name="Repeat", description="", rule={}, against=never)
    changed = await segments.save(
        "repeat", name="Repeat buyers", description="", rule=RULE, against=at(1)
    )
    assert not changed.created
    assert (changed.definition.version, changed.definition.name) == (2, "Repeat buyers")


async def test_a_save_that_lost_the_race_raises_the_stores_stale_version(
    segments: SegmentEditor,
) -> None:
    await segments.save("repeat", name="Repeat", description="", rule=RULE, against=create)
    with pytest.raises(StaleVersion):
        await segments.save(
            "repeat", name="Repeat", description="", rule=RULE, against=lambda _current: 7
        )


async def test_a_built_in_segment_is_read_only_and_an_unknown_one_is_not_found(
    segments: SegmentEditor, definitions: SqlDefinitions
) -> None:
    builtin = BUILTIN_SEGMENTS[0].key
    with pytest.raises(ReadOnly):
        await segments.save(builtin, name="Mine", description="", rule=RULE, against=never)
    with pytest.raises(ReadOnly):
        await segments.archive(builtin, never)
    with pytest.raises(NotFound, match="no segment nowhere"):
        await segments.archive("nowhere", never)
    assert await definitions.segments.get(builtin) is None


async def test_an_archived_segment_is_a_new_version_and_no_longer_linkable(
    segments: SegmentEditor,
) -> None:
    await segments.save("repeat", name="Repeat", description="", rule=RULE, against=create)
    archived = await segments.archive("repeat", at(1))
    assert archived.version == 2
    assert archived.archived_at is not None
    with pytest.raises(InvalidRule):
        await segments.checked(PREVIEW_KEY, {"segment": "repeat"})


async def test_a_preview_counts_the_whole_small_base_and_samples_at_most_the_size_asked(
    segments: SegmentEditor, sqlite_url: str
) -> None:
    await seed_buyers(
        sqlite_url, [(f"p{i}@shop.ru", f"+7916300{i:04d}", 2 if i < 7 else 0) for i in range(10)]
    )
    found = await segments.preview(await segments.checked(PREVIEW_KEY, RULE), T0, sample_size=3)
    assert (found.size, found.base, found.scanned, found.margin) == (7, 10, None, None)
    assert len(found.sample) == 3
    assert all(p.orders_count == 2 for p in found.sample)
    fields = found.fields(lambda p: {"id": p.id})
    assert fields["as_of"] == T0
    assert "estimated" not in fields


async def test_a_preview_of_a_base_larger_than_it_reads_is_an_estimate_with_a_margin(
    segments: SegmentEditor, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(editing, "PREVIEW_BATCH", 4)
    monkeypatch.setattr(editing, "PREVIEW_SCAN", 4)
    await seed_buyers(
        sqlite_url, [(f"q{i}@shop.ru", f"+7916400{i:04d}", 2 * (i % 2)) for i in range(12)]
    )
    found = await segments.preview(await segments.checked(PREVIEW_KEY, RULE), T0, sample_size=10)
    assert (found.base, found.scanned) == (12, 4)
    assert found.margin is not None
    assert found.margin >= 1
    assert 0 <= found.size <= 12
    assert found.fields(lambda p: {})["estimated"] is True


# --- templates ---------------------------------------------------------------------------


async def test_a_template_that_does_not_render_is_refused_at_its_part_and_line_unsaved(
    templates: TemplateEditor, definitions: SqlDefinitions
) -> None:
    content = {**TEMPLATE, "html": "<p>fine</p>\n{{ unclosed"}
    with pytest.raises(InvalidTemplate) as refused:
        await templates.save("thanks", channel="email", content=content, against=never)
    assert refused.value.pointer == "/content/html"
    assert refused.value.line == 2
    assert refused.value.limit is None
    assert await definitions.templates.get("thanks") is None


async def test_a_template_over_a_render_limit_names_the_limit(templates: TemplateEditor) -> None:
    with pytest.raises(InvalidTemplate) as refused:
        await templates.render("sms", {"text": "{{ (10**(10**7)) % 7 }}"})
    assert refused.value.limit == "time"
    assert refused.value.pointer == "/content/text"


async def test_a_template_saved_renders_for_a_buyer_and_a_draft_needs_its_channel(
    templates: TemplateEditor, sqlite_url: str
) -> None:
    saved = await templates.save("thanks", channel="email", content=TEMPLATE, against=create)
    assert saved.created
    (buyer,) = await seed_buyers(sqlite_url, [("r@shop.ru", "+79165000001", 3)])
    found = await templates.preview("thanks", profile_id=buyer)
    assert (found.version, found.channel, found.profile_id) == (1, "email", buyer)
    assert found.rendered["subject"] == TEMPLATE["subject"]
    draft = await templates.preview(
        "thanks", channel="sms", content={"text": "{{ customer.orders_count }} orders"}
    )
    assert (draft.version, draft.channel, draft.profile_id) == (None, "sms", None)
    assert draft.rendered["text"].endswith(" orders")
    with pytest.raises(ChannelRequired):
        await templates.preview("unsaved", content={"text": "hi"})
    with pytest.raises(NotFound, match="no buyer nobody"):
        await templates.preview("thanks", profile_id="nobody")
    with pytest.raises(NotFound, match="no template unsaved"):
        await templates.preview("unsaved")


# --- campaigns ---------------------------------------------------------------------------


async def test_a_campaign_may_name_only_a_template_in_force_as_the_dispatcher_sends(
    campaigns: CampaignEditor, definitions: SqlDefinitions
) -> None:
    with pytest.raises(InvalidCampaign) as refused:
        await campaigns.save("first-order-thanks", CAMPAIGN, never)
    assert refused.value.pointer == "/templates/email"
    await definitions.templates.put(
        "first-order-thanks",
        channel="email",
        content={**TEMPLATE, "html": "{{ unclosed"},
        expected_version=None,
    )
    with pytest.raises(InvalidCampaign, match="/templates/email"):
        await campaigns.save("first-order-thanks", CAMPAIGN, never)
    await definitions.templates.put(
        "first-order-thanks", channel="email", content=TEMPLATE, expected_version=1
    )
    saved = await campaigns.save("first-order-thanks", CAMPAIGN, create)
    assert saved.created
    assert saved.definition.status == "draft"
    segments, templates = await campaigns.nameable()
    assert {s.key for s in BUILTIN_SEGMENTS} <= segments
    assert "first-order-thanks" in templates["email"]


async def test_a_campaign_saved_again_keeps_its_status_unless_the_document_names_one(
    campaigns: CampaignEditor,
) -> None:
    ready = {**campaigns.ready_made["win-back-30d"].to_dict(), "key": "win-back-copy"}
    del ready["status"]
    first = await campaigns.save("win-back-copy", ready, create)
    assert first.definition.status == "draft"
    active = await campaigns.set_status("win-back-copy", "active", at(1))
    assert active.status == "active"
    again = await campaigns.save("win-back-copy", {**ready, "priority": 7}, at(2))
    assert (again.definition.status, again.definition.definition["priority"]) == ("active", 7)
    paused = await campaigns.save("win-back-copy", {**ready, "status": "paused"}, at(3))
    assert paused.definition.status == "paused"


async def test_a_ready_made_campaign_is_stored_by_its_activation_and_listed_once(
    campaigns: CampaignEditor,
) -> None:
    before = {c["key"]: c for c in await campaigns.listed()}
    assert before["welcome-lead"]["builtin"]
    assert before["welcome-lead"]["version"] is None
    stored = await campaigns.set_status("welcome-lead", "active", create)
    assert (stored.version, stored.status) == (1, "active")
    after = [c for c in await campaigns.listed() if c["key"] == "welcome-lead"]
    assert [(c["builtin"], c["version"]) for c in after] == [(False, 1)]
    found, definition = await campaigns.find("welcome-lead")
    assert found is not None
    assert definition is not None


async def test_an_unknown_campaign_is_not_found(campaigns: CampaignEditor) -> None:
    campaign, stored = await campaigns.find("nowhere")
    assert (campaign, stored) == (None, None)
    with pytest.raises(NotFound, match="no campaign nowhere"):
        campaigns.document("nowhere", campaign, stored)
    with pytest.raises(NotFound):
        await campaigns.set_status("nowhere", "active", never)


async def test_the_console_and_the_dispatcher_can_share_one_catalogue(
    definitions: SqlDefinitions,
) -> None:
    catalogue = Catalogue(definitions)
    editor = CampaignEditor(definitions, catalogue)
    assert editor.catalogue is catalogue
    await definitions.segments.put(
        "repeat", name="Repeat", description="", rule=RULE, expected_version=None
    )
    segments, _templates = await editor.nameable()
    assert "repeat" in segments, "a segment saved is nameable at once"
    assert "repeat" in {s.key for s in catalogue.segments}
