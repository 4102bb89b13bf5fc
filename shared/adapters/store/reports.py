"""Campaign results on SQLAlchemy Core, PostgreSQL and SQLite alike: the messages a purchase
may convert, the ``conversions`` and ``message_responses`` rows, and a campaign's rows
for its report.

A conversion (a delivery report) is written with an insert that does nothing when its
(message, order) (its (message, response)) is there already, so recording the same
purchase or webhook twice keeps one row.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Select, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.adapters.store import schema as t
from shared.adapters.store.dialect import dialect_of
from shared.adapters.store.engine import create_engine
from shared.adapters.store.errors import connected
from shared.adapters.store.rows import from_row
from shared.domain.attribution import CampaignMessage, Conversion, MessageResponse
from shared.domain.programmes import BuyerOrder, EntryFacts, ProgrammeFacts

__all__ = ["SqlCampaignResults", "open_campaign_results"]


def _message(row: Any) -> CampaignMessage:
    return from_row(CampaignMessage, row, holdout=bool(row.holdout))


def _conversion(row: Any) -> Conversion:
    return from_row(Conversion, row, holdout=bool(row.holdout))


_CHUNK = 500
"""Values per ``IN (...)``: well under SQLite's and asyncpg's parameter limits."""


def _chunks(values: Sequence[str]) -> list[Sequence[str]]:
    return [values[n : n + _CHUNK] for n in range(0, len(values), _CHUNK)]


def _messages() -> Select[Any]:
    m = t.messages
    return select(
        m.c.key,
        m.c.campaign,
        m.c.profile_id,
        m.c.holdout,
        m.c.status,
        m.c.reason,
        m.c.created_at,
        m.c.sent_at,
    )


class SqlCampaignResults:
    """A :class:`~shared.ports.reports.CampaignResultsStore` over an async SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = dialect_of(engine).insert

    async def buyers_messages(
        self, buyers: Sequence[Mapping[str, str]], campaigns: Collection[str]
    ) -> list[list[CampaignMessage]]:
        if not buyers or not campaigns:
            return [[] for _ in buyers]
        i, p = t.identifiers, t.profiles
        values = sorted({v for b in buyers for v in b.values()})
        async with connected(self.engine) as conn:
            owner: dict[tuple[str, str], str] = {}
            for chunk in _chunks(values):
                rows = await conn.execute(
                    select(i.c.kind, i.c.value, i.c.profile_id).where(i.c.value.in_(chunk))
                )
                owner.update({(r.kind, r.value): r.profile_id for r in rows})
            named = [{owner[k] for k in b.items() if k in owner} for b in buyers]
            ids = set().union(*named)
            survivor: dict[str, str] = {}
            for chunk in _chunks(sorted(ids)):
                rows = await conn.execute(
                    select(p.c.id, p.c.merged_into).where(
                        p.c.id.in_(chunk), p.c.merged_into.is_not(None)
                    )
                )
                survivor.update({r.id: r.merged_into for r in rows})
            heads = {survivor.get(pid, pid) for pid in ids}
            absorbed: dict[str, set[str]] = {}
            for chunk in _chunks(sorted(heads)):
                rows = await conn.execute(
                    select(p.c.id, p.c.merged_into).where(p.c.merged_into.in_(chunk))
                )
                for r in rows:
                    absorbed.setdefault(r.merged_into, set()).add(r.id)
            people = []
            for profiles in named:
                tops = {survivor.get(pid, pid) for pid in profiles}
                people.append(
                    profiles | tops | set().union(*(absorbed.get(h, set()) for h in tops))
                )
            everyone = sorted(set().union(*people))
            by_profile: dict[str, list[CampaignMessage]] = {}
            m = t.messages
            for chunk in _chunks(everyone):
                rows = await conn.execute(
                    _messages()
                    .where(m.c.profile_id.in_(chunk), m.c.campaign.in_(sorted(campaigns)))
                    .order_by(m.c.created_at, m.c.key)
                )
                for row in rows:
                    by_profile.setdefault(row.profile_id, []).append(_message(row))
        return [[msg for pid in sorted(ps) for msg in by_profile.get(pid, [])] for ps in people]

    async def record(self, conversions: Sequence[Conversion]) -> int:
        rows = [
            {
                "message_key": c.message_key,
                "order_id": c.order_id,
                "campaign": c.campaign,
                "profile_id": c.profile_id,
                "holdout": c.holdout,
                "amount": c.amount,
                "converted_at": c.converted_at,
            }
            for c in conversions
        ]
        return await self._insert_new(t.conversions, rows, ["message_key", "order_id"])

    async def record_responses(self, responses: Sequence[MessageResponse]) -> int:
        rows = [
            {"message_key": r.message_key, "response": r.response, "at": r.at} for r in responses
        ]
        return await self._insert_new(t.message_responses, rows, ["message_key", "response"])

    async def _insert_new(self, table: Table, rows: list[dict[str, Any]], key: list[str]) -> int:
        """Insert the rows whose ``key`` is not there yet; how many were new."""
        if not rows:
            return 0
        stmt = self._insert(table).values(rows).on_conflict_do_nothing(index_elements=key)
        async with connected(self.engine) as conn:
            result = await conn.execute(stmt)
            await conn.commit()
        return max(int(result.rowcount or 0), 0)

    async def campaign_messages(self, campaign: str) -> list[CampaignMessage]:
        m = t.messages
        async with connected(self.engine) as conn:
            rows = await conn.execute(
                _messages().where(m.c.campaign == campaign).order_by(m.c.created_at, m.c.key)
            )
            return [_message(row) for row in rows]

    async def campaign_conversions(self, campaign: str) -> list[Conversion]:
        c = t.conversions
        async with connected(self.engine) as conn:
            rows = await conn.execute(
                select(c).where(c.c.campaign == campaign).order_by(c.c.converted_at, c.c.order_id)
            )
            return [_conversion(row) for row in rows]

    async def campaign_responses(self, campaign: str) -> list[MessageResponse]:
        r, m = t.message_responses, t.messages
        async with connected(self.engine) as conn:
            rows = await conn.execute(
                select(r)
                .join(m, m.c.key == r.c.message_key)
                .where(m.c.campaign == campaign)
                .order_by(r.c.at, r.c.message_key, r.c.response)
            )
            return [MessageResponse(row.message_key, row.response, row.at) for row in rows]

    async def programme_facts(self, programme: str) -> ProgrammeFacts:
        p, m, r, o = t.programme_positions, t.messages, t.message_responses, t.placed_orders
        steps = m.c.campaign.startswith(f"{programme}.", autoescape=True)
        entered = select(p.c.profile_id).where(p.c.programme == programme)
        async with connected(self.engine) as conn, conn.begin():
            entries = await conn.execute(
                select(p.c.profile_id, p.c.holdout, p.c.entered_at, p.c.step, p.c.exit_reason)
                .where(p.c.programme == programme)
                .order_by(p.c.profile_id, p.c.entry)
            )
            facts = [
                EntryFacts(e.profile_id, bool(e.holdout), e.entered_at, e.step, e.exit_reason)
                for e in entries
            ]
            messages = await conn.execute(
                _messages().where(steps).order_by(m.c.created_at, m.c.key)
            )
            found = [_message(row) for row in messages]
            responses = await conn.execute(
                select(r).join(m, m.c.key == r.c.message_key).where(steps).order_by(r.c.at)
            )
            reported = [MessageResponse(x.message_key, x.response, x.at) for x in responses]
            orders = await conn.execute(
                select(o).where(o.c.profile_id.in_(entered.distinct())).order_by(o.c.placed_at)
            )
            bought = [BuyerOrder(x.profile_id, x.order_id, x.total, x.placed_at) for x in orders]
        return ProgrammeFacts(facts, found, reported, bought)

    async def close(self) -> None:
        await self.engine.dispose()


def open_campaign_results(url: str) -> SqlCampaignResults:
    """Campaign results on the database at ``url``."""
    return SqlCampaignResults(create_engine(url))
