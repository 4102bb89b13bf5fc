"""The console-user port: marketers, analysts and admins who log in to the console.

A user logs in with a username and a password; only a slow, salted hash of the
password is kept (argon2id). Each user has one role, and each role includes the
rights of the ones before it:

- ``analyst``: reads everything (segments, templates, campaigns, reports), changes nothing;
- ``marketer``: also edits segments, templates and campaigns;
- ``admin``: also manages console users and sees buyers' full identifiers.

A user is disabled rather than deleted, so what they did stays attributed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, Protocol, get_args

__all__ = ["ROLES", "ConsoleUser", "Role", "Users"]

Role = Literal["analyst", "marketer", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
"""Every role, fewest rights first."""


@dataclass(frozen=True)
class ConsoleUser:
    """What is known about a user; never their password nor its hash."""

    id: str
    username: str
    role: Role
    created_at: datetime
    disabled_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def has(self, role: Role) -> bool:
        """Whether this user has ``role``'s rights (an admin has a marketer's, and so on)."""
        return ROLES.index(self.role) >= ROLES.index(role)


class Users(Protocol):
    async def create(self, username: str, password: str, role: Role) -> ConsoleUser:
        """A new active user.

        Usernames are trimmed and lower-cased. Raises :class:`ValueError` for a
        malformed or taken username, a password that is too short or too long, or
        an unknown role.
        """
        ...

    async def authenticate(self, username: str, password: str) -> ConsoleUser | None:
        """The active user with this username and password; ``None`` otherwise.

        Takes about as long for an unknown username as for a wrong password, so the
        answer's timing does not tell which usernames exist.
        """
        ...

    async def get(self, user_id: str) -> ConsoleUser | None:
        """The user ``user_id``, disabled or not; ``None`` if there is none."""
        ...

    async def find(self, username: str) -> ConsoleUser | None:
        """The user called ``username`` (any case), disabled or not."""
        ...

    async def list(self) -> Sequence[ConsoleUser]:
        """Every user, disabled ones too, oldest first."""
        ...

    async def set_role(self, username: str, role: Role) -> ConsoleUser | None:
        """Give ``username`` another role; ``None`` if there is no such user."""
        ...

    async def set_password(self, username: str, password: str) -> bool:
        """Replace the password; ``False`` if there is no such user."""
        ...

    async def disable(self, username: str) -> bool:
        """Disable a user for good: they can no longer log in; ``False`` if there is none.

        Disabling a disabled user keeps the first time and returns ``True``.
        """
        ...

    async def ping(self) -> None:
        """Return once users can be read; raise :class:`~shared.errors.StoreUnavailable`."""
        ...

    async def close(self) -> None: ...
