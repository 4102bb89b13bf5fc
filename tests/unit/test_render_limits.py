"""A template cannot make a render blow up: the sandbox refuses, before computing them,
numbers and strings too large for a message, and the output stops at the channel's limit.
What cannot be refused up front is stopped in time by the renderer (tests/contract)."""

from __future__ import annotations

import pickle

import pytest

from shared.domain.message_templates import TemplateContentError, checked_template, render_parts
from shared.domain.rendering import (
    DEFAULT_LIMITS,
    EmailTemplate,
    PushTemplate,
    RenderError,
    RenderLimits,
    RenderTooCostly,
    SmsTemplate,
    render_email,
    render_push,
    render_sms,
)


def sms(source: str, **context: object) -> str:
    return render_sms(SmsTemplate(source), context).text


def email(html: str, *, limits: RenderLimits = DEFAULT_LIMITS, **context: object) -> str:
    return render_email(EmailTemplate("Hi", html, "Hi"), context, limits=limits).html


def test_a_huge_power_is_refused_before_it_is_computed() -> None:
    # Seen: a preview of this blocked the event loop for 18 s.
    with pytest.raises(RenderTooCostly) as refused:
        sms("{{ (10**(10**7)) % 7 }}")
    assert refused.value.limit == "time"
    assert refused.value.part == "text"
    assert refused.value.line == 1
    assert "10 ** 10000000" in refused.value.message


def test_a_huge_repetition_is_refused_before_it_is_made() -> None:
    # Seen: this answered a 20 MB preview.
    with pytest.raises(RenderTooCostly) as refused:
        email("<p>\n{{ 'x' * 2*10**7 }}</p>")
    assert refused.value.limit == "output"
    assert refused.value.part == "html"
    assert refused.value.line == 2


def test_nested_loops_over_large_ranges_are_refused() -> None:
    nested = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    with pytest.raises(RenderTooCostly) as refused:
        sms(nested)
    assert refused.value.limit == "time"


def test_a_product_of_huge_numbers_is_refused() -> None:
    with pytest.raises(RenderTooCostly) as refused:
        sms("{% set n = 7 ** 5000 %}{{ (n * n * n * n) % 7 }}")
    assert refused.value.limit == "time"


@pytest.mark.parametrize(
    "source",
    [
        "{{ '%0999999999d' % 1 }}",
        "{{ '%0*d' % (999999999, 1) }}",
        "{{ '%099999999s'|format(1) }}",
        "{{ 'x'.ljust(10**9) }}",
        "{{ 'x'|center(10**9) }}",
        "{{ (1).to_bytes(10**9, 'big') }}",
        "{{ ('x' * 1000).replace('x', 'x' * 1000) }}",
        "{{ ('x' * 1000)|replace('x', 'x' * 1000) }}",
        "{% set s = 'x' * 1000 %}{{ s + s + s }}",
        "{% set s = 'x' * 1000 %}{{ s.join([s, s, s]) }}",
        "{% set s = 'x' * 1000 %}{{ [s, s, s]|join(s) }}",
        "{{ [1]|batch(10**9, 'x')|list }}",
        "{{ ('x\n' * 500)|indent(10**6) }}",
    ],
)
def test_text_made_long_in_one_step_is_refused_up_front(source: str) -> None:
    with pytest.raises(RenderTooCostly) as refused:
        sms(source)
    assert refused.value.limit == "output"
    assert "would be" in refused.value.message  # refused before it was made, not once output


def test_ordinary_arithmetic_and_formatting_still_render() -> None:
    source = (
        "{{ 2 ** 100 }} {{ 'ab' * 3 }} {{ 3 * 4 }} {{ 10 % 3 }} {{ 'a' + 'b' }} "
        "{{ '%d items' % 3 }} {{ '%.2f'|format(2.5) }} {{ 'x'|center(5) }}|"
        "{% for i in range(3) %}{{ i }}{% endfor %}"
    )
    assert sms(source) == "1267650600228229401496703205376 ababab 12 1 ab 3 items 2.50   x  |012"


def test_an_email_is_cut_off_at_its_output_limit_every_part_together() -> None:
    limits = RenderLimits(email=2000)
    loop = "{% for i in range(300) %}{{ i }},{% endfor %}"  # about 1100 bytes
    assert email(loop, limits=limits).startswith("0,1,2,")
    template = EmailTemplate(subject="Hi", html=loop, text=loop)
    with pytest.raises(RenderTooCostly) as refused:
        render_email(template, {}, limits=limits)
    assert (refused.value.limit, refused.value.part) == ("output", "text")
    assert "2000 bytes" in refused.value.message


def test_the_output_limit_counts_utf8_bytes() -> None:
    limits = RenderLimits(sms=400)
    assert render_sms(SmsTemplate("{{ 'ж' * 200 }}"), {}, limits=limits).text == "ж" * 200
    with pytest.raises(RenderTooCostly):
        render_sms(SmsTemplate("{{ 'ж' * 201 }}"), {}, limits=limits)


def test_a_buyer_value_over_the_sms_limit_is_refused() -> None:
    with pytest.raises(RenderTooCostly) as refused:
        sms("Hello {{ name }}", name="x" * 5000)
    assert refused.value.limit == "output"


