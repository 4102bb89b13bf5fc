"""The payment card networks' issuer prefixes (IIN ranges) and card number lengths: data.

A card number starts with its network's issuer identification number (IIN, the
first six to eight digits, ISO/IEC 7812-1); each network publishes the prefixes it
uses and the lengths its numbers take. This table is the one Wikipedia's "Payment
card number" article keeps (section "Issuer identification number"), as read in
2026, which in turn cites the networks' own rules; ``docs/architecture.md`` names it. A
prefix range is written as its first and last prefix, of equal length, both
included. Numbers of 12 digits (some Maestro) are left out: nudge looks for 13 to 19.

Add a network here when it starts issuing; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["ISSUERS", "issuer_lengths"]

# network, first prefix, last prefix, lengths of its numbers
ISSUERS: tuple[tuple[str, str, str, tuple[int, ...]], ...] = (
    ("American Express", "34", "34", (15,)),
    ("American Express", "37", "37", (15,)),
    ("BORICA", "2205", "2205", (16,)),
    ("China T-Union", "31", "31", (19,)),
    ("China UnionPay", "62", "62", (16, 17, 18, 19)),
    ("Dankort", "5019", "5019", (16,)),
    ("Diners Club International", "300", "305", (14, 15, 16, 17, 18, 19)),
    ("Diners Club International", "3095", "3095", (14, 15, 16, 17, 18, 19)),
    ("Diners Club International", "36", "36", (14, 15, 16, 17, 18, 19)),
    ("Diners Club International", "38", "39", (14, 15, 16, 17, 18, 19)),
    ("Diners Club United States & Canada", "54", "55", (16,)),
    ("Discover", "6011", "6011", (16, 17, 18, 19)),
    ("Discover", "644", "649", (16, 17, 18, 19)),
    ("Discover", "65", "65", (16, 17, 18, 19)),
    ("Discover", "622126", "622925", (16, 17, 18, 19)),
    ("GPN", "1946", "1946", (16, 18, 19)),
    ("GPN", "50", "50", (16, 18, 19)),
    ("GPN", "56", "56", (16, 18, 19)),
    ("GPN", "58", "58", (16, 18, 19)),
    ("GPN", "60", "63", (16, 18, 19)),
    ("Humo", "9860", "9860", (16,)),
    ("InstaPayment", "637", "639", (16,)),
    ("InterPayment", "636", "636", (16, 17, 18, 19)),
    ("JCB", "3528", "3589", (16, 17, 18, 19)),
    ("LankaPay", "357111", "357111", (16,)),
    ("Maestro", "5018", "5018", (13, 14, 15, 16, 17, 18, 19)),
    ("Maestro", "5020", "5020", (13, 14, 15, 16, 17, 18, 19)),
    ("Maestro", "5038", "5038", (13, 14, 15, 16, 17, 18, 19)),
    ("Maestro", "5893", "5893", (13, 14, 15, 16, 17, 18, 19)),
    ("Maestro", "6304", "6304", (13, 14, 15, 16, 17, 18, 19)),
    ("Maestro", "6759", "6759", (13, 14, 15, 16, 17, 18, 19)),
    ("Maestro", "6761", "6763", (13, 14, 15, 16, 17, 18, 19)),
    ("Maestro UK", "676770", "676770", (13, 14, 15, 16, 17, 18, 19)),
    ("Maestro UK", "676774", "676774", (13, 14, 15, 16, 17, 18, 19)),
    ("Mastercard", "2221", "2720", (16,)),
    ("Mastercard", "51", "55", (16,)),
    ("Mir", "2200", "2204", (16, 17, 18, 19)),
    ("NPS Pridnestrovie", "6054740", "6054744", (16,)),
    ("RuPay", "60", "60", (16,)),
    ("RuPay", "65", "65", (16,)),
    ("RuPay", "81", "82", (16,)),
    ("RuPay", "508", "508", (16,)),
    ("RuPay", "353", "353", (16,)),
    ("RuPay", "356", "356", (16,)),
    ("Troy", "65", "65", (16,)),
    ("Troy", "9792", "9792", (16,)),
    ("UATP", "1", "1", (15,)),
    ("UzCard", "8600", "8600", (16,)),
    ("Verve", "506099", "506198", (16, 18, 19)),
    ("Verve", "507865", "507964", (16, 18, 19)),
    ("Verve", "650002", "650027", (16, 18, 19)),
    ("Visa", "4", "4", (13, 16, 19)),
    ("Visa Electron", "4026", "4026", (16,)),
    ("Visa Electron", "417500", "417500", (16,)),
    ("Visa Electron", "4508", "4508", (16,)),
    ("Visa Electron", "4844", "4844", (16,)),
    ("Visa Electron", "4913", "4913", (16,)),
    ("Visa Electron", "4917", "4917", (16,)),
)


def _prefixes() -> Iterator[tuple[str, frozenset[int]]]:
    for _network, first, last, lengths in ISSUERS:
        width = len(first)
        for prefix in range(int(first), int(last) + 1):
            yield str(prefix).zfill(width), frozenset(lengths)


def issuer_lengths() -> dict[str, frozenset[int]]:
    """Every issuer prefix, as digits, with the lengths a card number under it may have
    (the union over the networks that share it)."""
    table: dict[str, frozenset[int]] = {}
    for prefix, lengths in _prefixes():
        table[prefix] = table.get(prefix, frozenset()) | lengths
    return table
