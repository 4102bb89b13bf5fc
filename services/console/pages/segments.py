"""The segments pages: every segment with its size now and over time, and the rule editor.

- ``GET /segments``: built-in and stored segments, each with its size now and a
  sparkline of its daily sizes (``segment_sizes`` snapshots, the last 90 days);
  ``POST /segments/_snapshot`` records today's sizes on demand (marketers).
- ``GET /segments/_new`` and ``GET /segments/{key}``: the editor. The rule is JSON in
  a textarea; as the marketer types, htmx posts it (``keyup changed delay:400ms``)
  to ``POST /segments/_preview``, which answers the rule's size over the base now and
  a masked sample, or the error drawn at the bad node of the rule's tree (the JSON
  pointer of the API's ``422 invalid-rule``), or the line and column of a JSON typo.
- ``POST /segments/{key}``: save (marketers), with the version the page was read at
  sent as the save's ``If-Match``: a colleague's change made meanwhile is not
  overwritten, the page says so instead.

The keys ``_new``, ``_preview`` and ``_snapshot`` cannot be segment keys (a key starts
with a letter or a digit), so they never hide a segment.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping, Sequence
from datetime import date, timedelta
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from starlette.responses import Response

from services.catalogue.editing import PREVIEW_KEY, Exists, InvalidRule, SegmentEditor
from services.console.api.refusals import as_problems
from services.console.api.segments import KEY_PATTERN
from services.console.api.versions import read_at
from services.console.pages import render
from services.console.security import Analyst, Marketer
from services.http.problems import Problem
from shared.domain.documents import child as child_pointer
from shared.domain.documents import unescape
from shared.domain.masking import mask_email, mask_phone
from shared.domain.rules import Condition
from shared.domain.segments import BUILTIN_SEGMENTS, Segment
from shared.ports.clock import Clock
from shared.ports.console import SegmentSizeHistory
from shared.ports.definitions import Definitions

__all__ = ["checked", "router", "rule_tree", "sparkline"]

HISTORY_DAYS = 90
SAMPLE_SIZE = 10
MAX_RULE = 100_000
STARTER_RULE = {"all": [{"stat": "orders_count", "at_least": 2}]}
"""What a new segment's editor starts with: buyers with two orders or more."""

Key = Annotated[str, Path(pattern=KEY_PATTERN)]
RuleText = Annotated[str, Form(max_length=MAX_RULE)]
Name = Annotated[str, Form(min_length=1, max_length=200)]
Description = Annotated[str, Form(max_length=2000)]


def _existing(rule: Any, pointer: str) -> str:
    """``pointer`` if it names a node of ``rule``, else its nearest existing ancestor."""
    parts = [unescape(p) for p in pointer.split("/")[1:]]
    node, found = rule, ""
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            break
        found = child_pointer(found, part)
    return found


def rule_tree(rule: Any, bad: str | None = None) -> Markup:
    """``rule`` as indented JSON (HTML), the node at pointer ``bad`` (or its nearest
    existing ancestor) marked: where the marketer sees what the parser refused."""
    marked = None if bad is None else _existing(rule, bad)

    def draw(node: Any, pointer: str, depth: int) -> str:
        pad, inner = "  " * depth, "  " * (depth + 1)
        if isinstance(node, dict) and node:
            items = [
                f"{inner}{escape(json.dumps(k, ensure_ascii=False))}: "
                f"{draw(v, child_pointer(pointer, k), depth + 1)}"
                for k, v in node.items()
            ]
            text = "{\n" + ",\n".join(items) + f"\n{pad}}}"
        elif isinstance(node, list) and node:
            items = [
                f"{inner}{draw(v, child_pointer(pointer, i), depth + 1)}"
                for i, v in enumerate(node)
            ]
            text = "[\n" + ",\n".join(items) + f"\n{pad}]"
        else:
            text = escape(json.dumps(node, ensure_ascii=False))
        if pointer == marked:
            where = escape(pointer or "/")
            return f'<mark class="bad-node" id="bad-node" data-pointer="{where}">{text}</mark>'
        return text

    return Markup(draw(rule, "", 0))  # noqa: S704 - every piece of text is escaped above


