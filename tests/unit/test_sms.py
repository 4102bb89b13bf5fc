"""How long an SMS is, and what a campaign may send: GSM-7 against UCS-2, segments, limits."""

from __future__ import annotations

import pytest

from shared.domain.push import PushContent, PushContentError
from shared.domain.rendering import (
    PushTemplate,
    RenderError,
    SmsTemplate,
    render_push,
    render_sms,
)
from shared.domain.sms import SmsLength, SmsTooLong, sms_length


def test_160_plain_characters_are_one_gsm7_sms() -> None:
    assert sms_length("a" * 160) == SmsLength("GSM-7", 160, 1)


def test_the_161st_character_splits_it_into_two_segments_of_153() -> None:
    assert sms_length("a" * 161) == SmsLength("GSM-7", 161, 2)
    assert sms_length("a" * 306).segments == 2
    assert sms_length("a" * 307).segments == 3


def test_the_gsm7_alphabet_is_more_than_ascii() -> None:
    text = "Grüße, señor! £5 @ Ørsted: ¿¡ Δ ÇÉ"
    assert sms_length(text).encoding == "GSM-7"


def test_extension_characters_count_twice() -> None:
    assert sms_length("€" * 80) == SmsLength("GSM-7", 160, 1)
    assert sms_length("€" * 80 + "a").segments == 2
    assert sms_length("[x]{y}|~^\\").units == 18


def test_an_escape_pair_is_not_split_between_segments() -> None:
    # 152 septets, then a euro: it does not fit in the first segment's last septet.
    text = "a" * 152 + "€" + "a" * 10
    assert sms_length(text) == SmsLength("GSM-7", 164, 2)
    assert sms_length("a" * 152 + "€" * 77).segments == 3  # 306 septets, but 153 + 152 + 1


def test_one_cyrillic_letter_makes_the_whole_text_ucs2() -> None:
    assert sms_length("Привет" + "a" * 64) == SmsLength("UCS-2", 70, 1)
    assert sms_length("Привет" + "a" * 65) == SmsLength("UCS-2", 71, 2)
    assert sms_length("ж" * 134).segments == 2
    assert sms_length("ж" * 135).segments == 3


def test_a_curly_apostrophe_is_not_gsm7() -> None:
    assert sms_length("Don’t miss it").encoding == "UCS-2"


def test_an_emoji_counts_two_utf16_units_and_is_not_split() -> None:
    assert sms_length("🎁") == SmsLength("UCS-2", 2, 1)
    assert sms_length("🎁" * 35) == SmsLength("UCS-2", 70, 1)
    assert sms_length("🎁" * 35 + "!") == SmsLength("UCS-2", 71, 2)
    # 66 units then an emoji: the pair goes whole into the second segment.
    assert sms_length("ж" * 66 + "🎁" + "ж" * 66) == SmsLength("UCS-2", 134, 3)


def test_a_text_over_the_maximum_is_refused_with_how_much_fits() -> None:
    with pytest.raises(SmsTooLong) as refused:
        sms_length("a" * 460, max_segments=3)
    assert str(refused.value) == (
        "the SMS needs 4 segments (460 GSM-7 septets), over the maximum of 3: "
        "at most 459 septets fit"
    )
    assert sms_length("a" * 459, max_segments=3).segments == 3


def test_a_single_sms_maximum_allows_the_single_part_length() -> None:
    assert sms_length("ж" * 70, max_segments=1).segments == 1
    with pytest.raises(SmsTooLong, match=r"at most 70 UTF-16 code units fit.*UCS-2"):
        sms_length("ж" * 71, max_segments=1)


def test_an_empty_sms_is_refused() -> None:
    with pytest.raises(SmsTooLong, match="needs some text"):
        sms_length("")


def test_a_rendered_sms_carries_its_length_and_is_trimmed() -> None:
    rendered = render_sms(
        SmsTemplate("\n{{ name }}, -10% today: {{ link }}\n"),
        {
            "name": "Anna",
            "link": "https://s.shop/x",
        },
    )
    assert rendered.text == "Anna, -10% today: https://s.shop/x"
    assert rendered.length == SmsLength("GSM-7", len(rendered.text), 1)


def test_a_rendered_sms_over_the_campaign_maximum_is_a_render_error() -> None:
    with pytest.raises(RenderError) as refused:
        render_sms(SmsTemplate("{{ 'ж' * 200 }}"), {}, max_segments=2)
    assert refused.value.part == "text"
    assert "needs 3 segments" in str(refused.value)


def test_a_push_renders_title_body_link_and_data() -> None:
    template = PushTemplate(
        title="{{ name }},  your cart\nwaits",
        body="{{ items }} items are still there",
        deep_link="shop://cart?from={{ campaign }}",
        data={"sku": "{{ sku }}"},
    )
    content = render_push(template, {"name": "Anna", "items": 2, "campaign": "cart", "sku": "A-1"})
    assert content == PushContent(
        title="Anna, your cart waits",
        body="2 items are still there",
        deep_link="shop://cart?from=cart",
        data={"sku": "A-1"},
    )


def test_push_content_over_a_limit_says_which_part() -> None:
    with pytest.raises(PushContentError, match=r"title: 66 characters, over the 65"):
        PushContent(title="t" * 66, body="b")
    with pytest.raises(PushContentError, match="body: must not be empty"):
        PushContent(title="t", body="  ")
    with pytest.raises(PushContentError, match="deep_link"):
        PushContent(title="t", body="b", deep_link="cart page")
    with pytest.raises(PushContentError, match="reserved"):
        PushContent(title="t", body="b", data={"google.c.a": "x"})
    with pytest.raises(PushContentError, match="over the 4096"):
        PushContent(title="t", body="b", data={"blob": "x" * 4100})


def test_push_content_over_a_limit_is_a_render_error() -> None:
    with pytest.raises(RenderError) as refused:
        render_push(PushTemplate(title="{{ 'x' * 70 }}", body="b"), {})
    assert refused.value.part == "push"
    assert "title: 70 characters" in str(refused.value)
