"""The programmes API: marketers write sequential, multi-variant programmes
(docs/programmes.md) and read them back.

- ``PUT /v1/programmes/{key}``: create (no ``If-Match``, 201) or change (``If-Match``,
  200) a programme. It is validated against the segments and templates in force; one
  that does not validate is ``422 invalid-programme`` with the JSON pointer of the bad
  field. Every change is a new version, and every version is kept. Without ``status`` a
  new programme is a draft and a changed one keeps its status.
- ``PUT /v1/programmes/{key}?dry_run=true``: validated as a save is, nothing saved;
  answers how many buyers it would enter now.
- ``POST /v1/programmes/{key}/activate`` and ``/pause`` (``If-Match``): the status
  change, as a new version, validated again; a ready-made programme not stored yet is
  stored by its activation (no ``If-Match``: 201).
- ``GET /v1/programmes/{key}`` with its ``ETag``; ``GET /v1/programmes``:
  ``{"programmes": [...]}``, each with its steps and status; the ready-made ones not
  stored are listed as ``builtin``.
- ``GET /v1/programmes/{key}/report``: entries at each step and exits by reason, each
  send step's variants (sends, responses, conversions with intervals; for an adaptive
  split each one's chance of being best, its share now, and the winner), and the
  programme against its holdout (docs/programmes.md).
- ``POST /v1/programmes/{key}/steps/{step}/promote`` (``If-Match``): the winner of the
  step's adaptive split becomes its only variant, as a new version; ``409 no-winner``
  while there is none.

Reads need the ``console:read`` scope, changes ``console:write``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query
from fastapi.responses import JSONResponse

from services.catalogue import Catalogue
from services.catalogue.programmes import ProgrammeEditor, programme_document
from services.console.api import versions
from services.console.api.campaigns import comparison_document, estimate_document
from services.console.api.refusals import as_problems
from services.console.api.segments import KEY_PATTERN
from services.console.api.versions import etag
from services.http.auth import require as require_key
from shared.domain.programmes import (
    Programme,
    ProgrammeReport,
    Send,
    StepReport,
    programme_report,
)
from shared.ports.api_keys import Scope
from shared.ports.clock import Clock
from shared.ports.definitions import Definitions
from shared.ports.offers import Offers
from shared.ports.reports import CampaignResultsStore

__all__ = ["build_programme_report", "programme_report_document", "router"]

Key = Annotated[str, Path(pattern=KEY_PATTERN, description="The programme's key.")]
IfMatch = Annotated[
    str | None, Header(description='The version the change is made against: "<version>"')
]
Requirement = Callable[[Scope], Callable[..., Any]]
ProgrammeBody = Annotated[
    dict[str, Any], Body(description="The programme, as docs/programmes.md shows it.")
]


StepId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,19}$", description="The step's id.")]
DryRun = Annotated[bool, Query(description="Validate and count who would enter now; save nothing.")]


def programme_report_document(
    programme: Programme, report: ProgrammeReport, as_of: datetime
) -> dict[str, Any]:
    """The report as the API answers it (and the report page reads it)."""
    within = programme.goal.within
    return {
        "programme": programme.key,
        "name": programme.name,
        "version": programme.version,
        "status": programme.status,
        "goal": {"event": programme.goal.event, "within_days": within.total_seconds() / 86400},
        "as_of": as_of.isoformat(),
        "entered": {"treatment": report.entered, "holdout": report.holdout_entries},
        "at_step": report.at_step,
        "exited": report.exited,
        "steps": [
            {
                "step": step.step,
                "variants": [
                    {
                        "name": v.name,
                        "buyers": v.buyers,
                        "sent": v.sent,
                        "delivered": v.delivered,
                        "opened": v.opened,
                        "clicked": v.clicked,
                        "converted": v.converted,
                        "conversion": estimate_document(v.conversion),
                        "not_sent": dict(v.by_reason),
                    }
                    for v in step.variants
                ],
                "adaptive": _learning_document(programme, step),
            }
            for step in report.steps
        ],
        **comparison_document(report.results, report.overall),
    }


def _learning_document(programme: Programme, step: StepReport) -> dict[str, Any] | None:
    learning, send = step.learning, programme.steps.get(step.step)
    if learning is None or not isinstance(send, Send) or send.adaptive is None:
        return None
    rules = send.adaptive
    return {
        "rules": {
            "min_share": rules.min_share,
            "win_at": rules.win_at,
            "min_buyers": rules.min_buyers,
        },
        "variants": [
            {"name": name, "chance_best": best, "share_now": share}
            for name, best, share in zip(
                learning.names, learning.best, learning.shares, strict=True
            )
        ],
        "winner": learning.winner,
        "probability": learning.winner_probability,
    }


async def build_programme_report(
    programme: Programme, results: CampaignResultsStore, as_of: datetime
) -> dict[str, Any]:
    """``programme``'s report from its rows now."""
    facts = await results.programme_facts(programme.key)
    return programme_report_document(programme, programme_report(programme, facts), as_of)


