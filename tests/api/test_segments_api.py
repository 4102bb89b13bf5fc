"""The segments API as a marketer's tool sees it: save, read, list with sizes, preview,
and never overwrite a colleague's edit unknowingly."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from shared.adapters.store.engine import open_store
from shared.domain.segments import MembershipChange
from tests.api.definitions_app import *  # noqa: F403 - the fixtures
from tests.conftest import T0

REPEAT = {"name": "Repeat buyers", "rule": {"stat": "orders_count", "at_least": 2}}


async def seed_buyers(url: str, buyers: list[tuple[str, str, int]]) -> list[str]:
    """Buyers (email, phone, orders) in the database, all in ``repeat-buyers`` if they
    ordered twice or more; their ids, in the order given."""
    store = open_store(url)
    try:
        async with store.unit_of_work() as uow:
            resolution = await uow.profiles.resolve(
                [{"email": email, "phone": phone} for email, phone, _ in buyers], T0
            )
            for profile, (_email, _phone, orders) in zip(resolution.profiles, buyers, strict=True):
                profile.email, profile.phone = _email, _phone
                profile.orders_count = orders
                profile.revenue_total = Decimal(orders * 100)
                profile.last_order_at = T0 - timedelta(days=3) if orders else None
            await uow.profiles.save(resolution.profiles, T0)
            await uow.memberships.apply(
                [
                    MembershipChange("entered", "repeat-buyers", p.id, T0, "")
                    for p, (_, _, orders) in zip(resolution.profiles, buyers, strict=True)
                    if orders >= 2
                ]
            )
            await uow.commit()
            return [p.id for p in resolution.profiles]
    finally:
        await store.close()


def problem(response: httpx.Response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"/problems/{kind}"
    return body


async def test_a_new_segment_is_created_at_version_1_and_read_back_with_its_etag(
    writer: httpx.AsyncClient,
) -> None:
    created = await writer.put("/v1/segments/repeat-buyers", json=REPEAT)
    assert created.status_code == 201
    assert created.headers["etag"] == '"1"'
    read = await writer.get("/v1/segments/repeat-buyers")
    assert read.status_code == 200
    assert read.headers["etag"] == '"1"'
    assert read.json()["rule"] == REPEAT["rule"]
    assert (read.json()["name"], read.json()["description"], read.json()["version"]) == (
        "Repeat buyers",
        "",
        1,
    )


async def test_a_change_with_the_current_etag_makes_the_next_version(
    writer: httpx.AsyncClient,
) -> None:
    await writer.put("/v1/segments/repeat-buyers", json=REPEAT)
    changed = await writer.put(
        "/v1/segments/repeat-buyers",
        json={**REPEAT, "rule": {"stat": "orders_count", "at_least": 3}},
        headers={"If-Match": '"1"'},
    )
    assert changed.status_code == 200
    assert changed.headers["etag"] == '"2"'
    assert changed.json()["rule"] == {"stat": "orders_count", "at_least": 3}


async def test_a_change_made_against_an_old_version_is_412_and_saves_nothing(
    writer: httpx.AsyncClient,
) -> None:
    await writer.put("/v1/segments/repeat-buyers", json=REPEAT)
    await writer.put(
        "/v1/segments/repeat-buyers",
        json={**REPEAT, "name": "first edit"},
        headers={"If-Match": '"1"'},
    )
    late = await writer.put(
        "/v1/segments/repeat-buyers",
        json={**REPEAT, "name": "second edit, made on version 1"},
        headers={"If-Match": '"1"'},
    )
    body = problem(late, 412, "stale-version")
    assert "current: 2" in body["detail"]
    assert late.headers["etag"] == '"2"'
    assert (await writer.get("/v1/segments/repeat-buyers")).json()["name"] == "first edit"


@pytest.mark.parametrize("if_match", ['W/"1"', "1", '"1", "2"', '"x"'])
async def test_a_weak_or_malformed_if_match_is_412(
    writer: httpx.AsyncClient, if_match: str
) -> None:
    await writer.put("/v1/segments/repeat-buyers", json=REPEAT)
    response = await writer.put(
        "/v1/segments/repeat-buyers", json=REPEAT, headers={"If-Match": if_match}
    )
    problem(response, 412, "stale-version")


async def test_changing_an_existing_segment_without_if_match_is_428(
    writer: httpx.AsyncClient,
) -> None:
    await writer.put("/v1/segments/repeat-buyers", json=REPEAT)
    response = await writer.put("/v1/segments/repeat-buyers", json={**REPEAT, "name": "blind"})
    body = problem(response, 428, "precondition-required")
    assert 'If-Match: "1"' in body["detail"]


async def test_if_match_on_a_segment_that_does_not_exist_is_412(
    writer: httpx.AsyncClient,
) -> None:
    response = await writer.put("/v1/segments/nobody", json=REPEAT, headers={"If-Match": '"1"'})
    problem(response, 412, "stale-version")
    assert (await writer.get("/v1/segments/nobody")).status_code == 404


async def test_if_match_star_changes_whatever_version_is_there(writer: httpx.AsyncClient) -> None:
    await writer.put("/v1/segments/repeat-buyers", json=REPEAT)
    response = await writer.put(
        "/v1/segments/repeat-buyers", json=REPEAT, headers={"If-Match": "*"}
    )
    assert response.status_code == 200
    assert response.headers["etag"] == '"2"'


@pytest.mark.parametrize(
    ("rule", "pointer"),
    [
        (
            {"all": [{"stat": "orders_count", "at_least": 2}, {"stat": "shoe_size"}]},
            "/rule/all/1/stat",
        ),
        ({"stat": "avg_check", "between": [6000, "lots"]}, "/rule/between/1"),
        ({"any": []}, "/rule/any"),
        ("orders_count >= 2", "/rule"),
    ],
    ids=["unknown-stat", "bad-bound", "empty-any", "not-an-object"],
)
async def test_a_bad_rule_is_422_with_the_pointer_of_the_bad_node(
    writer: httpx.AsyncClient, rule: object, pointer: str
) -> None:
    response = await writer.put("/v1/segments/bad", json={"name": "Bad", "rule": rule})
    body = problem(response, 422, "invalid-rule")
    (error,) = body["errors"]
    assert error["pointer"] == pointer
    assert error["detail"]
    assert (await writer.get("/v1/segments/bad")).status_code == 404


async def test_a_built_in_segment_cannot_be_changed(writer: httpx.AsyncClient) -> None:
    response = await writer.put("/v1/segments/no-order-30d", json=REPEAT)
    problem(response, 409, "read-only")


@pytest.mark.parametrize("key", ["Upper", "-leading-dash", "a" * 101, "spa ce"])
async def test_a_key_out_of_the_pattern_is_refused(writer: httpx.AsyncClient, key: str) -> None:
    response = await writer.put(f"/v1/segments/{key}", json=REPEAT)
    problem(response, 422, "invalid-request")


async def test_the_list_has_built_ins_and_stored_segments_with_sizes(
    writer: httpx.AsyncClient, sqlite_url: str
) -> None:
    await seed_buyers(
        sqlite_url,
        [
            ("a@shop.ru", "+79160000001", 2),
            ("b@shop.ru", "+79160000002", 5),
            ("c@shop.ru", "+79160000003", 1),
        ],
    )
    await writer.put("/v1/segments/repeat-buyers", json=REPEAT)
    await writer.put("/v1/segments/empty", json={"name": "Empty", "rule": REPEAT["rule"]})
    listed = {s["key"]: s for s in (await writer.get("/v1/segments")).json()["segments"]}
    assert listed["repeat-buyers"]["size"] == 2
    assert listed["empty"]["size"] == 0
    assert listed["no-order-30d"]["builtin"] is True
    assert listed["repeat-buyers"]["builtin"] is False


async def test_an_archived_segment_leaves_the_list_and_needs_if_match(
    writer: httpx.AsyncClient,
) -> None:
    await writer.put("/v1/segments/repeat-buyers", json=REPEAT)
    problem(await writer.delete("/v1/segments/repeat-buyers"), 428, "precondition-required")
    archived = await writer.delete("/v1/segments/repeat-buyers", headers={"If-Match": '"1"'})
    assert archived.status_code == 200
    assert archived.json()["archived_at"] is not None
    keys = [s["key"] for s in (await writer.get("/v1/segments")).json()["segments"]]
    assert "repeat-buyers" not in keys


async def test_preview_sizes_an_unsaved_rule_and_masks_the_sample(
    reader: httpx.AsyncClient, sqlite_url: str
) -> None:
    await seed_buyers(
        sqlite_url,
        [(f"buyer{i}@shop.ru", f"+7916000{i:04d}", i % 3) for i in range(30)],
    )
    response = await reader.post(
        "/v1/segments/preview", json={"rule": {"stat": "orders_count", "at_least": 2}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["size"], body["base"]) == (10, 30)
    assert len(body["sample"]) == 10
    for buyer in body["sample"]:
        assert buyer["email"].startswith("b***@shop.ru")
        assert buyer["phone"].startswith("+7")
        assert "*" in buyer["phone"]
        assert buyer["orders_count"] >= 2
    assert "buyer" not in response.text.replace("b***", ""), "no full address in the answer"


async def test_preview_samples_at_most_20_buyers(
    reader: httpx.AsyncClient, sqlite_url: str
) -> None:
    await seed_buyers(sqlite_url, [(f"x{i}@shop.ru", f"+7916100{i:04d}", 2) for i in range(25)])
    body = (
        await reader.post("/v1/segments/preview", json={"rule": {"stat": "orders_count", "eq": 2}})
    ).json()
    assert (body["size"], len(body["sample"])) == (25, 20)


async def test_preview_of_a_bad_rule_points_at_it(reader: httpx.AsyncClient) -> None:
    response = await reader.post("/v1/segments/preview", json={"rule": {"nope": 1}})
    (error,) = problem(response, 422, "invalid-rule")["errors"]
    assert error["pointer"] == "/rule"


async def test_reading_needs_a_key_and_writing_needs_console_write(
    nobody: httpx.AsyncClient, reader: httpx.AsyncClient, events_only: httpx.AsyncClient
) -> None:
    problem(await nobody.get("/v1/segments"), 401, "unauthorized")
    problem(
        await nobody.post("/v1/segments/preview", json={"rule": REPEAT["rule"]}),
        401,
        "unauthorized",
    )
    problem(await events_only.get("/v1/segments"), 403, "forbidden")
    problem(await events_only.get("/v1/segments/repeat-buyers"), 403, "forbidden")
    problem(await reader.put("/v1/segments/repeat-buyers", json=REPEAT), 403, "forbidden")
    problem(await nobody.put("/v1/segments/repeat-buyers", json=REPEAT), 401, "unauthorized")
    assert (await reader.get("/v1/segments")).status_code == 200


async def test_a_rule_nested_absurdly_deep_is_refused_not_a_crash(
    writer: httpx.AsyncClient,
) -> None:
    rule: dict = {"stat": "orders_count", "at_least": 1}
    for _ in range(300):
        rule = {"not": rule}
    response = await writer.put("/v1/segments/deep", json={"name": "Deep", "rule": rule})
    (error,) = problem(response, 422, "invalid-rule")["errors"]
    assert error["pointer"].startswith("/rule/not/not/")


async def test_a_rule_naming_a_segment_that_does_not_exist_is_422_at_the_reference(
    writer: httpx.AsyncClient,
) -> None:
    rule = {"all": [{"stat": "orders_count", "at_least": 1}, {"segment": "no-such-segment"}]}
    response = await writer.put("/v1/segments/ghost", json={"name": "Ghost", "rule": rule})
    (error,) = problem(response, 422, "invalid-rule")["errors"]
    assert error["pointer"] == "/rule/all/1/segment"
    assert "no-such-segment" in error["detail"]
    assert (await writer.get("/v1/segments/ghost")).status_code == 404


async def test_two_segments_naming_each_other_are_refused_at_the_second(
    writer: httpx.AsyncClient,
) -> None:
    first = {"name": "A", "rule": {"any": [{"stat": "orders_count", "at_least": 3}]}}
    assert (await writer.put("/v1/segments/seg-a", json=first)).status_code == 201
    second = {"name": "B", "rule": {"segment": "seg-a"}}
    assert (await writer.put("/v1/segments/seg-b", json=second)).status_code == 201
    closing = {"name": "A", "rule": {"not": {"segment": "seg-b"}}}
    response = await writer.put("/v1/segments/seg-a", json=closing, headers={"If-Match": '"1"'})
    (error,) = problem(response, 422, "invalid-rule")["errors"]
    assert error["pointer"] == "/rule/not/segment"
    assert (await writer.get("/v1/segments/seg-a")).json()["version"] == 1


async def test_preview_of_a_rule_built_on_another_segment_uses_that_segment(
    reader: httpx.AsyncClient, sqlite_url: str
) -> None:
    await seed_buyers(sqlite_url, [(f"y{i}@shop.ru", f"+7916200{i:04d}", i % 2) for i in range(10)])
    rule = {"not": {"segment": "lifecycle-lead"}}
    response = await reader.post("/v1/segments/preview", json={"rule": rule})
    assert response.status_code == 200, response.text
    assert response.json()["size"] == 5
