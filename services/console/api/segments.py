"""The segments API: marketers define segments, see their sizes, and preview a rule.

- ``PUT /v1/segments/{key}``: create (no ``If-Match``, 201) or change (``If-Match``, 200)
  a segment: ``{name, description?, rule}``; the rule is parsed first, and a rule that
  does not parse is ``422 invalid-rule`` with the pointer of the bad node under ``/rule``.
- ``GET /v1/segments/{key}`` with its ``ETag``; ``GET /v1/segments``: every segment, the
  built-ins too, with how many buyers are in each now.
- ``DELETE /v1/segments/{key}`` (``If-Match``): archive it; its members exit.
- ``POST /v1/segments/preview``: an unsaved rule's size over the base now and a sample
  of up to 20 of its buyers, identifiers masked.

Reads and previews need the ``console:read`` scope, changes ``console:write``.
See :mod:`services.console.api.versions` for ``ETag`` and ``If-Match``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.console.api.versions import etag, expected_version, saved
from services.http.auth import require as require_key
from services.http.problems import Problem
from shared.domain.documents import child as pointer_child
from shared.domain.masking import mask_email, mask_phone
from shared.domain.profile import Profile
from shared.domain.rules import Condition, RuleError, link_rules, parse_rule
from shared.domain.segments import BUILTIN_SEGMENTS, Segment
from shared.ports.api_keys import Scope
from shared.ports.clock import Clock
from shared.ports.definitions import Definitions, SegmentDefinition

__all__ = ["KEY_PATTERN", "router"]

KEY_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
"""A definition's key: lower-case letters, digits, ``.``, ``_`` and ``-``, up to 100."""
SAMPLE_SIZE = 20
PREVIEW_BATCH = 1000

Key = Annotated[str, Path(pattern=KEY_PATTERN, description="The segment's key.")]
IfMatch = Annotated[
    str | None, Header(description='The version the change is made against: "<version>"')
]
Requirement = Callable[[Scope], Callable[..., Any]]


class SegmentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    rule: Any = Field(description="The rule tree (see docs/segments.md).")


class PreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: Any = Field(description="The rule tree to try on the base; nothing is saved.")


MAX_DEPTH = 32
"""How deeply a rule's JSON may nest: far beyond any marketer's rule, far below recursion."""


def _too_deep(node: Any, pointer: str, depth: int = 0) -> str | None:
    """The pointer of the first node nested deeper than :data:`MAX_DEPTH`, if any."""
    if depth > MAX_DEPTH:
        return pointer
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in children:
        found = _too_deep(child, pointer_child(pointer, key), depth + 1)
        if found is not None:
            return found
    return None


def parsed_rule(rule: Any) -> Condition:
    """``rule`` parsed, or ``422 invalid-rule`` pointing at the bad node (under ``/rule``)."""
    deep = _too_deep(rule, "/rule")
    if deep is not None:
        detail = f"a rule nests at most {MAX_DEPTH} levels"
        raise Problem("invalid-rule", f"{deep}: {detail}", [{"pointer": deep, "detail": detail}])
    try:
        return parse_rule(rule)
    except RuleError as exc:
        pointer = "/rule" + ("" if exc.pointer == "/" else exc.pointer)
        raise Problem(
            "invalid-rule",
            f"the rule does not parse at {pointer}: {exc.message}",
            [{"pointer": pointer, "detail": exc.message}],
        ) from None


PREVIEW_KEY = "\x00preview"
"""The key an unsaved rule is linked under: no stored segment can have it."""


async def linked_rule(
    key: str, rule: Condition, definitions: Definitions, builtins: Sequence[Segment]
) -> Condition:
    """``rule`` with its ``{segment: ...}`` references linked to the segments in force, or
    ``422 invalid-rule`` at the reference to an unknown segment or one closing a cycle."""
    in_force: dict[str, Condition] = {s.key: s.rule for s in builtins}
    for d in await definitions.segments.list():
        if d.key != key:
            with contextlib.suppress(RuleError, RecursionError):
                in_force[d.key] = parse_rule(d.rule)
    errors: dict[str, RuleError] = {}
    linked = link_rules({**in_force, key: rule}, errors)
    if key in errors:
        error = errors[key]
        pointer = "/rule" + ("" if error.pointer == "/" else error.pointer)
        raise Problem(
            "invalid-rule",
            f"the rule cannot be used at {pointer}: {error.message}",
            [{"pointer": pointer, "detail": error.message}],
        )
    return linked[key]


PREVIEW_SCAN = 5000
"""Buyers a preview reads at most: exact up to this base, estimated beyond it."""