def sparkline(points: Sequence[tuple[date, int]], width: int = 120, height: int = 24) -> Markup:
    """A segment's daily sizes as a small SVG line (no script); empty with under two days."""
    if len(points) < 2:
        return Markup("")
    sizes = [size for _, size in points]
    low, high = min(sizes), max(sizes)
    span = (high - low) or 1
    step = width / (len(points) - 1)
    coords = " ".join(
        f"{i * step:.1f},{height - 2 - (size - low) / span * (height - 4):.1f}"
        for i, size in enumerate(sizes)
    )
    title = f"{points[0][0]}: {sizes[0]:,} … {points[-1][0]}: {sizes[-1]:,}"
    return Markup(  # noqa: S704 - numbers and dates only
        f'<svg class="spark" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<polyline points="{coords}"/></svg>'
    )


def _buyer(profile: Any) -> dict[str, Any]:
    return {
        "id": profile.id,
        "email": mask_email(profile.email) if profile.email else None,
        "phone": mask_phone(profile.phone) if profile.phone else None,
        "orders_count": profile.orders_count,
        "revenue_total": profile.revenue_total,
    }


def _read_rule(text: str) -> tuple[Any, dict[str, Any] | None]:
    """The rule's JSON, or what is wrong with it: ``{message, line, column}``."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, {"message": exc.msg, "line": exc.lineno, "column": exc.colno}


def _refused(rule: Any, error: InvalidRule) -> dict[str, Any]:
    """The editor's view of a rule refused: its tree with the bad node marked."""
    return {
        "rule": rule,
        "tree": rule_tree(rule, error.pointer),
        "error": {"pointer": error.pointer or "/", "detail": error.message},
        "condition": None,
    }


def checked(text: str) -> dict[str, Any]:
    """The editor's view of a rule's text: its tree, and a typo or a bad node (or the
    parsed ``condition`` when it is fine)."""
    rule, typo = _read_rule(text)
    if typo is not None:
        return {"typo": typo, "rule": None, "condition": None}
    try:
        condition = SegmentEditor.parsed(rule)
    except InvalidRule as error:
        return _refused(rule, error)
    return {"rule": rule, "tree": rule_tree(rule), "condition": condition}


class _SegmentPages:
    """What the routes share: the base's scan, sizes over time, the editor, the save."""

    def __init__(
        self,
        definitions: Definitions,
        history: SegmentSizeHistory,
        clock: Clock,
        builtins: Sequence[Segment],
    ) -> None:
        self.definitions = definitions
        self.history = history
        self.clock = clock
        self.edits = SegmentEditor(definitions, builtins)
        self.builtins = self.edits.builtins
        self.builtin = self.edits.builtin

    async def size_of(self, condition: Condition) -> dict[str, Any]:
        """How many buyers ``condition`` holds for now, and a sample of them (exact on a
        small base, estimated with its margin on a large one: see
        :meth:`SegmentEditor.preview`)."""
        found = await self.edits.preview(condition, self.clock.now(), sample_size=SAMPLE_SIZE)
        return found.fields(_buyer)

    async def linked(self, view: dict[str, Any], key: str) -> dict[str, Any]:
        """``view`` with its condition's ``{segment: ...}`` linked to the segments in force,
        or showing the reference that names no segment, or closes a cycle, as its error."""
        if view["condition"] is None:
            return view
        try:
            condition = await self.edits.linked(key, view["condition"])
        except InvalidRule as error:
            return {**view, **_refused(view["rule"], error)}
        return {**view, "condition": condition}

    async def history_of(self, keys: Sequence[str]) -> Mapping[str, Sequence[tuple[date, int]]]:
        since = self.clock.now().date() - timedelta(days=HISTORY_DAYS)
        return await self.history.segment_size_history(keys, since=since)

    async def editor(
        self,
        request: Request,
        user: Any,
        key: str | None,
        *,
        status_code: int = 200,
        **form: Any,
    ) -> Response:
        days = await self.history_of([key]) if key else {}
        points = days.get(key, []) if key else []
        sizes = await self.definitions.segment_sizes() if key else {}
        return render(
            request,
            "segment_edit.html",
            status_code=status_code,
            user=user,
            key=key,
            history=[{"day": day.isoformat(), "size": size} for day, size in points],
            size_now=sizes.get(key, 0) if key else None,
            **form,
        )

    async def listing(self) -> list[dict[str, Any]]:
        sizes = await self.definitions.segment_sizes()
        stored = await self.definitions.segments.list()
        days = await self.history_of([s.key for s in self.builtins] + [d.key for d in stored])
        rows: list[dict[str, Any]] = [
            {"key": s.key, "name": s.name, "builtin": True} for s in self.builtins
        ]
        rows += [
            {"key": d.key, "name": d.name, "builtin": False, "version": d.version} for d in stored
        ]
        for row in rows:
            row["size"] = sizes.get(row["key"], 0)
            row["spark"] = sparkline(days.get(row["key"], []))
        return rows


