"""A programme's report counted from plain rows: entries per step and exit reason, each
variant's buyers and conversions, and the programme against its holdout."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from shared.domain.attribution import CampaignMessage, MessageResponse
from shared.domain.programmes import (
    BuyerOrder,
    EntryFacts,
    ProgrammeFacts,
    programme_report,
)
from tests.unit.builders import T0
from tests.unit.test_programmes import email, programme, sms, wait

DAY = timedelta(days=1)
TWO_VARIANTS = {
    "id": "email",
    "send": {
        "channels": ["email"],
        "variants": [
            {"name": "a", "share": 0.5, "templates": {"email": "win-back-email"}},
            {"name": "b", "share": 0.5, "templates": {"email": "other-email"}},
        ],
    },
}


def _message(
    buyer: str, variant: str, *, sent: bool = True, reason: str | None = None
) -> CampaignMessage:
    return CampaignMessage(
        key=f"m-{buyer}",
        campaign=f"test-programme.email.{variant}",
        profile_id=buyer,
        holdout=False,
        status="sent" if sent else "skipped",
        reason=reason,
        created_at=T0,
        sent_at=T0 if sent else None,
    )


def test_the_report_counts_steps_variants_and_the_programme_against_its_holdout() -> None:
    p = programme(TWO_VARIANTS, wait("pause", **{"for": "7d"}), sms(), goal={"within": "14d"})
    treated = [f"t{n}" for n in range(40)]
    held = [f"h{n}" for n in range(40)]
    entries = [
        EntryFacts(b, False, T0, "pause" if n < 10 else "sms", None if n < 10 else "end")
        for n, b in enumerate(treated)
    ] + [EntryFacts(b, True, T0, "email", "holdout") for b in held]
    messages = [_message(b, "a" if n % 2 else "b") for n, b in enumerate(treated[:38])]
    messages += [_message("t38", "a", sent=False, reason="capped")]
    messages += [_message("t39", "b", sent=False, reason="unsubscribed")]  # before the draw
    responses = [MessageResponse("m-t1", "opened", T0), MessageResponse("m-t2", "delivered", T0)]
    orders = [BuyerOrder(b, f"o-{b}", Decimal("100"), T0 + DAY) for b in treated[:20]]
    orders += [BuyerOrder(b, f"o-{b}", Decimal("100"), T0 + DAY) for b in held[:5]]
    orders += [BuyerOrder("t30", "late", Decimal("100"), T0 + 20 * DAY)]  # out of the window

    report = programme_report(p, ProgrammeFacts(entries, messages, responses, orders))

    assert report.entered == 40
    assert report.holdout_entries == 40
    assert report.at_step == {"pause": 10}
    assert report.exited == {"end": 30}
    step, later = report.steps
    assert later.step == "sms"
    assert later.variants[0].buyers == 0
    a, b = step.variants
    assert (a.name, a.buyers, a.sent, a.by_reason) == ("a", 20, 19, {"capped": 1})
    assert (b.name, b.buyers, b.sent) == ("b", 19, 19)
    assert a.converted + b.converted == 20  # t0..t19 each bought once, in the window
    assert (a.opened, b.delivered) == (1, 1)
    assert a.conversion is not None
    assert a.conversion.low < 0.5 < a.conversion.high
    overall = report.overall
    assert (overall.funnel.audience, overall.funnel.sent, overall.funnel.converted) == (40, 38, 20)
    assert (overall.holdout_size, overall.holdout_converted) == (40, 5)
    assert overall.conversion_uplift is not None
    assert overall.conversion_uplift.low > 0  # 50% against 12.5%
    assert report.results.treatment_revenue == Decimal("2000")


def test_an_empty_programme_reports_zeros_and_no_interval() -> None:
    report = programme_report(programme(email()), ProgrammeFacts())
    assert (report.entered, report.at_step, report.exited) == (0, {}, {})
    assert report.steps[0].variants[0].conversion is None
    assert report.overall.conversion_uplift is None
