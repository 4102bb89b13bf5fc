"""The segment rule language: a small tree of conditions over a buyer's profile.

A rule is written as JSON (or YAML) and parsed into :class:`Condition` objects.
Every condition answers three questions, on plain data and a given moment:

- ``holds(profile, now)``: is it true for this buyer now?
- ``reads``: which profile fields can change its answer (so an event that
  changed none of them need not evaluate it again);
- ``next_change(profile, now)``: the next moment its answer can flip with no
  event at all (``older_than 30d`` flips 30 days after the last order), or
  ``None`` when only an event can change it.

A rule that does not parse raises :class:`RuleError` naming the JSON pointer of
the bad node and what was expected there.

The conditions: ``all``/``any``/``not``; ``stat`` (order stats and their moments);
``trait``; ``rhythm`` (days between orders, the expected next order); ``bought``
(a category, SKU or store, ever or within a period); ``event`` (a custom event's
count, ever or within a period of whole days); ``opens`` (the share of opens at
the buyer's local hours); ``segment`` (another segment's rule, linked by
:func:`link_rules`); ``lifecycle``; ``rfm`` and ``rfm_score``; ``p_alive``; ``clv``.
docs/segments.md has an example of each.

The language is in three modules: :mod:`.model` (the conditions and how each is
evaluated), :mod:`.parsing` (JSON to conditions) and :mod:`.linking` (segment
references resolved across a set of segments). Import from this package.
"""

from __future__ import annotations

from shared.domain.documents import parse_duration
from shared.domain.rules.linking import link_rules
from shared.domain.rules.model import (
    AllOf,
    AnyOf,
    Bought,
    ClvCompare,
    ClvTopShare,
    Condition,
    EventCount,
    ExpectedOrderDue,
    ExpectedOrderOverdue,
    LifecycleIs,
    Not,
    OpensAtHours,
    PAlive,
    RfmScoreIn,
    RfmSegment,
    RhythmCompare,
    SegmentRef,
    StatCompare,
    StatTime,
    TraitCompare,
    TraitEquals,
    TraitExists,
)
from shared.domain.rules.parsing import KINDS, RuleError, parse_rule

__all__ = [
    "KINDS",
    "AllOf",
    "AnyOf",
    "Bought",
    "ClvCompare",
    "ClvTopShare",
    "Condition",
    "EventCount",
    "ExpectedOrderDue",
    "ExpectedOrderOverdue",
    "LifecycleIs",
    "Not",
    "OpensAtHours",
    "PAlive",
    "RfmScoreIn",
    "RfmSegment",
    "RhythmCompare",
    "RuleError",
    "SegmentRef",
    "StatCompare",
    "StatTime",
    "TraitCompare",
    "TraitEquals",
    "TraitExists",
    "link_rules",
    "parse_duration",
    "parse_rule",
]