def test_a_push_is_bounded_every_part_together() -> None:
    limits = RenderLimits(push=300)
    template = PushTemplate(title="t", body="{{ 'b' * 200 }}", data={"x": "{{ 'd' * 200 }}"})
    with pytest.raises(RenderTooCostly) as refused:
        render_push(template, {}, limits=limits)
    assert refused.value.part == "data.x"


def test_render_parts_names_the_costly_part_and_line() -> None:
    template = checked_template("sms", {"text": "Hello\n{{ 'x' * 10**6 }}"})
    with pytest.raises(RenderTooCostly) as refused:
        render_parts(template, {})
    assert (refused.value.part, refused.value.line, refused.value.limit) == ("text", 2, "output")


def test_a_template_nested_too_deep_is_refused_when_read() -> None:
    with pytest.raises(TemplateContentError) as refused:
        checked_template("sms", {"text": "{{ 1" + " + 1" * 20_000 + " }}"})
    assert refused.value.pointer == "/content/text"


@pytest.mark.parametrize(
    "error",
    [
        RenderError("html", "'coupon' is undefined", 3),
        RenderTooCostly("template", "takes longer than 1 s to render", "time"),
        RenderTooCostly("text", "over", "output", 2),
        TemplateContentError("/content/html", "unknown part", 4),
    ],
)
def test_render_errors_survive_the_trip_from_a_worker(error: Exception) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert vars(back) == vars(error)
    assert str(back) == str(error)


LONG = "{% set l = 'x' * 2000 %}"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ('y' * 2000).join('x' * 2000) }}",
        "{{ ('y' * 2000).join(('x' * 2000)|list) }}",
        "{{ ('x' * 2000)|join('y' * 2000) }}",
        "{{ ('x' * 2000)|wordwrap(1, wrapstring='y' * 2000) }}",
        "{% set s = 'x' * 1500 %}{{ s ~ s }}",
        "{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s|length }}",
        "{{ '{:>100000000}'.format(1) }}",
        "{{ '{0:{1}}'.format(1, 10**8) }}",
        "{{ '{:.100000000f}'.format(1.5) }}",
        "{{ '{0}{0}{0}{0}'.format('x' * 1000) }}",
        LONG + "{{ ([l] * 2000)|pprint }}",
        LONG + "{{ [l] * 2000 }}",
        LONG + "{{ ([l] * 2)|string }}",
        LONG + "{{ [l] + [l] }}",
        LONG + "{{ [[l] * 2] * 2 }}",
        "{{ [[1] * 1000] * 1000 }}",
        LONG + "{% set ns = namespace(a=[l]) %}{% for i in range(30) %}"
        "{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a|replace('x', 'y') }}",
        LONG + "{% set ns = namespace(a=[l]) %}{% for i in range(30) %}"
        "{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ '%s' % (ns.a,) }}",
        LONG + "{% set ns = namespace(a=[l]) %}{% for i in range(30) %}"
        "{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ '{}'.format(ns.a) }}",
        LONG + "{% set ns = namespace(a=[l]) %}{% for i in range(30) %}"
        "{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a }}",
        LONG + "{{ ([[l]] * 2000)|sum(start=[]) }}",
    ],
)
def test_ways_around_the_up_front_bounds_are_refused_quickly(source: str) -> None:
    # Seen: each rendered in full (up to 32 MB) before the SMS limit refused its output.
    with pytest.raises(RenderTooCostly) as refused:
        sms(source)
    assert "would be" in refused.value.message  # refused before it was made, not once output


@pytest.mark.parametrize("name", ["lipsum", "cycler", "joiner"])
def test_globals_no_ready_made_template_uses_are_gone(name: str) -> None:
    with pytest.raises(RenderError, match="undefined"):
        sms("{{ " + name + "() }}")


def test_ordinary_joins_concatenations_and_lists_still_render() -> None:
    source = (
        "{{ ', '.join(['a', 'b']) }} {{ ['a', 'b']|join('-') }} {{ 'ab' ~ 1 ~ 'c' }} "
        "{{ [1, 2] * 2 }} {{ [1] + [2] }} {{ '{:>4}|{:.1f}'.format(1, 2.25) }} "
        "{{ ('one two three')|wordwrap(7, wrapstring='/') }} {{ [1, 2, 3]|sum }} "
        "{{ {'a': 1}|pprint }} {{ [[1], [2]]|sum(start=[]) }}"
    )
    assert sms(source) == (
        "a, b a-b ab1c [1, 2, 1, 2] [1, 2]    1|2.2 one two/three 6 {'a': 1} [1, 2]"
    )


class _Probe:
    """Counts how often a template calls it."""

    def __init__(self) -> None:
        self.calls = 0

    def hit(self) -> str:
        self.calls += 1
        return "x"


@pytest.mark.parametrize("failing", ["{{ 1 // zero }}", "{{ coupon.code }}"])
def test_a_failing_render_is_not_rendered_again_to_find_its_line(failing: str) -> None:
    # Seen: the line was found by a second render, with a fresh (email-sized) budget.
    probe = _Probe()
    template = checked_template("sms", {"text": "{{ probe.hit() }}\n" + failing})
    with pytest.raises(RenderError) as failed:
        render_parts(template, {"probe": probe, "zero": 0})
    assert (failed.value.part, failed.value.line) == ("text", 2)
    assert probe.calls == 1
