"""What a push notification says: a title, a body, where a tap leads, and data for the app.

The limits are what a phone shows and what a push service carries: a lock
screen cuts a title after about 65 characters and a body after about 240, FCM
refuses a message whose payload is over 4096 bytes, its data values must be
strings, and a few data keys are its own. Content over a limit is refused
before any send, with a message that says which part and by how much.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "BODY_MAX",
    "DEEP_LINK_MAX",
    "PAYLOAD_MAX_BYTES",
    "TITLE_MAX",
    "PushContent",
    "PushContentError",
]

TITLE_MAX = 65
BODY_MAX = 240
DEEP_LINK_MAX = 2048
PAYLOAD_MAX_BYTES = 4096
"""FCM's limit on a message's notification and data together."""

_RESERVED_KEYS = frozenset({"from", "message_type", "notification", "deep_link", "idempotency_key"})
"""FCM's own keys, and the two nudge adds to every notification's data."""
_RESERVED_PREFIXES = ("google", "gcm")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


class PushContentError(ValueError):
    """Push content over a limit, or not something a push service carries."""


@dataclass(frozen=True)
class PushContent:
    title: str
    body: str
    deep_link: str | None = None
    """Where a tap leads: ``https://shop.example/cart`` or an app's own ``shop://cart``."""
    data: Mapping[str, str] = field(default_factory=dict)
    """Key-value pairs the app reads; strings only, as FCM carries them."""

    def __post_init__(self) -> None:
        _check_text("title", self.title, TITLE_MAX)
        _check_text("body", self.body, BODY_MAX)
        if self.deep_link is not None and not _is_link(self.deep_link):
            raise PushContentError(
                f"deep_link: {self.deep_link[:80]!r} is not an absolute link with a scheme "
                f"(https://… or app://…) of at most {DEEP_LINK_MAX} characters"
            )
        for key, value in self.data.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise PushContentError(f"data: {key!r} must map a string to a string")
            if key.lower() in _RESERVED_KEYS or key.lower().startswith(_RESERVED_PREFIXES):
                raise PushContentError(f"data: the key {key!r} is reserved")
        size = self.payload_bytes()
        if size > PAYLOAD_MAX_BYTES:
            raise PushContentError(
                f"the notification is {size} bytes, over the {PAYLOAD_MAX_BYTES} a push "
                "service carries: shorten the data"
            )

    def payload_bytes(self) -> int:
        """Size of the title, body, deep link and data as JSON in UTF-8."""
        payload: dict[str, object] = {
            "title": self.title,
            "body": self.body,
            "data": dict(self.data),
        }
        if self.deep_link is not None:
            payload["deep_link"] = self.deep_link
        return len(json.dumps(payload, ensure_ascii=False).encode())


def _is_link(value: str) -> bool:
    return len(value) <= DEEP_LINK_MAX and _SCHEME.fullmatch(value) is not None


def _check_text(part: str, value: str, limit: int) -> None:
    if not value.strip():
        raise PushContentError(f"{part}: must not be empty")
    if len(value) > limit:
        raise PushContentError(
            f"{part}: {len(value)} characters, over the {limit} a phone shows "
            f"({len(value) - limit} too many)"
        )
