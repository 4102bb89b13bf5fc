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

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path
from fastapi.responses import JSONResponse

from services.catalogue import Catalogue
from services.catalogue.editing import CampaignEditor, builtin_document, stored_document
from services.console.api import versions
from services.console.api.refusals import as_problems
from services.console.api.segments import KEY_PATTERN
from services.console.api.versions import etag
from services.http.auth import require as require_key
from services.http.problems import Problem
from shared.domain.attribution import CampaignResults, campaign_results
from shared.domain.campaigns import Campaign
from shared.domain.reports import CampaignReport, Estimate
from shared.ports.api_keys import Scope
from shared.ports.clock import Clock
from shared.ports.definitions import Definitions
from shared.ports.offers import OfferResults, Offers
from shared.ports.reports import CampaignResultsStore

__all__ = [
    "build_report",
    "comparison_document",
    "estimate_document",
    "offer_document",
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


def estimate_document(e: Estimate | None) -> dict[str, float] | None:
    """An estimate as the API answers it: its value and interval."""
    return None if e is None else {"value": e.value, "low": e.low, "high": e.high}


def report_document(
    campaign: Campaign, results: CampaignResults, report: CampaignReport, as_of: datetime
) -> dict[str, Any]:
    """The report as the API answers it (and the report page reads it)."""
    return {
        "campaign": campaign.key,
        "name": campaign.name,
        "goal": {"event": campaign.goal.event, "within": campaign.to_dict()["goal"]["within"]},
        "as_of": as_of.isoformat(),
        **comparison_document(results, report),
    }


def comparison_document(results: CampaignResults, report: CampaignReport) -> dict[str, Any]:
    """The funnel and treatment against holdout, as a campaign's and a programme's reports
    answer them."""
    funnel = report.funnel
    return {
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
            "conversion": estimate_document(report.treatment_conversion),
            "revenue": str(results.treatment_revenue),
            "revenue_per_buyer": report.treatment_revenue_per_buyer,
        },
        "holdout": {
            "buyers": report.holdout_size,
            "converted": report.holdout_converted,
            "conversion": estimate_document(report.holdout_conversion),
            "revenue": str(results.holdout_revenue),
            "revenue_per_buyer": report.holdout_revenue_per_buyer,
        },
        "uplift": {
            "absolute": estimate_document(report.conversion_uplift),
            "relative": estimate_document(report.relative_uplift),
            "revenue_per_buyer": estimate_document(report.revenue_per_buyer_uplift),
            "incremental_revenue": estimate_document(report.incremental_revenue),
        },
        "verdict": report.verdict_words,
        "verdict_code": report.verdict.name.lower(),
        "revenue_verdict": report.revenue_verdict.words(report.confidence),
    }


async def build_report(
    campaign: Campaign,
    results: CampaignResultsStore,
    as_of: datetime,
    offers: Offers | None = None,
) -> dict[str, Any]:
    """The campaign's report from its message rows, conversions and delivery reports; with
    ``offers``, what the promo codes its messages carried did (``offer``)."""
    counted = campaign_results(
        await results.campaign_messages(campaign.key),
        await results.campaign_conversions(campaign.key),
        await results.campaign_responses(campaign.key),
    )
    document = report_document(
        campaign, counted, counted.report(holdout_share=campaign.holdout), as_of
    )
    if offers is not None:
        codes = await offers.campaign_results(campaign.key)
        if codes.issued or campaign.offer is not None:
            document["offer"] = offer_document(campaign, codes)
    return document


def offer_document(campaign: Campaign, codes: OfferResults) -> dict[str, Any]:
    """What the campaign's promo codes did: issued, redeemed, the rate, the discount given."""
    rate = codes.redemption_rate
    return {
        "offer": campaign.offer,
        "offers": list(codes.offers),
        "issued": codes.issued,
        "redeemed": codes.redeemed,
        "redemption_rate": None if rate is None else round(rate, 4),
        "discount": str(codes.discount),
    }


def router(
    definitions: Definitions,
    results: CampaignResultsStore,
    *,
    clock: Clock,
    require: Requirement = require_key,
    catalogue: Catalogue | None = None,
    offers: Offers | None = None,
) -> APIRouter:
    """The campaigns routes on ``definitions`` and ``results`` (and ``offers``: the report
    of a campaign whose messages carry promo codes says what they did); ``require(scope)`` is the
    dependency that admits a caller for a scope (API keys by default); campaigns are
    checked against what ``catalogue`` says they may name (default: one of its own)."""
    api = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])
    readers = [Depends(require("console:read"))]
    writers = [Depends(require("console:write"))]
    editor = CampaignEditor(definitions, catalogue, offers)

    @api.get("", summary="Every campaign, with its status and priority", dependencies=readers)
    async def list_campaigns() -> dict[str, Any]:
        return {"campaigns": await editor.listed()}

    @api.get(
        "/ready-made",
        summary="The ready-made campaigns, as starting points",
        dependencies=readers,
    )
    async def ready_made() -> dict[str, Any]:
        return {"campaigns": [c.to_dict() for c in editor.ready_made.values()]}

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
        if key in editor.ready_made:
            return JSONResponse(builtin_document(editor.ready_made[key]))
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
        with as_problems():
            saved = await editor.save(key, body, versions.if_match(key, if_match))
        stored = saved.definition
        return JSONResponse(
            stored_document(stored),
            status_code=201 if saved.created else 200,
            headers={"ETag": etag(stored.version)},
        )

    async def change_status(key: str, status: str, if_match: str | None) -> JSONResponse:
        with as_problems():
            stored = await editor.set_status(key, status, versions.if_match(key, if_match))
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
        campaign, _stored = await editor.find(key)
        if campaign is None:
            raise Problem("not-found", f"no campaign {key}")
        return await build_report(campaign, results, clock.now(), offers)

    return api
