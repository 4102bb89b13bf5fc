"""How fast logins may be tried: the source of the guesses is slowed, and a user under
attack is guessed at no faster from a thousand addresses than from one.

Three counts, in the memory of each console process, each a token bucket:

- **per client address**, every attempt from an unknown browser that reaches the
  password (each costs an argon2 check): after a burst of :data:`ADDRESS_BURST`, one
  every ``1 / ADDRESS_RATE`` seconds. The address is the socket's peer, or, when the peer is one of
  ``NUDGE_TRUSTED_PROXIES``, the nearest address in ``X-Forwarded-For`` that is not a
  trusted proxy; IPv6 clients count by their /64 (one machine holds a whole /64), and
  ``::ffff:a.b.c.d`` counts as ``a.b.c.d``;
- **per username**, for attempts from browsers it does not know: :data:`USER_FAILURE_BURST`
  failed logins, then one more every ``1 / USER_FAILURE_RATE`` seconds. A username
  whose bucket is empty is *under attack*; an attempt at it from an unknown browser is
  refused before the password is looked at, whatever address it comes from;
- **per known browser** (a *device cookie*, see :class:`DeviceCookies`, the OWASP
  scheme): a browser that logged in as a user before holds a signed cookie naming
  them, and its attempts at that user spend a bucket of their own, as large as the
  user's, and nothing of the address's. So a user under attack still logs in at once
  from a browser they used before; once that browser made as many failed attempts as
  the bucket holds, it counts as unknown until the bucket refills.

An attempt takes its token before the password is checked (so concurrent guesses
cannot share one token) and gives it back when the password was right: only failures
count. Nothing anyone else sends locks a correct password out: from a known browser
it logs in at once; from a new browser while the user is under attack it may be
answered 429 with ``Retry-After`` (seconds until the user's bucket has a token again),
and logs in once that time has passed, unless a guess took that token first.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from fastapi import Request
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.responses import Response

from services.http.rate_limit import RateLimiter

__all__ = [
    "ADDRESS_BURST",
    "ADDRESS_RATE",
    "DEVICE_COOKIE",
    "DEVICE_LIFETIME",
    "USER_FAILURE_BURST",
    "USER_FAILURE_RATE",
    "Attempt",
    "DeviceCookies",
    "LoginLimiter",
    "address_key",
    "client_address",
]

ADDRESS_RATE = 0.2
"""Login attempts a second per client address (one every 5 s)..."""
ADDRESS_BURST = 10
"""...after a burst of this many."""
USER_FAILURE_RATE = 1 / 60
"""Failed logins a second per username (one a minute) from unknown browsers, and per
known browser..."""
USER_FAILURE_BURST = 10
"""...after this many failures."""
DEVICE_COOKIE = "nudge_console_device"
DEVICE_LIFETIME = timedelta(days=30)
"""How long a browser stays known after it logged in."""

Network = IPv4Network | IPv6Network


def _parsed(address: str) -> IPv4Address | IPv6Address | None:
    try:
        parsed = ip_address(address.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def _within(address: str, networks: Sequence[Network]) -> bool:
    parsed = _parsed(address)
    return parsed is not None and any(parsed in network for network in networks)


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


def address_key(address: str) -> str:
    """The bucket ``address`` counts in: an IPv4 address, an IPv6 /64, or the text as is."""
    parsed = _parsed(address)
    if parsed is None:
        return address
    if isinstance(parsed, IPv6Address):
        return str(ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _user_key(username: str) -> str:
    return username.strip().lower()


class DeviceCookies:
    """Device cookies: signed with ``key`` (the session key, under a salt of their own),
    naming the user who logged in and a random id of the browser, with their end."""

    def __init__(
        self,
        key: bytes,
        *,
        secure: bool = False,
        lifetime: timedelta = DEVICE_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._serializer = URLSafeSerializer(key, salt="nudge.console.device")
        self._secure = secure
        self._lifetime = lifetime
        self._clock = clock

    def issue(self, username: str) -> str:
        """A cookie value naming ``username``, for a browser that just logged in as them."""
        until = int(self._clock() + self._lifetime.total_seconds())
        return self._serializer.dumps(
            {"user": _user_key(username), "device": secrets.token_urlsafe(16), "until": until}
        )

    def remember(self, response: Response, username: str) -> None:
        """Set a fresh device cookie for ``username`` on ``response`` (a successful login)."""
        response.set_cookie(
            DEVICE_COOKIE,
            self.issue(username),
            max_age=int(self._lifetime.total_seconds()),
            path="/login",
            secure=self._secure,
            httponly=True,
            samesite="strict",
        )

    def device_of(self, request: Request, username: str) -> str | None:
        """The id of ``request``'s browser if it holds a live device cookie for
        ``username``; else ``None`` (no cookie, another user's, forged or expired)."""
        cookie = request.cookies.get(DEVICE_COOKIE)
        if not cookie or len(cookie) > 500:
            return None
        try:
            payload = self._serializer.loads(cookie)
        except BadSignature:
            return None
        if not (
            isinstance(payload, dict)
            and payload.get("user") == _user_key(username)
            and isinstance(payload.get("until"), int)
            and payload["until"] > self._clock()
            and isinstance(payload.get("device"), str)
        ):
            return None
        device: str = payload["device"]
        return device


@dataclass(frozen=True)
class Attempt:
    """What :meth:`LoginLimiter.attempt` decided: ``wait`` seconds (0: check the password),
    and the failure bucket that paid for it."""

    wait: float
    _bucket: RateLimiter | None = None
    _key: str = ""


class LoginLimiter:
    """The three counts of the module's docstring, on ``clock`` (monotonic seconds)."""

    def __init__(
        self,
        trusted_proxies: Sequence[Network] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trusted_proxies = tuple(trusted_proxies)
        self._addresses = RateLimiter(ADDRESS_RATE, ADDRESS_BURST, clock=clock)
        self._failures = RateLimiter(USER_FAILURE_RATE, USER_FAILURE_BURST, clock=clock)
        self._devices = RateLimiter(USER_FAILURE_RATE, USER_FAILURE_BURST, clock=clock)

    def address(self, request: Request) -> str:
        return client_address(request, self.trusted_proxies)

    def attempt(self, address: str, username: str, device: str | None = None) -> Attempt:
        """Count an attempt at ``username`` from ``address``, in the browser ``device``
        (from :meth:`DeviceCookies.device_of`). A known browser with a token left in its
        bucket may have its password checked, whatever the address; any other attempt
        when both the address and the user's failure bucket have a token. The tokens
        are taken; else nothing is, and ``wait`` says how long to wait."""
        user = _user_key(username)
        if device is not None:
            known = f"{user} {device}"
            if self._devices.waiting(known) == 0:
                self._devices.take(known)
                return Attempt(0.0, self._devices, known)
        address = address_key(address)
        wait = max(self._addresses.waiting(address), self._failures.waiting(user))
        if wait > 0:
            return Attempt(wait)
        self._addresses.take(address)
        self._failures.take(user)
        return Attempt(0.0, self._failures, user)

    def not_a_failure(self, attempt: Attempt) -> None:
        """The password of ``attempt`` was right (or never judged): its failure token
        goes back; the address's stays spent (the argon2 check was made)."""
        if attempt._bucket is not None:
            attempt._bucket.give_back(attempt._key)

    def under_attack(self, username: str) -> bool:
        """Whether ``username`` had more failed logins from unknown browsers than its budget."""
        return self._failures.waiting(_user_key(username)) > 0