async def preview_of(
    definitions: Definitions,
    condition: Condition,
    now: datetime,
    *,
    sample_size: int,
    shape: Callable[[Profile], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """How many buyers ``condition`` holds for at ``now``, and a masked sample of them.

    Exact on a base of up to :data:`PREVIEW_SCAN` buyers; on a larger one, estimated from
    its first :data:`PREVIEW_SCAN` in id order (a random sample, since ids are random
    UUIDs) with a 95% margin, so a preview answers as fast as a marketer types and
    costs the same on any base. ``shape`` turns a buyer into a sample entry.
    """
    shaped = shape or _buyer
    size, scanned = 0, 0
    sample: list[dict[str, Any]] = []
    after: str | None = None
    while scanned < PREVIEW_SCAN:
        batch = await definitions.scan_profiles(after=after, limit=PREVIEW_BATCH)
        scanned += len(batch)
        for profile in batch:
            if condition.holds(profile, now):
                size += 1
                if len(sample) < sample_size:
                    sample.append(shaped(profile))
        if len(batch) < PREVIEW_BATCH:
            break
        after = batch[-1].id
    found: dict[str, Any] = {"size": size, "base": scanned, "sample": sample, "as_of": now}
    if scanned < PREVIEW_SCAN:
        return found
    base = await definitions.count_profiles()
    if base <= scanned:
        return found
    share = size / scanned
    margin = 1.96 * math.sqrt(share * (1 - share) / scanned) * base
    found.update(
        estimated=True,
        scanned=scanned,
        base=base,
        size=round(share * base),
        margin=max(1, round(margin)),
    )
    return found


def _definition(d: SegmentDefinition) -> dict[str, Any]:
    return {
        "key": d.key,
        "name": d.name,
        "description": d.description,
        "rule": d.rule,
        "version": d.version,
        "builtin": False,
        "created_at": d.created_at.isoformat(),
        "updated_at": d.updated_at.isoformat(),
        "archived_at": d.archived_at.isoformat() if d.archived_at else None,
    }


def _buyer(profile: Profile) -> dict[str, Any]:
    """A buyer in a preview's sample: identifiers masked (``+7*******67``, ``a***@shop.ru``)."""
    return {
        "id": profile.id,
        "email": mask_email(profile.email) if profile.email else None,
        "phone": mask_phone(profile.phone) if profile.phone else None,
        "orders_count": profile.orders_count,
        "revenue_total": str(profile.revenue_total),
        "last_order_at": profile.last_order_at.isoformat() if profile.last_order_at else None,
    }


def router(
    definitions: Definitions,
    *,
    clock: Clock,
    require: Requirement = require_key,
    builtins: Sequence[Segment] = BUILTIN_SEGMENTS,
) -> APIRouter:
    """The segments routes on ``definitions``; ``require(scope)`` is the dependency that
    admits a caller for a scope (API keys by default)."""
    api = APIRouter(prefix="/v1/segments", tags=["segments"])
    readers = [Depends(require("console:read"))]
    writers = [Depends(require("console:write"))]
    builtin = {s.key: s for s in builtins}

    @api.get("", summary="Every segment, with how many buyers are in it now", dependencies=readers)
    async def list_segments() -> dict[str, Any]:
        sizes = await definitions.segment_sizes()
        listed: list[dict[str, Any]] = [
            {"key": s.key, "name": s.name, "builtin": True, "size": sizes.get(s.key, 0)}
            for s in builtins
        ]
        for d in await definitions.segments.list():
            listed.append({**_definition(d), "size": sizes.get(d.key, 0)})
        return {"segments": listed}

    @api.post(
        "/preview",
        summary="An unsaved rule's size over the base now, and a sample of its buyers",
        dependencies=readers,
    )
    async def preview(body: PreviewBody) -> dict[str, Any]:
        rule = await linked_rule(PREVIEW_KEY, parsed_rule(body.rule), definitions, builtins)
        found = await preview_of(definitions, rule, clock.now(), sample_size=SAMPLE_SIZE)
        return {**found, "as_of": found["as_of"].isoformat()}

    @api.get(
        "/{key}",
        summary="One segment; its version is the ETag",
        dependencies=readers,
        responses={404: {"description": "no such segment"}},
    )
    async def get_segment(key: Key) -> JSONResponse:
        found = await definitions.segments.get(key)
        if found is None:
            raise Problem("not-found", f"no segment {key}")
        return JSONResponse(_definition(found), headers={"ETag": etag(found.version)})

    @api.put(
        "/{key}",
        summary="Create a segment, or change it with If-Match",
        dependencies=writers,
        responses={
            201: {"description": "created"},
            409: {"description": "a built-in segment"},
            412: {"description": "If-Match is not the current version"},
            428: {"description": "the segment exists and If-Match is missing"},
            422: {"description": "the rule does not parse"},
        },
    )
    async def put_segment(key: Key, body: SegmentBody, if_match: IfMatch = None) -> JSONResponse:
        if key in builtin:
            raise Problem("read-only", f"{key} is a built-in segment")
        rule = body.rule
        await linked_rule(key, parsed_rule(rule), definitions, builtins)
        current = await definitions.segments.get(key)
        expected = expected_version(key, if_match, current.version if current else None)
        stored = await saved(
            key,
            lambda: definitions.segments.put(
                key,
                name=body.name,
                description=body.description,
                rule=rule,
                expected_version=expected,
            ),
        )
        return JSONResponse(
            _definition(stored),
            status_code=201 if expected is None else 200,
            headers={"ETag": etag(stored.version)},
        )

    @api.delete(
        "/{key}",
        summary="Archive a segment (If-Match); its members exit",
        dependencies=writers,
        responses={404: {"description": "no such segment"}},
    )
    async def archive_segment(key: Key, if_match: IfMatch = None) -> JSONResponse:
        if key in builtin:
            raise Problem("read-only", f"{key} is a built-in segment")
        current = await definitions.segments.get(key)
        if current is None:
            raise Problem("not-found", f"no segment {key}")
        expected = expected_version(key, if_match, current.version)
        assert expected is not None
        archived = await saved(key, lambda: definitions.segments.archive(key, expected))
        return JSONResponse(_definition(archived), headers={"ETag": etag(archived.version)})

    return api