def router(
    definitions: Definitions,
    history: SegmentSizeHistory,
    *,
    clock: Clock,
    builtins: Sequence[Segment] = BUILTIN_SEGMENTS,
) -> APIRouter:
    """The segments pages on ``definitions``, with sizes over time from ``history``."""
    pages = APIRouter(include_in_schema=False)
    shared = _SegmentPages(definitions, history, clock, builtins)
    builtin, editor = shared.builtin, shared.editor

    @pages.get("/segments", response_class=HTMLResponse)
    async def segments_page(request: Request, user: Analyst) -> Response:
        return render(request, "segments.html", user=user, rows=await shared.listing())

    @pages.post("/segments/_snapshot")
    async def take_snapshot(user: Marketer) -> Response:
        await history.snapshot_segment_sizes(clock.now().date(), clock.now())
        return RedirectResponse("/segments", status_code=303)

    @pages.get("/segments/_new", response_class=HTMLResponse)
    async def new_segment(request: Request, user: Analyst) -> Response:
        text = json.dumps(STARTER_RULE, indent=2)
        return await editor(
            request, user, None, name="", description="", rule_text=text, version=None
        )

    @pages.post("/segments/_preview", response_class=HTMLResponse)
    async def preview(request: Request, user: Analyst, rule: RuleText) -> Response:
        view = await shared.linked(checked(rule), PREVIEW_KEY)
        if view["condition"] is not None:
            view.update(await shared.size_of(view["condition"]))
        return render(request, "_segment_preview.html", user=user, **view)

    @pages.get("/segments/{key}", response_class=HTMLResponse)
    async def edit_segment(request: Request, user: Analyst, key: Key) -> Response:
        if key in builtin:
            segment = builtin[key]
            return await editor(request, user, key, name=segment.name, builtin=True, description="")
        found = await definitions.segments.get(key)
        if found is None:
            raise Problem("not-found", f"no segment {key}")
        return await editor(
            request,
            user,
            key,
            name=found.name,
            description=found.description,
            rule_text=json.dumps(found.rule, indent=2, ensure_ascii=False),
            version=found.version,
        )

    async def save(
        request: Request,
        user: Any,
        key: str,
        *,
        new: bool,
        name: str,
        rule: str,
        description: str,
        version: int | None,
    ) -> Response:
        form = {"name": name, "description": description, "rule_text": rule, "version": version}
        shown = None if new else key
        if new:
            form["new_key"] = key

        def refused(status: int, why: str) -> Awaitable[Response]:
            return editor(request, user, shown, status_code=status, problem=why, **form)

        if key in builtin:
            return await refused(409, f"{key} is a built-in segment: choose another key")
        view = await shared.linked(checked(rule), key)
        if view["condition"] is None:
            why = (
                f"line {view['typo']['line']}: {view['typo']['message']}"
                if "typo" in view
                else f"{view['error']['pointer']}: {view['error']['detail']}"
            )
            return await refused(422, f"The rule does not parse at {why}")
        try:
            with as_problems():
                try:
                    saved = await shared.edits.save(
                        key,
                        name=name,
                        description=description,
                        rule=view["rule"],
                        against=read_at("segment", key, version, new=new),
                    )
                except Exists:
                    why = f"a segment {key} exists already: open it to change it"
                    return await refused(409, why)
        except Problem as problem:
            return await refused(problem.status, problem.detail)
        stored = saved.definition
        return RedirectResponse(f"/segments/{stored.key}?saved={stored.version}", status_code=303)

    @pages.post("/segments/_new")
    async def create_segment(
        request: Request,
        user: Marketer,
        *,
        key: Annotated[str, Form(pattern=KEY_PATTERN)],
        name: Name,
        rule: RuleText,
        description: Description = "",
    ) -> Response:
        return await save(
            request,
            user,
            key,
            new=True,
            name=name,
            rule=rule,
            description=description,
            version=None,
        )

    @pages.post("/segments/{key}")
    async def save_segment(
        request: Request,
        user: Marketer,
        *,
        key: Key,
        name: Name,
        rule: RuleText,
        description: Description = "",
        version: Annotated[int | None, Form()] = None,
    ) -> Response:
        return await save(
            request,
            user,
            key,
            new=False,
            name=name,
            rule=rule,
            description=description,
            version=version,
        )

    return pages
