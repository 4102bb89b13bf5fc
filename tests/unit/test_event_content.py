"""What "the same content" of two events with one id is (shared/domain/event_content.py)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.event_content import (
    DIGEST_BYTES,
    VERSION_BYTES,
    content_digest,
    digest_version,
    same_content,
)
from shared.domain.events import validate_event


def digest(document: dict[str, Any]) -> bytes:
    event = validate_event(document, default_region="RU")
    return content_digest(event.model_dump_json(exclude_none=True).encode(), version=VERSION)


VERSION = digest_version(default_region="RU", token_key=b"the key")


def identify(**changes: Any) -> dict[str, Any]:
    return {
        "event_id": "e-0001",
        "type": "identify",
        "occurred_at": "2026-03-02T12:00:00+03:00",
        "customer": {"id": "anna", "email": "anna@shop.ru"},
        "data": {"traits": {"city": "Moscow", "kids": 2, "pet": None}, "consents": {"sms": True}},
        **changes,
    }


def order(**changes: Any) -> dict[str, Any]:
    return {
        "event_id": "e-0001",
        "type": "purchase",
        "occurred_at": "2026-03-02T12:00:00+03:00",
        "customer": {"id": "anna"},
        "data": {
            "order_id": "o-1",
            "total": "2500.00",
            "items": [{"sku": "cat-food", "price": "2500.00"}],
        },
        **changes,
    }


def test_a_digest_is_16_bytes() -> None:
    assert len(digest(order())) == VERSION_BYTES + DIGEST_BYTES == 4 + 16


@pytest.mark.parametrize(
    "same",
    [
        {**dict(reversed(identify().items()))},
        identify(
            data={"consents": {"sms": True}, "traits": {"pet": None, "kids": 2, "city": "Moscow"}}
        ),
        identify(customer={"email": "anna@shop.ru", "id": "anna"}),
        identify(customer={"id": "anna", "email": "Anna@Shop.RU"}),
        identify(store_id=None, channel=None),
    ],
    ids=[
        "event-keys-reordered",
        "data-keys-reordered",
        "customer-reordered",
        "email-case",
        "nulls",
    ],
)
def test_the_same_event_written_another_way_has_the_same_digest(same: dict[str, Any]) -> None:
    assert digest(same) == digest(identify())


def test_a_phone_in_any_notation_and_a_default_sent_are_the_same_content() -> None:
    plain = order(customer={"phone": "+79161234567"})
    written = order(customer={"phone": "8 (916) 123-45-67"})
    written["data"] = {**written["data"], "currency": "RUB"}
    assert digest(written) == digest(plain)


@pytest.mark.parametrize(
    "other",
    [
        order(customer={"id": "zed"}),
        order(type="refund", data={"order_id": "o-1", "amount": "2500.00"}),
        order(occurred_at="2026-03-02T12:00:01+03:00"),
        order(data={"order_id": "o-1", "total": "2400.00", "items": []}),
        order(store_id="msk-01"),
        identify(data={"traits": {"city": "Moscow", "kids": 2}}),  # no longer removes pet
        identify(data={"traits": {"city": "Moscow", "kids": "2", "pet": None}}),
    ],
    ids=["buyer", "type", "time", "amount", "store", "trait-removal", "trait-type"],
)
def test_anything_else_is_other_content(other: dict[str, Any]) -> None:
    base = identify() if other["type"] == "identify" else order()
    assert digest(other) != digest(base)


def test_amounts_and_times_count_as_written() -> None:
    assert digest(order(occurred_at="2026-03-02T09:00:00+00:00")) != digest(order())
    fewer = order()
    fewer["data"] = {**fewer["data"], "total": "2500"}
    assert digest(fewer) != digest(order())


def test_properties_and_consents_in_another_order_are_the_same_content() -> None:
    def track(properties: dict[str, Any]) -> dict[str, Any]:
        data = {"name": "cart_updated", "properties": properties}
        return {**order(), "type": "track", "data": data}

    assert digest(track({"sku": "cat-food", "qty": 2})) == digest(
        track({"qty": 2, "sku": "cat-food"})
    )
    assert digest(identify(data={"consents": {"sms": True, "email": False}})) == digest(
        identify(data={"consents": {"email": False, "sms": True}})
    )


def test_the_version_names_what_of_the_deployment_the_published_json_depends_on() -> None:
    assert digest_version(default_region="RU", token_key=b"the key") == VERSION
    assert len(VERSION) == VERSION_BYTES
    others = {
        digest_version(default_region="US", token_key=b"the key"),
        digest_version(default_region="RU", token_key=b"another key"),
        digest_version(default_region="RU", token_key=None),
        digest_version(default_region=None, token_key=b"the key"),
    }
    assert VERSION not in others
    assert len(others) == 4


def test_digests_of_two_versions_are_the_same_content_and_of_one_version_only_if_equal() -> None:
    published = b'{"event_id": "e-0001"}'
    first = content_digest(published, version=VERSION)
    other_version = digest_version(default_region="US", token_key=None)
    assert same_content(first, content_digest(published, version=VERSION))
    assert not same_content(first, content_digest(b'{"event_id": "e-0002"}', version=VERSION))
    assert same_content(first, content_digest(b'{"event_id": "e-0002"}', version=other_version))
