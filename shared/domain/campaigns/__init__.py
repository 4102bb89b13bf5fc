"""Trigger campaigns: what starts one, whom it is for, what it sends and what it aims at.

Marketers write a campaign as JSON (what the console API takes). The package is in
four modules: :mod:`.triggers` (what starts a campaign, and whether an event
matches), :mod:`.model` (the campaign, which campaigns a change or an event starts,
the message identity and what a template sees), :mod:`.parsing` (JSON to a
campaign, with a :class:`CampaignError` at the bad field) and :mod:`.builtin` (the
ready-made campaigns and their templates). Import from this package.
"""

from __future__ import annotations

from shared.domain.campaigns.builtin import (
    BUILTIN_CAMPAIGNS,
    BUILTIN_PUSH_TEMPLATES,
    BUILTIN_SMS_TEMPLATES,
    BUILTIN_TEMPLATES,
)
from shared.domain.campaigns.model import (
    GOAL_EVENTS,
    MAX_HOLDOUT,
    Audience,
    Campaign,
    ChannelPolicy,
    Goal,
    Reentry,
    Status,
    campaigns_triggered_by,
    campaigns_triggered_by_event,
    message_context,
    message_key,
)
from shared.domain.campaigns.parsing import CampaignError, campaigns_over, parse_campaign
from shared.domain.campaigns.triggers import (
    PROFILE_MOMENTS,
    EventTrigger,
    MomentTrigger,
    PropertyFilter,
    SegmentTrigger,
    Trigger,
)
from shared.domain.documents import format_duration

__all__ = [
    "BUILTIN_CAMPAIGNS",
    "BUILTIN_PUSH_TEMPLATES",
    "BUILTIN_SMS_TEMPLATES",
    "BUILTIN_TEMPLATES",
    "GOAL_EVENTS",
    "MAX_HOLDOUT",
    "PROFILE_MOMENTS",
    "Audience",
    "Campaign",
    "CampaignError",
    "ChannelPolicy",
    "EventTrigger",
    "Goal",
    "MomentTrigger",
    "PropertyFilter",
    "Reentry",
    "SegmentTrigger",
    "Status",
    "Trigger",
    "campaigns_over",
    "campaigns_triggered_by",
    "campaigns_triggered_by_event",
    "format_duration",
    "message_context",
    "message_key",
    "parse_campaign",
]
