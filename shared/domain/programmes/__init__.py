"""Programmes: sequential, multi-variant retention programmes, as versioned graphs of steps.

:mod:`.model` holds the programme and its steps (send, wait, branch, split, exit),
:mod:`.parsing` reads one written as JSON (a :class:`ProgrammeError` at the bad
field), :mod:`.stepping` walks a buyer through one on plain data and a clock, and
:mod:`.builtin` has the ready-made programmes. Import from this package.
"""

from __future__ import annotations

from shared.domain.programmes.builtin import BUILTIN_PROGRAMMES
from shared.domain.programmes.model import (
    RESPONSES,
    Branch,
    EveryoneIn,
    Exit,
    OnResponse,
    OnRule,
    Programme,
    ProgrammeTrigger,
    Response,
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
from shared.domain.programmes.parsing import (
    MAX_STEPS,
    MAX_VARIANTS,
    ProgrammeError,
    parse_programme,
    successors,
)
from shared.domain.programmes.stepping import (
    Entry,
    Position,
    Relocation,
    StepSend,
    Walk,
    draw,
    enter,
    in_programme_holdout,
    relocate,
    variant_for,
    wait_ends,
    walk,
)

__all__ = [
    "BUILTIN_PROGRAMMES",
    "MAX_STEPS",
    "MAX_VARIANTS",
    "RESPONSES",
    "Branch",
    "Entry",
    "EveryoneIn",
    "Exit",
    "OnResponse",
    "OnRule",
    "Position",
    "Programme",
    "ProgrammeError",
    "ProgrammeTrigger",
    "Relocation",
    "Response",
    "Send",
    "Split",
    "Status",
    "Step",
    "StepSend",
    "Variant",
    "Wait",
    "WaitBestHour",
    "WaitFor",
    "WaitForEvent",
    "WaitUntil",
    "Walk",
    "draw",
    "enter",
    "in_programme_holdout",
    "parse_programme",
    "relocate",
    "successors",
    "variant_for",
    "wait_ends",
    "walk",
]
