"""Structured logs with structlog; no full identifier or secret ever reaches a line.

Every event dict passes :func:`mask_identifiers`: values under identifier-like
keys are masked by kind, and any other string is scanned for email addresses,
phone numbers, long digit runs (card numbers) and API keys, which are masked too.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from shared.domain.masking import mask_email, mask_identifier, mask_phone, mask_text

__all__ = ["configure_logging", "get_logger", "mask_identifiers"]

_SECRET_KEYS = frozenset({"password", "secret", "token", "api_key", "authorization"})
_API_KEY = re.compile(r"\bnk_([0-9a-f]{16})_[A-Za-z0-9_-]+")
"""An API key (shared/adapters/store/api_keys.py): its id may show, its secret never."""
_MASKERS = {
    "email": mask_email,
    "phone": mask_phone,
    "loyalty_card": mask_identifier,
    "bank_card_token": mask_identifier,
    "app_install_id": mask_identifier,
}


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(_API_KEY.sub(r"nk_\1_***", value))
    if isinstance(value, dict):
        return {k: _mask_field(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


def _mask_field(key: str, value: Any) -> Any:
    if key.lower() in _SECRET_KEYS and value is not None:
        return "***"
    masker = _MASKERS.get(key)
    if masker is not None and isinstance(value, str):
        return masker(value)
    return _mask(value)


def mask_identifiers(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        event_dict[key] = _mask_field(key, value)
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_identifiers,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        # Resolve sys.stderr at each logger's creation, not once: tests and CLIs swap it.
        logger_factory=lambda *_args: structlog.PrintLogger(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


if not structlog.is_configured():
    # Masking holds from the first log line, before (or without) a CLI configuring logs.
    configure_logging()
