"""How fast logins may be tried: the source of the guesses is slowed, never the user.

Two counts, in the memory of each console process:

- **per client address**, every attempt (each costs an argon2 check): after a burst
  of :data:`ADDRESS_BURST`, one every ``1 / ADDRESS_RATE`` seconds; past that, 429
  ``rate-limited`` with ``Retry-After``, before the password is looked at. The
  address is the socket's peer, or, when the peer is one of ``NUDGE_TRUSTED_PROXIES``,
  the nearest address in ``X-Forwarded-For`` that is not a trusted proxy;
- **per username, failed attempts only**: after :data:`USER_FAILURE_BURST` failures,
  one more every ``1 / USER_FAILURE_RATE`` seconds. A username past that count is
  *under attack*: its password is still checked, and the right one still logs in,
  from any address; a wrong one also spends the whole budget of the address it came
  from, so each guessing address gets one try per window at that user.

So nothing anyone else sends can lock a user out: a correct password from an address
that is not itself over its limit always logs in, and an address that was refused logs
in with the correct password once its ``Retry-After`` has passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from fastapi import Request

from services.ingest.rate_limit import RateLimiter

__all__ = [
    "ADDRESS_BURST",
    "ADDRESS_RATE",
    "USER_FAILURE_BURST",
    "USER_FAILURE_RATE",
    "LoginLimiter",
    "client_address",
]

ADDRESS_RATE = 0.2
"""Login attempts a second per client address (one every 5 s)..."""
ADDRESS_BURST = 10
"""...after a burst of this many."""
USER_FAILURE_RATE = 1 / 60
"""Failed logins a minute per username that leave it out of attack mode (one a minute)..."""
USER_FAILURE_BURST = 10
"""...after this many failures."""

Network = IPv4Network | IPv6Network


def _within(address: str, networks: Sequence[Network]) -> bool:
    try:
        parsed = ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def client_address(request: Request, trusted_proxies: Sequence[Network]) -> str:
    """Who sent ``request``: its socket peer, unless that is a trusted proxy; then the
    right-most ``X-Forwarded-For`` hop that is not one (each proxy appends the address
    it got the request from; hops further left are whatever the client wrote)."""
    peer = request.client.host if request.client else ""
    if not _within(peer, trusted_proxies):
        return peer or "unknown"
    hops = [
        hop.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _within(hop, trusted_proxies):
            return hop
    return hops[0] if hops else peer


class LoginLimiter:
    """The two counts of the module's docstring, on ``clock`` (monotonic seconds)."""

    def __init__(
        self,
        trusted_proxies: Sequence[Network] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trusted_proxies = tuple(trusted_proxies)
        self._addresses = RateLimiter(ADDRESS_RATE, ADDRESS_BURST, clock=clock)
        self._failures = RateLimiter(USER_FAILURE_RATE, USER_FAILURE_BURST, clock=clock)

    def address(self, request: Request) -> str:
        return client_address(request, self.trusted_proxies)

    def attempt(self, address: str) -> float:
        """Count an attempt from ``address``: 0 when it may go on, else seconds to wait."""
        return self._addresses.take(address)

    def failed(self, address: str, username: str) -> None:
        """Count a failed login at ``username`` from ``address``."""
        if self._failures.take(_user_key(username)) > 0:  # under attack: the source pays
            self._addresses.drain(address)

    def under_attack(self, username: str) -> bool:
        """Whether ``username`` had more failed logins than its budget lately."""
        return self._failures.waiting(_user_key(username)) > 0


def _user_key(username: str) -> str:
    return username.strip().lower()
