"""Reading a programme written as JSON: :func:`parse_programme` validates it whole and
refuses it with a :class:`ProgrammeError` naming the JSON pointer of the bad field.

The document is a campaign's header (``key``, ``name``, ``status``, ``trigger``,
``audience``, ``holdout``, ``goal``, ``priority``) and a list of ``steps``, each an
object with an ``id`` and one of ``send``, ``wait``, ``branch``, ``split`` or
``exit``::

    {"id": "email", "send": {"channels": ["email"], "templates": {"email": "win-back"}}}
    {"id": "email", "send": {"channels": "best", "variants": [
        {"name": "a", "share": 0.5, "templates": {"email": "win-back"}},
        {"name": "b", "share": 0.5, "templates": {"email": "win-back-10"}}]}}
    {"id": "email", "send": {"channels": ["email"], "split": "adaptive",
        "adaptive": {"min_share": 0.05, "win_at": 0.95, "min_buyers": 100},
        "variants": [{"name": "a", "templates": ...}, {"name": "b", "templates": ...}]}}
    {"id": "pause", "wait": {"for": "7d"}}
    {"id": "morning", "wait": {"until": "10:00"}}
    {"id": "hour", "wait": {"best_hour": true}}
    {"id": "cart", "wait": {"event": "purchase", "timeout": "1d"}, "on_timeout": "sms"}
    {"id": "check", "branch": {"rule": {"field": "orders_count", "op": ">=", "value": 2}},
     "then": "sms", "else": "end"}
    {"id": "opened", "branch": {"response": {"step": "email", "is": "opened"}}, ...}
    {"id": "ab", "split": [{"share": 0.5, "next": "sms"}, {"share": 0.5, "next": "push"}]}
    {"id": "end", "exit": {"reason": "sunset"}}

A step's ``next`` (``then``/``else`` of a branch) names another step; left out, it is
the step written after it, and after the last one the walk ends. The graph must have
no cycle, every step must be reachable from the first, and a response branch must
name a send step that comes before it on every way there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from datetime import time, timedelta
from typing import Any, get_args

from shared.domain.campaigns import GOAL_EVENTS, CampaignError, Goal
from shared.domain.campaigns.parsing import (
    MAX_PRIORITY,
    parse_channels,
    parse_goal,
    parse_holdout,
    parse_key,
    parse_name,
    parse_templates,
    parse_trigger,
)
from shared.domain.documents import DocumentError, child, duration, only
from shared.domain.events import Channel
from shared.domain.programmes.adaptive import Adaptive
from shared.domain.programmes.model import (
    RESPONSES,
    Branch,
    EveryoneIn,
    Exit,
    OnResponse,
    OnRule,
    Programme,
    ProgrammeTrigger,
    Send,
    Split,
    Status,
    Step,
    Variant,
    Wait,
    WaitBestHour,
    WaitFor,
    WaitForEvent,
    WaitUntil,
)
from shared.domain.rules import RuleError, parse_rule

__all__ = ["MAX_STEPS", "MAX_VARIANTS", "ProgrammeError", "parse_programme", "successors"]

MAX_STEPS = 50
"""The most steps a programme may have."""

MAX_VARIANTS = 8
"""The most content variants of one send step (and arms of one split)."""

_STATUSES: tuple[Status, ...] = get_args(Status)
_STEP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,19}$")
_KINDS = ("send", "wait", "branch", "split", "exit")
_HEADER = (
    "key",
    "name",
    "status",
    "trigger",
    "audience",
    "holdout",
    "goal",
    "priority",
    "steps",
    "version",
)
_SHARE_TOLERANCE = 1e-6
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class ProgrammeError(DocumentError):
    """A programme that does not validate: ``pointer`` names the bad field (RFC 6901)."""


def parse_programme(
    document: Any,
    *,
    key: str | None = None,
    segments: Collection[str] | None = None,
    templates: Mapping[str, Collection[str]] | None = None,
) -> Programme:
    """Validate a programme written as JSON; raise :class:`ProgrammeError` at the bad field.

    ``key`` is the key from the address (``PUT /v1/programmes/{key}``); ``segments``
    and ``templates`` (channel to template keys), when given, are what exists. A
    programme saved without a status is a draft. ``version`` is the store's to set: a
    document may carry the one it was read at, and it is kept.
    """
    try:
        return _parse(document, key, segments, templates)
    except CampaignError as exc:
        raise ProgrammeError(exc.pointer, exc.message) from None
    except RuleError as exc:
        raise ProgrammeError(exc.pointer, exc.message) from None


def _parse(
    document: Any,
    key: str | None,
    segments: Collection[str] | None,
    templates: Mapping[str, Collection[str]] | None,
) -> Programme:
    if not isinstance(document, Mapping):
        raise ProgrammeError("", "expected an object")
    only(document, _HEADER, "", ProgrammeError, noun="field")
    key = parse_key(document, key)
    name = parse_name(document)
    status = document.get("status", "draft")
    if status not in _STATUSES:
        raise ProgrammeError("/status", f"expected one of {list(_STATUSES)}")
    trigger = _parse_trigger(document.get("trigger"), segments)
    audience = document.get("audience")
    audience_rule = parse_rule(audience, "/audience") if audience is not None else None
    holdout = parse_holdout(document.get("holdout", 0))
    goal: Goal = parse_goal(document.get("goal", {"event": "purchase", "within": "14d"}))
    priority = document.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ProgrammeError("/priority", "expected a whole number (higher wins)")
    if not 0 <= priority <= MAX_PRIORITY:
        raise ProgrammeError("/priority", f"expected a whole number from 0 to {MAX_PRIORITY}")
    version = document.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ProgrammeError("/version", "expected a whole number from 1")
    steps = _parse_steps(document.get("steps"), templates)
    _check_graph(steps)
    return Programme(
        key=key,
        name=name,
        trigger=trigger,
        steps=steps,
        start=next(iter(steps)),
        version=version,
        audience=audience,
        audience_rule=audience_rule,
        holdout=holdout,
        goal=goal,
        priority=priority,
        status=status,
        document=dict(document),
    )


def _parse_trigger(node: Any, segments: Collection[str] | None) -> ProgrammeTrigger:
    if node is None:
        raise ProgrammeError("/trigger", "required")
    if isinstance(node, Mapping) and "everyone_in" in node:
        only(node, ("everyone_in",), "/trigger", ProgrammeError)
        segment = node["everyone_in"]
        if not isinstance(segment, str) or not segment:
            raise ProgrammeError("/trigger/everyone_in", "expected a segment key")
        if segments is not None and segment not in segments:
            raise ProgrammeError("/trigger/everyone_in", f"no segment {segment!r}")
        return EveryoneIn(segment)
    if not isinstance(node, Mapping) or not {"segment", "event", "moment"} & set(node):
        raise ProgrammeError(
            "/trigger", "expected an object with one of: segment, event, moment, everyone_in"
        )
    return parse_trigger(node, "/trigger", segments)


def _parse_steps(node: Any, templates: Mapping[str, Collection[str]] | None) -> dict[str, Step]:
    if not isinstance(node, list) or not node:
        raise ProgrammeError("/steps", "expected a non-empty list of steps")
    if len(node) > MAX_STEPS:
        raise ProgrammeError("/steps", f"expected at most {MAX_STEPS} steps")
    ids: list[str] = []
    for i, written in enumerate(node):
        pointer = f"/steps/{i}"
        if not isinstance(written, Mapping):
            raise ProgrammeError(pointer, "expected an object with an id and one of " + _or())
        step_id = written.get("id")
        if not isinstance(step_id, str) or not _STEP_ID.match(step_id):
            raise ProgrammeError(
                child(pointer, "id"),
                "expected lower-case letters, digits, '-' and '_' (up to 20), e.g. 'email-1'",
            )
        if step_id in ids:
            raise ProgrammeError(child(pointer, "id"), f"step {step_id!r} is written twice")
        ids.append(step_id)
    steps: dict[str, Step] = {}
    for i, written in enumerate(node):
        following = ids[i + 1] if i + 1 < len(ids) else None
        steps[ids[i]] = _parse_step(written, f"/steps/{i}", following, set(ids), templates)
    return steps


def _or() -> str:
    return ", ".join(_KINDS[:-1]) + " or " + _KINDS[-1]


def _parse_step(
    node: Mapping[str, Any],
    pointer: str,
    following: str | None,
    ids: Collection[str],
    templates: Mapping[str, Collection[str]] | None,
) -> Step:
    kinds = [k for k in _KINDS if k in node]
    if len(kinds) != 1:
        raise ProgrammeError(pointer, f"expected exactly one of {_or()}")
    kind = kinds[0]
    step_id: str = node["id"]

    def target(name: str, default: str | None) -> str | None:
        value = node.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str) or value not in ids:
            raise ProgrammeError(
                child(pointer, name), f"expected the id of a step, one of {sorted(ids)}"
            )
        if value == step_id:
            raise ProgrammeError(child(pointer, name), "a step cannot lead to itself")
        return value

    body = node[kind]
    at = child(pointer, kind)
    if kind == "send":
        only(node, ("id", "send", "next"), pointer, ProgrammeError)
        return _parse_send(step_id, body, at, target("next", following), templates)
    if kind == "wait":
        only(node, ("id", "wait", "next", "on_timeout"), pointer, ProgrammeError)
        until = _parse_wait(body, at)
        on_timeout = None
        if isinstance(until, WaitForEvent):
            on_timeout = target("on_timeout", following)
        elif "on_timeout" in node:
            raise ProgrammeError(child(pointer, "on_timeout"), "only an event wait times out")
        return Wait(step_id, until, target("next", following), on_timeout)
    if kind == "branch":
        only(node, ("id", "branch", "then", "else"), pointer, ProgrammeError)
        condition = _parse_condition(body, at)
        return Branch(step_id, condition, target("then", following), target("else", following))
    if kind == "split":
        only(node, ("id", "split"), pointer, ProgrammeError)
        return Split(step_id, _parse_arms(body, at, ids, step_id))
    only(node, ("id", "exit"), pointer, ProgrammeError)
    if not isinstance(body, Mapping):
        raise ProgrammeError(at, "expected an object, {} or {reason}")
    only(body, ("reason",), at, ProgrammeError)
    reason = body.get("reason", "end")
    if not isinstance(reason, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", reason):
        raise ProgrammeError(child(at, "reason"), "expected a short code such as 'end' or 'sunset'")
    return Exit(step_id, reason)


def _parse_send(
    step_id: str,
    body: Any,
    pointer: str,
    next_step: str | None,
    templates: Mapping[str, Collection[str]] | None,
) -> Send:
    if not isinstance(body, Mapping):
        raise ProgrammeError(pointer, "expected {channels, templates} or {channels, variants}")
    only(
        body,
        ("channels", "templates", "variants", "holdout", "split", "adaptive", "offer"),
        pointer,
        ProgrammeError,
    )
    channels_at = child(pointer, "channels")
    if body.get("channels") is None:
        raise ProgrammeError(channels_at, "required")
    channels = parse_channels(body["channels"], channels_at)
    if ("templates" in body) == ("variants" in body):
        raise ProgrammeError(pointer, "expected one of: templates, variants")
    holdout = parse_holdout(body.get("holdout", 0), child(pointer, "holdout"))

    def chosen(value: Any, at: str) -> dict[Channel, str]:
        return parse_templates(value, channels, templates, pointer=at, channels_pointer=channels_at)

    if "templates" in body:
        offer = _offer_key(body.get("offer"), child(pointer, "offer"))
        variants: tuple[Variant, ...] = (
            Variant("a", chosen(body["templates"], child(pointer, "templates")), 1.0, offer),
        )
    adaptive = _parse_split(body, pointer)
    if "templates" in body:
        if adaptive is not None:
            raise ProgrammeError(child(pointer, "split"), "an adaptive split needs variants")
    else:
        if "offer" in body:
            raise ProgrammeError(child(pointer, "offer"), "with variants, each names its offer")
        variants = _parse_variants(
            body["variants"], child(pointer, "variants"), chosen, equal_shares=adaptive is not None
        )
        if adaptive is not None and len(variants) < 2:
            raise ProgrammeError(child(pointer, "variants"), "an adaptive split needs 2 or more")
        if adaptive is not None and adaptive.min_share * len(variants) > 1:
            raise ProgrammeError(
                child(child(pointer, "adaptive"), "min_share"),
                f"{len(variants)} variants can keep at most {1 / len(variants):g} each",
            )
    return Send(step_id, channels, variants, next_step, holdout, adaptive)


def _parse_split(body: Mapping[str, Any], pointer: str) -> Adaptive | None:
    """``"split": "adaptive"`` (with its optional rules under ``adaptive``), or ``"fixed"``
    (the default: the shares written)."""
    split = body.get("split", "fixed")
    if split not in ("fixed", "adaptive"):
        raise ProgrammeError(child(pointer, "split"), "expected 'fixed' or 'adaptive'")
    rules = body.get("adaptive")
    at = child(pointer, "adaptive")
    if split == "fixed":
        if rules is not None:
            raise ProgrammeError(at, 'only with "split": "adaptive"')
        return None
    if rules is None:
        return Adaptive()
    if not isinstance(rules, Mapping):
        raise ProgrammeError(at, "expected {min_share, win_at, min_buyers}")
    only(rules, ("min_share", "win_at", "min_buyers"), at, ProgrammeError)
    found = Adaptive()
    min_share = rules.get("min_share", found.min_share)
    if not _is_number(min_share) or not 0 <= min_share < 1:
        raise ProgrammeError(child(at, "min_share"), "expected a share from 0, below 1")
    win_at = rules.get("win_at", found.win_at)
    if not _is_number(win_at) or not 0.5 < win_at < 1:
        raise ProgrammeError(child(at, "win_at"), "expected a probability above 0.5, below 1")
    min_buyers = rules.get("min_buyers", found.min_buyers)
    if isinstance(min_buyers, bool) or not isinstance(min_buyers, int) or min_buyers < 1:
        raise ProgrammeError(child(at, "min_buyers"), "expected a whole number, at least 1")
    return Adaptive(float(min_share), float(win_at), min_buyers)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _parse_variants(
    node: Any, pointer: str, chosen: Any, *, equal_shares: bool = False
) -> tuple[Variant, ...]:
    """The variants written; with ``equal_shares`` (an adaptive split) a share may be left
    out, and then every variant starts with an equal one."""
    if not isinstance(node, list) or not node:
        raise ProgrammeError(pointer, "expected a non-empty list of {name, share, templates}")
    if len(node) > MAX_VARIANTS:
        raise ProgrammeError(pointer, f"expected at most {MAX_VARIANTS} variants")
    variants: list[Variant] = []
    for i, written in enumerate(node):
        at = f"{pointer}/{i}"
        if not isinstance(written, Mapping):
            raise ProgrammeError(at, "expected {name, share, templates}")
        only(written, ("name", "share", "templates", "offer"), at, ProgrammeError)
        name = written.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,11}", name):
            raise ProgrammeError(child(at, "name"), "expected a short name such as 'a' or '10-off'")
        if any(v.name == name for v in variants):
            raise ProgrammeError(child(at, "name"), f"variant {name!r} is written twice")
        unshared = equal_shares and "share" not in written
        share = 1 / len(node) if unshared else _share(written.get("share"), child(at, "share"))
        offer = _offer_key(written.get("offer"), child(at, "offer"))
        templates = chosen(written.get("templates"), child(at, "templates"))
        variants.append(Variant(name, templates, share, offer))
    _shares_sum(pointer, [v.share for v in variants])
    return tuple(variants)


def _offer_key(value: Any, pointer: str) -> str | None:
    """The key of the offer a send step or a variant names, if any."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", value):
        raise ProgrammeError(pointer, "expected an offer's key, e.g. 'win-back-10'")
    return value


