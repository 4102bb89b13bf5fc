"""The catalogue of definitions in force, over stored definitions in a real SQLite file:
stored ones overlay the ready-made ones, one that does not validate is left out (and the
others stay), a refresh loads only when a stamp moved, and what may send and what may
convert are the same campaigns but for those that can no longer send."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.catalogue import Catalogue
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.engine import create_engine
from shared.domain.campaigns import BUILTIN_CAMPAIGNS
from shared.domain.segments import BUILTIN_SEGMENTS
from tests.services.test_stored_campaigns import TEMPLATE
from tests.services.test_stored_campaigns import WELCOME_BACK as CAMPAIGN

RULE = {"stat": "orders_count", "at_least": 2}


@pytest.fixture
async def definitions(sqlite_url: str, clock: SimulatedClock) -> AsyncIterator[SqlDefinitions]:
    definitions = SqlDefinitions(create_engine(sqlite_url), clock=clock)
    yield definitions
    await definitions.close()


async def _template(definitions: SqlDefinitions, content: dict[str, str] = TEMPLATE) -> None:
    current = await definitions.templates.get("first-order-thanks")
    await definitions.templates.put(
        "first-order-thanks",
        channel="email",
        content=content,
        expected_version=current.version if current else None,
    )


async def test_without_stored_definitions_the_ready_made_ones_are_in_force() -> None:
    catalogue = Catalogue(None)
    assert not await catalogue.refresh()
    assert not await catalogue.refresh_campaigns()
    assert not await catalogue.refresh_segments()
    assert catalogue.campaigns == BUILTIN_CAMPAIGNS
    assert {s.key for s in catalogue.segments} == {s.key for s in BUILTIN_SEGMENTS}
    assert set(await catalogue.attributable()) == {c.key for c in BUILTIN_CAMPAIGNS}


async def test_a_stored_campaign_joins_the_ready_made_ones_once_its_template_exists(
    definitions: SqlDefinitions,
) -> None:
    catalogue = Catalogue(definitions)
    await _template(definitions)
    await definitions.campaigns.put(
        "first-order-thanks", definition=CAMPAIGN, status="active", expected_version=None
    )
    assert await catalogue.refresh_campaigns()
    keys = [c.key for c in catalogue.campaigns]
    assert keys == [*(c.key for c in BUILTIN_CAMPAIGNS), "first-order-thanks"]
    assert "first-order-thanks" in catalogue.templates.email
    assert not await catalogue.refresh_campaigns(), "nothing moved: nothing loaded"


async def test_a_template_that_does_not_render_is_left_out_with_the_campaigns_naming_it(
    definitions: SqlDefinitions,
) -> None:
    await _template(definitions)
    await definitions.campaigns.put(
        "first-order-thanks", definition=CAMPAIGN, status="active", expected_version=None
    )
    catalogue = Catalogue(definitions)
    await catalogue.refresh_campaigns()
    await _template(definitions, {**TEMPLATE, "html": "{{ unclosed"})
    assert await catalogue.refresh_campaigns()
    assert "first-order-thanks" not in catalogue.templates.email
    assert "first-order-thanks" not in {c.key for c in catalogue.campaigns}
    assert {c.key for c in BUILTIN_CAMPAIGNS} <= {c.key for c in catalogue.campaigns}
    # Its messages sent before still convert: attribution still knows the campaign.
    assert "first-order-thanks" in await catalogue.attributable()


async def test_an_archived_campaign_stops_sending_and_still_converts(
    definitions: SqlDefinitions,
) -> None:
    await _template(definitions)
    stored = await definitions.campaigns.put(
        "first-order-thanks", definition=CAMPAIGN, status="active", expected_version=None
    )
    await definitions.campaigns.archive("first-order-thanks", stored.version)
    catalogue = Catalogue(definitions)
    await catalogue.refresh_campaigns()
    assert "first-order-thanks" not in {c.key for c in catalogue.campaigns}
    assert "first-order-thanks" in await catalogue.attributable()


async def test_stored_segments_link_and_archived_ones_are_named(
    definitions: SqlDefinitions,
) -> None:
    catalogue = Catalogue(definitions)
    assert not catalogue.segments_loaded
    await definitions.segments.put(
        "repeat", name="Repeat", description="", rule=RULE, expected_version=None
    )
    await definitions.segments.put(
        "repeat-new",
        name="Repeat and new",
        description="",
        rule={"all": [{"segment": "repeat"}, {"segment": "lifecycle-new"}]},
        expected_version=None,
    )
    gone = await definitions.segments.put(
        "gone", name="Gone", description="", rule=RULE, expected_version=None
    )
    await definitions.segments.archive("gone", gone.version)
    assert await catalogue.refresh_segments()
    assert catalogue.segments_loaded
    keys = {s.key for s in catalogue.segments}
    assert {"repeat", "repeat-new"} <= keys
    assert "gone" not in keys
    assert catalogue.archived_segments == ("gone",)
    assert not await catalogue.refresh_segments()


async def test_a_stored_segment_may_not_shadow_a_built_in(definitions: SqlDefinitions) -> None:
    builtin = BUILTIN_SEGMENTS[0]
    await definitions.segments.put(
        builtin.key, name="Mine", description="", rule=RULE, expected_version=None
    )
    catalogue = Catalogue(definitions)
    await catalogue.refresh_segments()
    (kept,) = [s for s in catalogue.segments if s.key == builtin.key]
    assert kept.name == builtin.name


async def test_one_refresh_loads_segments_templates_and_campaigns_once(
    definitions: SqlDefinitions,
) -> None:
    catalogue = Catalogue(definitions)
    await _template(definitions)
    assert await catalogue.refresh(), "the first look loads"
    assert not await catalogue.refresh(), "nothing moved: nothing loaded"
    await definitions.segments.put(
        "repeat-buyers", name="Repeat buyers", description="", rule=RULE, expected_version=None
    )
    assert await catalogue.refresh()
    assert "repeat-buyers" in {s.key for s in catalogue.segments}
    assert "first-order-thanks" in catalogue.templates.email
