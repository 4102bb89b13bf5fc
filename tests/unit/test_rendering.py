"""Rendering marketers' templates: sandboxed, strict about names, HTML escaped."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.rendering import EmailTemplate, RenderError, render_email

PARTS = ("subject", "html", "text")


def template(**parts: str) -> EmailTemplate:
    """A template whose parts are plain text except those given."""
    return EmailTemplate(
        subject=parts.get("subject", "Hello"),
        html=parts.get("html", "<p>Hello</p>"),
        text=parts.get("text", "Hello"),
    )


ESCAPES = [
    pytest.param("{{ ''.__class__.__mro__ }}", id="str-class-mro"),
    pytest.param("{{ ().__class__.__base__.__subclasses__() }}", id="tuple-base-subclasses"),
    pytest.param("{{ cycler.__init__.__globals__ }}", id="cycler-globals"),
    pytest.param("{{ joiner.__init__.__globals__.os }}", id="joiner-globals-os"),
    pytest.param("{{ lipsum.__globals__['os'] }}", id="lipsum-globals"),
    pytest.param("{{ namespace.__init__.__globals__ }}", id="namespace-globals"),
    pytest.param("{{ x.__subclasses__() }}", id="context-class-subclasses"),
    pytest.param("{{ (x|attr('__subclasses__'))() }}", id="attr-filter"),
    pytest.param("{{ x['__subclasses__']() }}", id="subscript"),
    pytest.param("{% for c in x.__subclasses__() %}{{ c }}{% endfor %}", id="loop"),
    pytest.param("{{ x.mro() }}", id="mro-method"),
]


@pytest.mark.parametrize("part", PARTS)
@pytest.mark.parametrize("source", ESCAPES)
def test_template_cannot_reach_python_internals(part: str, source: str) -> None:
    with pytest.raises(RenderError) as caught:
        render_email(template(**{part: source}), {"x": object})
    assert caught.value.part == part
    # lipsum is no global any more (test_render_limits): nothing left to reach through
    assert "unsafe" in caught.value.message or "'lipsum' is undefined" in caught.value.message


@pytest.mark.parametrize("part", PARTS)
def test_undefined_name_is_an_error_naming_the_part(part: str) -> None:
    with pytest.raises(RenderError) as caught:
        render_email(template(**{part: "Hello {{ first_name }}"}), {})
    assert caught.value.part == part
    assert "'first_name' is undefined" in caught.value.message
    assert str(caught.value).startswith(f"{part} (line 1): ")  # the line, from one render


def test_undefined_attribute_of_a_known_name_is_an_error() -> None:
    with pytest.raises(RenderError, match="nickname") as caught:
        render_email(template(html="{{ customer.nickname }}"), {"customer": {"orders": 1}})
    assert caught.value.part == "html"


def test_undefined_name_inside_a_condition_is_an_error() -> None:
    with pytest.raises(RenderError, match="vip") as caught:
        render_email(template(text="{% if vip %}Hi VIP{% endif %}"), {})
    assert caught.value.part == "text"


def test_template_syntax_error_names_the_part_and_line() -> None:
    with pytest.raises(RenderError) as caught:
        render_email(template(html="<p>Hello</p>\n<p>{{ name( }}</p>"), {"name": "Anna"})
    assert caught.value.part == "html"
    assert caught.value.line == 2
    assert str(caught.value).startswith("html (line 2): ")


def test_html_part_escapes_context_values() -> None:
    rendered = render_email(
        template(html="<p>Hello, {{ name }}!</p>"), {"name": "<script>alert(1)</script>"}
    )
    assert rendered.html == "<p>Hello, &lt;script&gt;alert(1)&lt;/script&gt;!</p>"
    assert "<script>" not in rendered.html


def test_html_part_keeps_the_template_own_markup() -> None:
    rendered = render_email(template(html="<p><b>{{ code }}</b> & more</p>"), {"code": "A&B"})
    assert rendered.html == "<p><b>A&amp;B</b> & more</p>"


def test_text_part_is_not_escaped() -> None:
    rendered = render_email(template(text="Hello, {{ name }}!"), {"name": "<script>Tom & Jerry"})
    assert rendered.text == "Hello, <script>Tom & Jerry!"


def test_subject_whitespace_is_collapsed_to_single_spaces() -> None:
    source = "  We miss you,\n\t{{ name }}   :  {{ offer }}\n"
    rendered = render_email(template(subject=source), {"name": "Anna", "offer": "10%  off"})
    assert rendered.subject == "We miss you, Anna : 10% off"


def test_subject_is_plain_text_not_html() -> None:
    rendered = render_email(template(subject="{{ shop }} news"), {"shop": "Tom & Jerry"})
    assert rendered.subject == "Tom & Jerry news"


def test_text_part_keeps_its_line_breaks() -> None:
    rendered = render_email(template(text="Hello!\n\n{{ body }}\nBye"), {"body": "Line"})
    assert rendered.text == "Hello!\n\nLine\nBye"


def test_every_part_sees_the_same_context() -> None:
    context: dict[str, Any] = {"customer": {"name": "Anna", "orders": 3}}
    rendered = render_email(
        EmailTemplate(
            subject="{{ customer.name }}",
            html="<i>{{ customer.orders }}</i>",
            text="{{ customer.name }}: {{ customer.orders }}",
        ),
        context,
    )
    assert (rendered.subject, rendered.html, rendered.text) == ("Anna", "<i>3</i>", "Anna: 3")


@pytest.mark.parametrize(
    "source",
    ["{{ 1 / 0 }}", "{{ range(10 ** 9) | list }}", "{{ 'a' + 1 }}"],
    ids=["division-by-zero", "huge-range", "type-error"],
)
def test_template_that_fails_while_running_raises_render_error(source: str) -> None:
    with pytest.raises(RenderError) as caught:
        render_email(template(html=source), {})
    assert caught.value.part == "html"
