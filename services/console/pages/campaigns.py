"""The campaign pages: the list with status and priority, the form to set one up (or to
start from a ready-made one), activate and pause, and the report against the holdout.

The form is plain HTML posted back; what does not validate comes back with the
error beside the field its JSON pointer names (``/trigger/segment`` beside the
segment, ``/goal/within`` beside the attribution window). Marketers change
campaigns; analysts see the same pages read-only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from services.catalogue import Catalogue
from services.catalogue.editing import CampaignEditor, InvalidCampaign
from services.console.api.campaigns import build_report
from services.console.api.refusals import as_problems
from services.console.api.segments import KEY_PATTERN
from services.console.api.versions import read_at
from services.console.pages import render
from services.console.security import Analyst, Marketer
from services.http.problems import Problem
from shared.domain.campaigns import GOAL_EVENTS, PROFILE_MOMENTS
from shared.domain.events import EVENT_TYPES
from shared.ports.clock import Clock
from shared.ports.definitions import CHANNELS, Definitions
from shared.ports.offers import Offers
from shared.ports.reports import CampaignResultsStore

__all__ = ["field_of", "form_document", "form_values", "router", "uplift_chart"]

_TRIGGER_FIELDS = {
    "segment": "trigger_segment",
    "on": "trigger_on",
    "event": "trigger_event",
    "name": "trigger_name",
    "where": "trigger_where",
    "moment": "trigger_moment",
    "before": "trigger_offset",
    "after": "trigger_offset",
}
_FORM_FIELDS = frozenset(
    {
        "key",
        "name",
        "trigger_kind",
        "trigger_segment",
        "trigger_on",
        "trigger_event",
        "trigger_name",
        "trigger_where",
        "trigger_moment",
        "trigger_offset",
        "delay",
        "audience",
        "holdout",
        "channels",
        *(f"templates_{c}" for c in CHANNELS),
        "goal_event",
        "goal_name",
        "goal_within",
        "priority",
        "reentry",
    }
)


def field_of(pointer: str) -> str:
    """The form field a campaign's JSON pointer names (``/goal/within`` → ``goal_within``);
    ``""`` for one the form has no field for (shown above the form)."""
    parts = [p for p in pointer.split("/") if p]
    if not parts:
        return ""
    if parts[0] == "trigger":
        name = _TRIGGER_FIELDS.get(parts[1], "trigger_kind") if len(parts) > 1 else "trigger_kind"
    elif parts[0] in ("goal", "templates") and len(parts) > 1:
        name = f"{parts[0]}_{parts[1]}"
    else:
        name = parts[0]
    return name if name in _FORM_FIELDS else ""


def form_values(document: Mapping[str, Any]) -> dict[str, str]:
    """A campaign document as the form's fields (text, as the browser sends them)."""
    trigger = document.get("trigger") or {}
    goal = document.get("goal") or {}
    channels = document.get("channels", ["email"])
    values = {
        "key": str(document.get("key", "")),
        "name": str(document.get("name", "")),
        "trigger_kind": "event"
        if "event" in trigger
        else "moment"
        if "moment" in trigger
        else "segment",
        "trigger_segment": str(trigger.get("segment", "")),
        "trigger_on": str(trigger.get("on", "entered")),
        "trigger_event": str(trigger.get("event", "track")),
        "trigger_name": str(trigger.get("name", "")),
        "trigger_where": json.dumps(trigger["where"], indent=2) if trigger.get("where") else "",
        "trigger_moment": str(trigger.get("moment", PROFILE_MOMENTS[0])),
        "trigger_direction": "after" if "after" in trigger else "before",
        "trigger_offset": str(trigger.get("before") or trigger.get("after") or ""),
        "delay": str(document.get("delay", "0m")),
        "audience": json.dumps(document["audience"], indent=2) if document.get("audience") else "",
        "holdout": str(document.get("holdout", 0)),
        "channels": channels if isinstance(channels, str) else ", ".join(channels),
        "goal_event": str(goal.get("event", "purchase")),
        "goal_name": str(goal.get("name", "")),
        "goal_within": str(goal.get("within", "14d")),
        "priority": str(document.get("priority", 0)),
        "reentry": str(document.get("reentry", "once_per_occurrence")),
    }
    templates = document.get("templates") or {}
    for channel in CHANNELS:
        values[f"templates_{channel}"] = str(templates.get(channel, ""))
    return values