def _share(value: Any, pointer: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProgrammeError(pointer, "expected a share above 0, at most 1")
    if not 0 < value <= 1:
        raise ProgrammeError(pointer, "expected a share above 0, at most 1")
    return float(value)


def _shares_sum(pointer: str, shares: list[float]) -> None:
    if abs(sum(shares) - 1.0) > _SHARE_TOLERANCE:
        raise ProgrammeError(pointer, f"the shares add up to {sum(shares):g}, expected 1")


def _parse_wait(body: Any, pointer: str) -> WaitFor | WaitUntil | WaitBestHour | WaitForEvent:
    if not isinstance(body, Mapping):
        raise ProgrammeError(pointer, "expected one of: for, until, best_hour, event")
    if "for" in body:
        only(body, ("for",), pointer, ProgrammeError)
        span = _duration(body["for"], child(pointer, "for"))
        if span <= timedelta(0):
            raise ProgrammeError(child(pointer, "for"), "expected a duration longer than zero")
        return WaitFor(span, calendar=body["for"].strip()[-1:] in ("d", "w"))
    if "until" in body:
        only(body, ("until",), pointer, ProgrammeError)
        written = body["until"]
        match = _TIME_OF_DAY.match(written) if isinstance(written, str) else None
        if match is None:
            raise ProgrammeError(child(pointer, "until"), "expected a local time of day, 'HH:MM'")
        return WaitUntil(time(int(match[1]), int(match[2])))
    if "best_hour" in body:
        only(body, ("best_hour", "within"), pointer, ProgrammeError)
        if body["best_hour"] is not True:
            raise ProgrammeError(child(pointer, "best_hour"), "expected true")
        within = _duration(body.get("within", "24h"), child(pointer, "within"))
        return WaitBestHour(within)
    if "event" in body:
        return _parse_event_wait(body, pointer)
    raise ProgrammeError(pointer, "expected one of: for, until, best_hour, event")


def _parse_event_wait(body: Mapping[str, Any], pointer: str) -> WaitForEvent:
    only(body, ("event", "name", "timeout"), pointer, ProgrammeError)
    event = body["event"]
    if event not in GOAL_EVENTS:
        raise ProgrammeError(
            child(pointer, "event"),
            f"expected one of {list(GOAL_EVENTS)} (the events whose moment a profile keeps)",
        )
    name = body.get("name")
    if event == "track" and (not isinstance(name, str) or not name):
        raise ProgrammeError(child(pointer, "name"), "a track wait names its custom event")
    if event != "track" and name is not None:
        raise ProgrammeError(child(pointer, "name"), "a name goes with event 'track' only")
    if body.get("timeout") is None:
        raise ProgrammeError(child(pointer, "timeout"), "required: how long to wait at most")
    timeout = _duration(body["timeout"], child(pointer, "timeout"))
    if timeout <= timedelta(0):
        raise ProgrammeError(child(pointer, "timeout"), "expected a duration longer than zero")
    return WaitForEvent(str(event), timeout, name)


def _duration(value: Any, pointer: str) -> timedelta:
    if not isinstance(value, str):
        raise ProgrammeError(pointer, "expected a duration such as '2h', '3d' or '2w'")
    return duration(value, pointer, ProgrammeError)


def _parse_condition(body: Any, pointer: str) -> OnRule | OnResponse:
    if not isinstance(body, Mapping) or len(body) != 1 or not set(body) <= {"rule", "response"}:
        raise ProgrammeError(pointer, "expected one of: rule, response")
    if "rule" in body:
        return OnRule.of(body["rule"], parse_rule(body["rule"], child(pointer, "rule")))
    at = child(pointer, "response")
    node = body["response"]
    if not isinstance(node, Mapping):
        raise ProgrammeError(at, "expected {step, is}")
    only(node, ("step", "is"), at, ProgrammeError)
    step = node.get("step")
    if not isinstance(step, str) or not step:
        raise ProgrammeError(child(at, "step"), "expected the id of an earlier send step")
    response = node.get("is")
    for known in RESPONSES:
        if response == known:
            return OnResponse(step, known)
    raise ProgrammeError(child(at, "is"), f"expected one of {list(RESPONSES)}")


def _parse_arms(
    node: Any, pointer: str, ids: Collection[str], step_id: str
) -> tuple[tuple[float, str | None], ...]:
    if not isinstance(node, list) or len(node) < 2:
        raise ProgrammeError(pointer, "expected a list of at least two {share, next}")
    if len(node) > MAX_VARIANTS:
        raise ProgrammeError(pointer, f"expected at most {MAX_VARIANTS} arms")
    arms: list[tuple[float, str | None]] = []
    for i, written in enumerate(node):
        at = f"{pointer}/{i}"
        if not isinstance(written, Mapping):
            raise ProgrammeError(at, "expected {share, next}")
        only(written, ("share", "next"), at, ProgrammeError)
        share = _share(written.get("share"), child(at, "share"))
        goes = written.get("next")
        if goes is not None and (not isinstance(goes, str) or goes not in ids or goes == step_id):
            raise ProgrammeError(
                child(at, "next"), "expected the id of another step, or null to end"
            )
        arms.append((share, goes))
    _shares_sum(pointer, [share for share, _ in arms])
    return tuple(arms)


# --- the graph ---------------------------------------------------------------------------


def successors(step: Step) -> tuple[str, ...]:
    """The steps ``step`` may lead to (an ended walk is not one)."""
    if isinstance(step, Send):
        found: tuple[str | None, ...] = (step.next,)
    elif isinstance(step, Wait):
        found = (step.next, step.on_timeout)
    elif isinstance(step, Branch):
        found = (step.then, step.otherwise)
    elif isinstance(step, Split):
        found = tuple(goes for _, goes in step.arms)
    else:
        found = ()
    return tuple(dict.fromkeys(s for s in found if s is not None))


def _check_graph(steps: Mapping[str, Step]) -> None:
    """No cycle, every step reachable from the first, response branches after their send."""
    index = {step_id: i for i, step_id in enumerate(steps)}
    start = next(iter(steps))
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(step_id: str) -> None:
        state[step_id] = 1
        for goes in successors(steps[step_id]):
            if state.get(goes) == 1:
                raise ProgrammeError(
                    f"/steps/{index[step_id]}",
                    f"leads back to step {goes!r}: a programme has no loop",
                )
            if goes not in state:
                visit(goes)
        state[step_id] = 2

    visit(start)
    for step_id in steps:
        if step_id not in state:
            raise ProgrammeError(
                f"/steps/{index[step_id]}/id", f"step {step_id!r} cannot be reached from {start!r}"
            )
    before = _sends_before(steps, start)
    for step_id, step in steps.items():
        if isinstance(step, Branch) and isinstance(step.condition, OnResponse):
            named = step.condition.step
            at = f"/steps/{index[step_id]}/branch/response/step"
            if named not in steps or not isinstance(steps[named], Send):
                raise ProgrammeError(at, f"expected the id of a send step, not {named!r}")
            if named not in before[step_id]:
                raise ProgrammeError(
                    at, f"send step {named!r} does not come before this one on every way here"
                )


def _sends_before(steps: Mapping[str, Step], start: str) -> dict[str, frozenset[str]]:
    """Per step, the send steps passed on every way from ``start`` to it (a DAG: one pass
    in topological order, intersecting over the ways in)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(step_id: str) -> None:
        seen.add(step_id)
        for goes in successors(steps[step_id]):
            if goes not in seen:
                visit(goes)
        order.append(step_id)

    visit(start)
    order.reverse()
    before: dict[str, frozenset[str]] = {start: frozenset()}
    for step_id in order:
        passed = before[step_id] | ({step_id} if isinstance(steps[step_id], Send) else set())
        for goes in successors(steps[step_id]):
            before[goes] = before[goes] & passed if goes in before else frozenset(passed)
    return before