def router(
    definitions: Definitions,
    *,
    require: Requirement = require_key,
    catalogue: Catalogue | None = None,
    results: CampaignResultsStore | None = None,
    clock: Clock | None = None,
    offers: Offers | None = None,
) -> APIRouter:
    """The programmes routes on ``definitions``; ``require(scope)`` admits a caller for a
    scope; programmes are checked against what ``catalogue`` says they may name (and
    ``offers``: the offers that exist); their reports read ``results`` (no report route
    without it), dated by ``clock``."""
    api = APIRouter(prefix="/v1/programmes", tags=["programmes"])
    readers = [Depends(require("console:read"))]
    writers = [Depends(require("console:write"))]
    editor = ProgrammeEditor(definitions, catalogue, offers)

    @api.get("", summary="Every programme, with its steps and status", dependencies=readers)
    async def list_programmes() -> dict[str, Any]:
        return {"programmes": await editor.listed()}

    @api.get(
        "/{key}",
        summary="One programme; its version is the ETag",
        dependencies=readers,
        responses={404: {"description": "no such programme"}},
    )
    async def get_programme(key: Key) -> JSONResponse:
        with as_problems():
            document, version = await editor.document(key)
        headers = {"ETag": etag(version)} if version is not None else None
        return JSONResponse(document, headers=headers)

    @api.put(
        "/{key}",
        summary="Create a programme, or change it with If-Match (a new version)",
        dependencies=writers,
        responses={
            201: {"description": "created"},
            412: {"description": "If-Match is not the current version"},
            428: {"description": "the programme exists and If-Match is missing"},
            422: {"description": "the programme does not validate"},
        },
    )
    async def put_programme(
        key: Key, body: ProgrammeBody, if_match: IfMatch = None, dry_run: DryRun = False
    ) -> JSONResponse:
        if dry_run:
            with as_problems():
                return JSONResponse(await editor.dry_run(key, body))
        with as_problems():
            saved = await editor.save(key, body, versions.if_match(key, if_match))
        stored = saved.definition
        return JSONResponse(
            programme_document(stored),
            status_code=201 if saved.created else 200,
            headers={"ETag": etag(stored.version)},
        )

    async def change_status(key: str, status: str, if_match: str | None) -> JSONResponse:
        with as_problems():
            saved = await editor.set_status(key, status, versions.if_match(key, if_match))
        stored = saved.definition
        return JSONResponse(
            programme_document(stored),
            status_code=201 if saved.created else 200,
            headers={"ETag": etag(stored.version)},
        )

    changes: dict[int | str, dict[str, Any]] = {
        404: {"description": "no such programme"},
        412: {"description": "If-Match is not the current version"},
        428: {"description": "the programme is stored and If-Match is missing"},
    }

    @api.post(
        "/{key}/activate",
        summary="Switch a programme on (If-Match; a ready-made one is stored: 201)",
        dependencies=writers,
        responses=changes,
    )
    async def activate(key: Key, if_match: IfMatch = None) -> JSONResponse:
        return await change_status(key, "active", if_match)

    @api.post(
        "/{key}/pause",
        summary="Switch a programme off (If-Match); buyers inside wait where they are",
        dependencies=writers,
        responses=changes,
    )
    async def pause(key: Key, if_match: IfMatch = None) -> JSONResponse:
        return await change_status(key, "paused", if_match)

    if results is None or clock is None:
        return api
    reading, dating = results, clock

    @api.get(
        "/{key}/report",
        summary="Entries per step, exits, each variant's conversions, against the holdout",
        dependencies=readers,
        responses={404: {"description": "no such programme"}},
    )
    async def programme_report_route(key: Key) -> dict[str, Any]:
        with as_problems():
            programme = await editor.programme(key)
        return await build_programme_report(programme, reading, dating.now())

    @api.post(
        "/{key}/steps/{step}/promote",
        summary="Make the winner of a step's adaptive split its only variant (a new version)",
        dependencies=writers,
        responses={
            404: {"description": "no such programme or step"},
            409: {"description": "not an adaptive split, or no variant has won yet"},
            412: {"description": "If-Match is not the current version"},
            428: {"description": "the programme exists and If-Match is missing"},
        },
    )
    async def promote(key: Key, step: StepId, if_match: IfMatch = None) -> JSONResponse:
        with as_problems():
            saved, winner, probability = await editor.promote(
                key, step, reading, versions.if_match(key, if_match)
            )
        stored = saved.definition
        return JSONResponse(
            {
                **programme_document(stored),
                "promoted": {"step": step, "variant": winner, "probability": probability},
            },
            status_code=201 if saved.created else 200,
            headers={"ETag": etag(stored.version)},
        )

    return api