def _json(values: Mapping[str, str], name: str, errors: dict[str, str]) -> Any:
    """The field's JSON (``None``: empty, or not JSON, which ``errors`` then says)."""
    text = values.get(name, "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        errors[name] = f"not JSON: {exc}"
        return None


def _number(
    values: Mapping[str, str], name: str, kind: type[int] | type[float], errors: dict[str, str]
) -> Any:
    """The field's number (``None``: not one, which ``errors`` then says)."""
    text = values.get(name, "").strip() or "0"
    try:
        return kind(text)
    except ValueError:
        expected = "a whole number" if kind is int else "a number such as 0.1"
        errors[name] = f"expected {expected}"
        return None


def form_document(values: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The campaign document the form's fields say (``parse_campaign`` then checks it),
    and the fields that are not even JSON or a number, by field (each left out of the
    document, so the others are still checked)."""
    errors: dict[str, str] = {}
    kind = values.get("trigger_kind", "segment")
    trigger: dict[str, Any]
    if kind == "event":
        trigger = {"event": values.get("trigger_event", "")}
        if values.get("trigger_name", "").strip():
            trigger["name"] = values["trigger_name"].strip()
        where = _json(values, "trigger_where", errors)
        if where is not None:
            trigger["where"] = where
    elif kind == "moment":
        trigger = {"moment": values.get("trigger_moment", "")}
        offset = values.get("trigger_offset", "").strip()
        if offset:
            direction = "after" if values.get("trigger_direction") == "after" else "before"
            trigger[direction] = offset
    else:
        trigger = {"segment": values.get("trigger_segment", ""), "on": values.get("trigger_on")}
    channels_text = values.get("channels", "").strip()
    channels: Any = (
        "best"
        if channels_text == "best"
        else [c.strip() for c in channels_text.split(",") if c.strip()]
    )
    goal: dict[str, Any] = {
        "event": values.get("goal_event", "purchase"),
        "within": values.get("goal_within", "").strip(),
    }
    if values.get("goal_name", "").strip():
        goal["name"] = values["goal_name"].strip()
    document: dict[str, Any] = {
        "name": values.get("name", ""),
        "trigger": trigger,
        "delay": values.get("delay", "").strip() or "0m",
        "holdout": _number(values, "holdout", float, errors),
        "channels": channels,
        "templates": {
            c: values[f"templates_{c}"] for c in CHANNELS if values.get(f"templates_{c}", "")
        },
        "goal": goal,
        "priority": _number(values, "priority", int, errors),
        "reentry": values.get("reentry", "once_per_occurrence"),
    }
    audience = _json(values, "audience", errors)
    if audience is not None:
        document["audience"] = audience
    return {k: v for k, v in document.items() if v is not None}, errors


def uplift_chart(estimates: list[tuple[str, dict[str, float] | None]]) -> dict[str, Any]:
    """The uplift picture as SVG coordinates: each estimate (a share: 0.12 is 12 points, or
    12%) a dot on its interval, on a scale of its own that always shows zero."""
    width, left, right, row = 640, 190, 24, 64
    rows: list[dict[str, Any]] = []
    for n, (label, e) in enumerate(estimates):
        y = 34 + n * row
        if e is None:
            rows.append({"label": label, "y": y, "missing": True, "zero": left + 20})
            continue
        low, high = min(0.0, e["low"]), max(0.0, e["high"])
        pad = (high - low) * 0.08 or 0.01
        low, high = low - pad, high + pad

        def x(value: float, low: float = low, high: float = high) -> float:
            return round(left + (value - low) / (high - low) * (width - left - right), 1)

        rows.append(
            {
                "label": label,
                "y": y,
                "missing": False,
                "zero": x(0.0),
                "x": x(e["value"]),
                "x_low": x(e["low"]),
                "x_high": x(e["high"]),
                "value": e["value"] * 100,
                "low": e["low"] * 100,
                "high": e["high"] * 100,
                "above": e["low"] > 0,
                "below": e["high"] < 0,
            }
        )
    return {"width": width, "height": 20 + len(estimates) * row, "rows": rows}


def _funnel_bars(funnel: Mapping[str, Any]) -> list[dict[str, Any]]:
    steps = [
        ("Audience (both arms)", "audience"),
        ("Treatment", "treatment"),
        ("Sent", "sent"),
        ("Delivered", "delivered"),
        ("Opened", "opened"),
        ("Clicked", "clicked"),
        ("Converted", "converted"),
    ]
    largest = max(int(funnel["audience"]), 1)
    return [
        {
            "label": label,
            "step": step,
            "count": funnel[step],
            "width": round(400 * funnel[step] / largest, 1),
        }
        for label, step in steps
    ]


class _FormPage:
    """The campaign form, with the choices it offers (segments, templates per channel):
    what a campaign may name now."""

    def __init__(self, editor: CampaignEditor) -> None:
        self.editor = editor

    async def choices(self) -> dict[str, Any]:
        segments, templates = await self.editor.nameable()
        return {
            "segments": sorted(segments),
            "templates": {c: sorted(templates.get(c, ())) for c in CHANNELS},
            "event_types": EVENT_TYPES,
            "moments": PROFILE_MOMENTS,
            "goal_events": GOAL_EVENTS,
            "channels": CHANNELS,
        }

    async def __call__(
        self,
        request: Request,
        user: Any,
        values: Mapping[str, str],
        *,
        version: int | None,
        errors: Mapping[str, str] | None = None,
        status_code: int = 200,
        started_from: str | None = None,
    ) -> Response:
        return render(
            request,
            "campaign_form.html",
            status_code=status_code,
            user=user,
            values=values,
            version=version,
            errors=errors or {},
            started_from=started_from,
            key_pattern=KEY_PATTERN.strip("^$"),
            **await self.choices(),
        )


def _by_field(refused: InvalidCampaign, errors: Mapping[str, str]) -> dict[str, str]:
    """Every error of ``refused`` beside its form field (the first for a field), after
    the form's own ``errors``; one with no field of its own above the form."""
    found = dict(errors)
    for pointer, message in refused.errors:
        found.setdefault(field_of(pointer), message)
    return found


async def _save(
    editor: CampaignEditor,
    key: str,
    document: dict[str, Any],
    version: int | None,
    form_errors: Mapping[str, str],
) -> tuple[dict[str, str], int] | None:
    """Save the form's campaign (a new one as a draft, a changed one keeping its status);
    ``None`` when saved, else every error by form field and the status code. With
    ``form_errors`` (fields that are not even JSON or a number) nothing is saved: the
    rest is checked, so the marketer sees every error at once."""
    current = await editor.definitions.campaigns.get(key) if key else None
    if current is not None and current.definition.get("active"):
        document["active"] = current.definition["active"]  # the form does not edit it
    try:
        with as_problems():
            try:
                if form_errors:
                    await editor.checked(document, key)
                    return dict(form_errors), 422
                await editor.save(key, document, read_at("campaign", key, version))
            except InvalidCampaign as refused:
                return _by_field(refused, form_errors), 422
    except Problem as problem:
        message = (
            f"{key} was changed meanwhile, or exists already: reload it and apply your "
            "change again."
        )
        return {"": message}, problem.status
    return None


def router(
    definitions: Definitions,
    results: CampaignResultsStore,
    *,
    clock: Clock,
    catalogue: Catalogue | None = None,
    offers: Offers | None = None,
) -> APIRouter:
    """The campaign pages on ``definitions`` and ``results``; campaigns are checked against
    what ``catalogue`` says they may name (default: one of its own), and with ``offers``
    a report shows what the promo codes did."""
    pages = APIRouter(include_in_schema=False)
    editor = CampaignEditor(definitions, catalogue, offers)
    form_page = _FormPage(editor)

    @pages.get("/campaigns", response_class=HTMLResponse)
    async def campaign_list(request: Request, user: Analyst) -> Response:
        return render(
            request,
            "campaigns.html",
            user=user,
            campaigns=await editor.listed(),
            ready_made=list(editor.ready_made.values()),
        )

    @pages.get("/campaigns/new", response_class=HTMLResponse)
    async def new_campaign(
        request: Request,
        user: Marketer,
        start: Annotated[str | None, Query(alias="from", max_length=100)] = None,
    ) -> Response:
        values = form_values({"channels": ["email"], "trigger": {"segment": ""}})
        if start is not None:
            ready = editor.ready_made.get(start)
            if ready is None:
                raise Problem("not-found", f"no ready-made campaign {start}")
            values = form_values(ready.to_dict())
            taken = await definitions.campaigns.get(start) is not None
            values["key"] = f"{start}-copy" if taken else start
        return await form_page(request, user, values, version=None, started_from=start)

    @pages.get("/campaigns/{key}/edit", response_class=HTMLResponse)
    async def edit_campaign(request: Request, key: str, user: Analyst) -> Response:
        campaign, stored = await editor.find(key)
        with as_problems():
            document = editor.document(key, campaign, stored)
        values = form_values({**document, "key": key})
        return await form_page(request, user, values, version=stored.version if stored else None)

    @pages.post("/campaigns/save")
    async def save_campaign(request: Request, user: Marketer) -> Response:
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        key = values.get("key", "").strip()
        values["key"] = key
        version_text = values.get("version", "").strip()
        version = int(version_text) if version_text.isdigit() else None
        document, form_errors = form_document(values)
        refused = await _save(editor, key, document, version, form_errors)
        if refused is not None:
            errors, status_code = refused
            return await form_page(
                request, user, values, version=version, errors=errors, status_code=status_code
            )
        return RedirectResponse(f"/campaigns?saved={key}", status_code=303)

    async def change_status(key: str, status: str, version: str) -> Response:
        read = int(version) if version.isdigit() else None
        with as_problems():
            await editor.set_status(key, status, read_at("campaign", key, read))
        return RedirectResponse(f"/campaigns?{status}={key}", status_code=303)

    @pages.post("/campaigns/{key}/activate")
    async def activate(
        key: str, user: Marketer, version: Annotated[str, Form(max_length=12)] = ""
    ) -> Response:
        return await change_status(key, "active", version)

    @pages.post("/campaigns/{key}/pause")
    async def pause(
        key: str, user: Marketer, version: Annotated[str, Form(max_length=12)] = ""
    ) -> Response:
        return await change_status(key, "paused", version)

    @pages.get("/campaigns/{key}/report", response_class=HTMLResponse)
    async def report_page(request: Request, key: str, user: Analyst) -> Response:
        campaign, stored = await editor.find(key)
        if campaign is None:
            raise Problem("not-found", f"no campaign {key}")
        report = await build_report(campaign, results, clock.now(), offers)
        uplift = report["uplift"]
        chart = uplift_chart(
            [
                ("Conversion, points", uplift["absolute"]),
                ("Conversion, relative %", uplift["relative"]),
            ]
        )
        no_control = report["verdict_code"] == "no_control_group"
        chart["no_control"] = no_control
        return render(
            request,
            "campaign_report.html",
            user=user,
            campaign=campaign,
            status=stored.status if stored else campaign.status,
            report=report,
            bars=_funnel_bars(report["funnel"]),
            chart=chart,
            no_control=no_control,
        )

    return pages
