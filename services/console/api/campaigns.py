"""The campaigns API: marketers set up trigger campaigns, switch them on and off, and read
what each earned against its holdout.

- ``PUT /v1/campaigns/{key}``: create (no ``If-Match``, 201) or change (``If-Match``, 200)
  a campaign written as docs/campaigns.md shows. It is validated against the segments
  and templates that exist (built-in and stored); one that does not validate is
  ``422 invalid-campaign`` with the JSON pointer of the bad field. Without ``status`` a
  new campaign is a draft and a changed one keeps its status: saving never starts sending.
- ``GET /v1/campaigns/{key}`` with its ``ETag``; ``GET /v1/campaigns``: every campaign,
  with its status and priority; the ready-made ones not stored are listed as ``builtin``.
- ``POST /v1/campaigns/{key}/activate`` and ``/pause`` (``If-Match``): the status change,
  as a new version. Activating is validated again (a template may have been archived
  since). A ready-made campaign not stored yet is stored by its activation (no
  ``If-Match``: 201).
- ``GET /v1/campaigns/ready-made``: the ready-made campaigns, as starting points.
- ``GET /v1/campaigns/{key}/report``: the funnel and treatment against holdout
  (docs/reports.md).

A stored campaign with a ready-made campaign's key is the shop's edit of it and replaces it.
Reads need the ``console:read`` scope, changes ``console:write``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path
from fastapi.responses import JSONResponse

from services.console.api.segments import KEY_PATTERN
from services.console.api.versions import etag, expected_version, saved
from services.http.auth import require as require_key
from services.http.problems import Problem
from shared.domain.attribution import CampaignResults, campaign_results
from shared.domain.campaigns import (
    BUILTIN_CAMPAIGNS,
    BUILTIN_PUSH_TEMPLATES,
    BUILTIN_SMS_TEMPLATES,
    BUILTIN_TEMPLATES,
    Campaign,
    CampaignError,
    parse_campaign,
)
from shared.domain.reports import CampaignReport, Estimate
from shared.domain.segments import BUILTIN_SEGMENTS, Segment
from shared.ports.api_keys import Scope
from shared.ports.clock import Clock
from shared.ports.definitions import CampaignDefinition, Definitions
from shared.ports.reports import CampaignResultsStore

__all__ = [
    "CampaignCatalogue",
    "campaign_problem",
    "report_document",
    "router",
]

Key = Annotated[str, Path(pattern=KEY_PATTERN, description="The campaign's key.")]
IfMatch = Annotated[
    str | None, Header(description='The version the change is made against: "<version>"')
]
Requirement = Callable[[Scope], Callable[..., Any]]
CampaignBody = Annotated[
    dict[str, Any], Body(description="The campaign, as docs/campaigns.md shows it.")
]


def campaign_problem(exc: CampaignError) -> Problem:
    """``422 invalid-campaign`` pointing at the bad field."""
    return Problem(
        "invalid-campaign",
        f"the campaign does not validate at {exc.pointer}: {exc.message}",
        [{"pointer": exc.pointer, "detail": exc.message}],
    )


class CampaignCatalogue:
    """The campaigns as the console sees them: stored ones over the ready-made ones, and
    the segments and templates a campaign may name."""

    def __init__(
        self,
        definitions: Definitions,
        *,
        builtins: Sequence[Campaign] = BUILTIN_CAMPAIGNS,
        segments: Sequence[Segment] = BUILTIN_SEGMENTS,
        templates: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.definitions = definitions
        self.builtins = {c.key: c for c in builtins}
        self._segments = tuple(s.key for s in segments)
        self._templates = templates or {
            "email": tuple(BUILTIN_TEMPLATES),
            "sms": tuple(BUILTIN_SMS_TEMPLATES),
            "push": tuple(BUILTIN_PUSH_TEMPLATES),
        }

    async def known(self) -> tuple[set[str], dict[str, set[str]]]:
        """The segment keys, and the template keys per channel, a campaign may name now."""
        segments = {*self._segments, *(d.key for d in await self.definitions.segments.list())}
        templates = {channel: set(keys) for channel, keys in self._templates.items()}
        for stored in await self.definitions.templates.list():
            templates.setdefault(stored.channel, set()).add(stored.key)
        return segments, templates

    async def parse(self, document: Mapping[str, Any], key: str) -> Campaign:
        """``document`` validated against what exists, or ``422 invalid-campaign``."""
        segments, templates = await self.known()
        try:
            return parse_campaign(document, key=key, segments=segments, templates=templates)
        except CampaignError as exc:
            raise campaign_problem(exc) from None
        except RecursionError:
            raise campaign_problem(
                CampaignError("/audience", "the rule nests too deeply")
            ) from None

    async def find(self, key: str) -> tuple[Campaign | None, CampaignDefinition | None]:
        """The campaign ``key`` (stored, else ready-made) and its stored definition, if any."""
        stored = await self.definitions.campaigns.get(key)
        if stored is not None:
            try:
                return parse_campaign(stored.definition, key=key), stored
            except CampaignError:
                return None, stored
        return self.builtins.get(key), None

    @staticmethod
    def document(
        key: str, campaign: Campaign | None, stored: CampaignDefinition | None
    ) -> Mapping[str, Any]:
        """What :meth:`find` found, as JSON: the stored definition, else the ready-made one;
        ``404 not-found`` for neither."""
        if stored is not None:
            return stored.definition
        if campaign is not None:
            return campaign.to_dict()
        raise Problem("not-found", f"no campaign {key}")

    async def listed(self) -> list[dict[str, Any]]:
        """Every campaign: stored ones (not archived), and ready-made ones not stored."""
        stored = {d.key: d for d in await self.definitions.campaigns.list()}
        found = [stored_document(d) for d in stored.values()]
        found += [builtin_document(c) for k, c in self.builtins.items() if k not in stored]
        return sorted(found, key=lambda c: (-int(c.get("priority") or 0), c["key"]))

    async def save(
        self, key: str, campaign: Campaign, status: str, expected: int | None
    ) -> CampaignDefinition:
        document = {**campaign.to_dict(), "status": status}
        try:
            return await saved(
                key,
                lambda: self.definitions.campaigns.put(
                    key, definition=document, status=status, expected_version=expected
                ),
            )
        except CampaignError as exc:
            raise campaign_problem(exc) from None
        except ValueError as exc:
            raise Problem(
                "invalid-campaign", str(exc), [{"pointer": "/", "detail": str(exc)}]
            ) from None

    async def set_status(self, key: str, status: str, if_match: str | None) -> CampaignDefinition:
        """Activate or pause ``key`` (``If-Match`` as for a change). Activation validates
        again, against what exists now; a ready-made campaign not stored yet is stored."""
        campaign, current = await self.find(key)
        document = self.document(key, campaign, current)
        expected = expected_version(key, if_match, current.version if current else None)
        if status == "active" or campaign is None:
            campaign = await self.parse(document, key)
        return await self.save(key, campaign, status, expected)


def stored_document(d: CampaignDefinition) -> dict[str, Any]:
    return {
        **d.definition,
        "key": d.key,
        "status": d.status,
        "version": d.version,
        "builtin": False,
        "created_at": d.created_at.isoformat(),
        "updated_at": d.updated_at.isoformat(),
        "archived_at": d.archived_at.isoformat() if d.archived_at else None,
    }


def builtin_document(c: Campaign) -> dict[str, Any]:
    return {**c.to_dict(), "version": None, "builtin": True}


def _estimate(e: Estimate | None) -> dict[str, float] | None:
    return None if e is None else {"value": e.value, "low": e.low, "high": e.high}


def report_document(
    campaign: Campaign, results: CampaignResults, report: CampaignReport, as_of: datetime
) -> dict[str, Any]:
    """The report as the API answers it (and the report page reads it)."""
    funnel = report.funnel
    return {
        "campaign": campaign.key,
        "name": campaign.name,
        "goal": {"event": campaign.goal.event, "within": campaign.to_dict()["goal"]["within"]},
        "as_of": as_of.isoformat(),
        "confidence": report.confidence,
        "funnel": {
            "audience": funnel.audience + report.holdout_size,
            "treatment": funnel.audience,
            "holdout": report.holdout_size,
            "sent": funnel.sent,
            "delivered": funnel.delivered,
            "opened": funnel.opened,
            "clicked": funnel.clicked,
            "converted": funnel.converted,
            "revenue": str(results.treatment_revenue),
        },
        "treatment": {
            "buyers": funnel.audience,
            "converted": funnel.converted,
            "conversion": _estimate(report.treatment_conversion),
            "revenue": str(results.treatment_revenue),
            "revenue_per_buyer": report.treatment_revenue_per_buyer,
        },
        "holdout": {
            "buyers": report.holdout_size,
            "converted": report.holdout_converted,
            "conversion": _estimate(report.holdout_conversion),
            "revenue": str(results.holdout_revenue),
            "revenue_per_buyer": report.holdout_revenue_per_buyer,
        },
        "uplift": {
            "absolute": _estimate(report.conversion_uplift),
            "relative": _estimate(report.relative_uplift),
            "revenue_per_buyer": _estimate(report.revenue_per_buyer_uplift),
            "incremental_revenue": _estimate(report.incremental_revenue),
        },
        "verdict": report.verdict_words,
        "verdict_code": report.verdict.name.lower(),
        "revenue_verdict": report.revenue_verdict.words(report.confidence),
    }


async def build_report(
    campaign: Campaign, results: CampaignResultsStore, as_of: datetime
) -> dict[str, Any]:
    """The campaign's report from its message rows, conversions and delivery reports."""
    counted = campaign_results(
        await results.campaign_messages(campaign.key),
        await results.campaign_conversions(campaign.key),
        await results.campaign_responses(campaign.key),
    )
    return report_document(campaign, counted, counted.report(), as_of)


