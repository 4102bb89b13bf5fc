"""A programme: a versioned graph of steps a buyer walks through, one at a time.

A :class:`Programme` is entered by a trigger (the campaigns' segment, event and
moment triggers, or :class:`EveryoneIn`: every member of a segment, once, when
the programme is activated). Each entry walks the graph from :attr:`Programme.start`:

- :class:`Send`: a message, decided like a campaign's (consent, caps, priority,
  sunset, quiet hours, best hour, channel), in one of the step's content
  :class:`Variant`\\ s, drawn deterministically per buyer;
- :class:`Wait`: a duration, until a local time of day, until the buyer's best
  hour, or until an event happens (with a timeout path);
- :class:`Branch`: on a rule of the segment language, on the buyer's response to
  an earlier send step, or a random split with shares;
- :class:`Exit`: the end of the walk, with its reason.

A purchase (or the programme's goal event) after entry exits the buyer at any
step (``goal``); so does leaving the audience (``left_audience``). One holdout
is drawn at entry for the whole programme; a send step may hold out its own
share too. The graph has no cycles, so every walk ends.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any, Literal

from shared.domain.campaigns import ChannelPolicy, Goal, Trigger
from shared.domain.events import Channel
from shared.domain.programmes.adaptive import Adaptive
from shared.domain.rules import Condition

__all__ = [
    "RESPONSES",
    "Branch",
    "EveryoneIn",
    "Exit",
    "OnResponse",
    "OnRule",
    "Programme",
    "ProgrammeTrigger",
    "Response",
    "Send",
    "Split",
    "Status",
    "Step",
    "Variant",
    "Wait",
    "WaitBestHour",
    "WaitFor",
    "WaitForEvent",
    "WaitUntil",
]

Status = Literal["draft", "active", "paused"]
Response = Literal["delivered", "opened", "clicked", "converted"]
RESPONSES: tuple[Response, ...] = ("delivered", "opened", "clicked", "converted")
"""What a buyer may have done with an earlier step's message, each implying the one before
it only as the providers report it (an open without a delivery report still counts)."""


@dataclass(frozen=True)
class EveryoneIn:
    """Every buyer in ``segment`` when the programme is activated enters it, once."""

    segment: str


ProgrammeTrigger = Trigger | EveryoneIn


@dataclass(frozen=True)
class Variant:
    """One content variant of a send step: a template per channel and its share."""

    name: str
    templates: Mapping[Channel, str]
    share: float
    offer: str | None = None
    """The offer each message of this variant carries a code of: variants can differ by
    discount level (docs/offers.md)."""

    def __hash__(self) -> int:
        return hash((self.name, self.share))


@dataclass(frozen=True)
class Send:
    """Send one message in one of ``variants`` (shares sum to 1), then go to ``next``."""

    id: str
    channels: ChannelPolicy
    variants: tuple[Variant, ...]
    next: str | None
    holdout: float = 0.0
    """A share of the buyers reaching this step who skip its message (its own control group)."""
    adaptive: Adaptive | None = None
    """Set for an adaptive split (:mod:`.adaptive`): the variants' shares follow what the
    buyers did (Thompson sampling on the goal); ``None``: the shares written."""


@dataclass(frozen=True)
class WaitFor:
    """Wait a duration. Written in days or weeks (``calendar``), it is counted on the
    buyer's local calendar: the same local time so many days later, across a change of
    summer time; written in hours or minutes, it is elapsed time."""

    span: timedelta
    calendar: bool = False


@dataclass(frozen=True)
class WaitUntil:
    """Wait until the next ``at`` (a local time of day in the buyer's zone)."""

    at: time


@dataclass(frozen=True)
class WaitBestHour:
    """Wait until the buyer's best hour (their own opens, else similar buyers'); at once
    when no hour is known, or when it is further than ``within``."""

    within: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class WaitForEvent:
    """Wait until the buyer does ``event`` (``track`` with ``name``), or ``timeout``."""

    event: str
    timeout: timedelta
    name: str | None = None


@dataclass(frozen=True)
class Wait:
    """Wait as ``until`` says, then go to ``next``; for an event wait, to ``on_timeout``
    when the timeout passes first."""

    id: str
    until: WaitFor | WaitUntil | WaitBestHour | WaitForEvent
    next: str | None
    on_timeout: str | None = None


@dataclass(frozen=True)
class OnRule:
    """True when the rule (segment language) holds for the buyer at that moment."""

    definition: Any
    rule: Condition = field(compare=False)

    @classmethod
    def of(cls, definition: Any, rule: Condition) -> OnRule:
        return cls(copy.deepcopy(definition), rule)


@dataclass(frozen=True)
class OnResponse:
    """True when the buyer's response to send step ``step`` includes ``response``."""

    step: str
    response: Response


@dataclass(frozen=True)
class Branch:
    """Go to ``then`` when ``condition`` is true, else to ``otherwise``."""

    id: str
    condition: OnRule | OnResponse
    then: str | None
    otherwise: str | None


@dataclass(frozen=True)
class Split:
    """A random split: each arm ``(share, next)``, drawn deterministically per buyer."""

    id: str
    arms: tuple[tuple[float, str | None], ...]


@dataclass(frozen=True)
class Exit:
    """The end of the walk."""

    id: str
    reason: str = "end"


Step = Send | Wait | Branch | Split | Exit


@dataclass(frozen=True)
class Programme:
    """A programme at one version; build it from JSON with :func:`~.parsing.parse_programme`.

    ``steps`` maps each step's id to the step, in the order written; ``start`` is the
    first. A ``next`` of ``None`` ends the walk there (reason ``end``).
    """

    key: str
    name: str
    trigger: ProgrammeTrigger
    steps: Mapping[str, Step]
    start: str
    version: int = 1
    audience: Any = None
    """The audience rule as written (``None``: everyone the trigger brings)."""
    audience_rule: Condition | None = field(default=None, compare=False)
    holdout: float = 0.0
    goal: Goal = field(default_factory=Goal)
    priority: int = 0
    status: Status = "draft"
    document: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """The programme as written (what :func:`~.parsing.parse_programme` read)."""

    def __hash__(self) -> int:
        return hash((self.key, self.version))

    def step(self, step_id: str) -> Step:
        return self.steps[step_id]

    @property
    def sends(self) -> tuple[Send, ...]:
        """The send steps, in the order written."""
        return tuple(s for s in self.steps.values() if isinstance(s, Send))
