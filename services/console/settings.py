"""What the console needs from the settings:

- ``NUDGE_CONSOLE_SESSION_SECRET`` (at least 32 characters): the key session
  cookies are signed with. Required with ``NUDGE_BUS=kafka`` (every console
  replica must sign with the same key); embedded, a key is generated once and
  kept in ``<data_dir>/console_session.key``.
- ``NUDGE_CONSOLE_SESSION_HOURS`` (default 8): how long a login lasts.
- ``NUDGE_PUBLIC_URL`` (exists): the session cookie is ``Secure`` when it is https.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from services.bootstrap import kept_key
from shared.settings import Settings

__all__ = ["SESSION_KEY_FILE", "ConsoleConfig", "console_config", "from_settings"]

SESSION_KEY_FILE = "console_session.key"
"""Where, under ``data_dir``, the generated session key is kept (embedded only)."""
_MIN_SECRET = 32


@dataclass(frozen=True)
class ConsoleConfig:
    session_key: bytes
    secure_cookies: bool
    """``Secure`` cookies: the console is reached over https."""
    session_seconds: int = 8 * 3600


def console_config(
    settings: Settings, *, session_secret: SecretStr | None = None, session_hours: float = 8.0
) -> ConsoleConfig:
    """The console's configuration from ``settings`` and the console's own settings.

    Raises :class:`RuntimeError` on Kafka (production) without ``session_secret``.
    """
    if session_secret is not None and len(session_secret.get_secret_value()) < _MIN_SECRET:
        raise RuntimeError(f"NUDGE_CONSOLE_SESSION_SECRET needs at least {_MIN_SECRET} characters")
    if session_secret is None and settings.bus == "kafka":
        raise RuntimeError(
            "set NUDGE_CONSOLE_SESSION_SECRET: every console process must sign sessions with "
            "the same key (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    if session_hours <= 0:
        raise RuntimeError("NUDGE_CONSOLE_SESSION_HOURS must be positive")
    key = kept_key(settings, session_secret, SESSION_KEY_FILE, "")
    return ConsoleConfig(
        session_key=key,
        secure_cookies=settings.public_url.startswith("https://"),
        session_seconds=round(session_hours * 3600),
    )


def from_settings(settings: Settings) -> tuple[SecretStr | None, float]:
    """The console's own settings: ``(session_secret, session_hours)``."""
    return settings.console_session_secret, settings.console_session_hours