def router(
    definitions: Definitions,
    results: CampaignResultsStore,
    *,
    clock: Clock,
    require: Requirement = require_key,
    catalogue: CampaignCatalogue | None = None,
) -> APIRouter:
    """The campaigns routes on ``definitions`` and ``results``; ``require(scope)`` is the
    dependency that admits a caller for a scope (API keys by default)."""
    api = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])
    readers = [Depends(require("console:read"))]
    writers = [Depends(require("console:write"))]
    shelf = catalogue or CampaignCatalogue(definitions)

    @api.get("", summary="Every campaign, with its status and priority", dependencies=readers)
    async def list_campaigns() -> dict[str, Any]:
        return {"campaigns": await shelf.listed()}

    @api.get(
        "/ready-made",
        summary="The ready-made campaigns, as starting points",
        dependencies=readers,
    )
    async def ready_made() -> dict[str, Any]:
        return {"campaigns": [c.to_dict() for c in shelf.builtins.values()]}

    @api.get(
        "/{key}",
        summary="One campaign; its version is the ETag",
        dependencies=readers,
        responses={404: {"description": "no such campaign"}},
    )
    async def get_campaign(key: Key) -> JSONResponse:
        stored = await definitions.campaigns.get(key)
        if stored is not None:
            return JSONResponse(stored_document(stored), headers={"ETag": etag(stored.version)})
        if key in shelf.builtins:
            return JSONResponse(builtin_document(shelf.builtins[key]))
        raise Problem("not-found", f"no campaign {key}")

    @api.put(
        "/{key}",
        summary="Create a campaign, or change it with If-Match",
        dependencies=writers,
        responses={
            201: {"description": "created"},
            412: {"description": "If-Match is not the current version"},
            428: {"description": "the campaign exists and If-Match is missing"},
            422: {"description": "the campaign does not validate"},
        },
    )
    async def put_campaign(key: Key, body: CampaignBody, if_match: IfMatch = None) -> JSONResponse:
        campaign = await shelf.parse(body, key)
        current = await definitions.campaigns.get(key)
        expected = expected_version(key, if_match, current.version if current else None)
        status = campaign.status if "status" in body or current is None else current.status
        stored = await shelf.save(key, campaign, status, expected)
        return JSONResponse(
            stored_document(stored),
            status_code=201 if expected is None else 200,
            headers={"ETag": etag(stored.version)},
        )

    async def change_status(key: str, status: str, if_match: str | None) -> JSONResponse:
        stored = await shelf.set_status(key, status, if_match)
        return JSONResponse(
            stored_document(stored),
            status_code=201 if stored.version == 1 else 200,
            headers={"ETag": etag(stored.version)},
        )

    @api.post(
        "/{key}/activate",
        summary="Start sending (If-Match); validated again first",
        dependencies=writers,
        responses={404: {"description": "no such campaign"}},
    )
    async def activate(key: Key, if_match: IfMatch = None) -> JSONResponse:
        return await change_status(key, "active", if_match)

    @api.post(
        "/{key}/pause",
        summary="Stop sending (If-Match)",
        dependencies=writers,
        responses={404: {"description": "no such campaign"}},
    )
    async def pause(key: Key, if_match: IfMatch = None) -> JSONResponse:
        return await change_status(key, "paused", if_match)

    @api.get(
        "/{key}/report",
        summary="The funnel, and treatment against holdout with 95% intervals",
        dependencies=readers,
        responses={404: {"description": "no such campaign"}},
    )
    async def report(key: Key) -> dict[str, Any]:
        campaign, _stored = await shelf.find(key)
        if campaign is None:
            raise Problem("not-found", f"no campaign {key}")
        return await build_report(campaign, results, clock.now())

    return api
