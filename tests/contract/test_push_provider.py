"""The push provider port: the FCM-shaped HTTP adapter against a fake FCM, and the folder."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.factories import build_push_provider
from shared.adapters.providers.folder import PushFolderProvider
from shared.adapters.providers.push import FcmPushProvider
from shared.domain.push import PushContent
from shared.errors import ProviderRejected
from shared.ports.providers import PushMessage, PushProvider
from tests.contract.provider_contract import Build, HttpProviderContract
from tests.support.providers import FakeFcm, FakeProvider, running

TOKEN = "ya29.fcm-token"
DEVICE = "fcm-device-token-anna-phone"
CONTENT = PushContent(
    title="Your cart is waiting",
    body="2 items, -10% until midnight",
    deep_link="shop://cart",
    data={"campaign": "abandoned-cart"},
)


def push(key: str) -> PushMessage:
    return PushMessage(token=DEVICE, content=CONTENT, idempotency_key=key)


class TestFcmPushProvider(HttpProviderContract[PushMessage]):
    name = "push"

    def new_fake(self) -> FakeProvider:
        return FakeFcm()

    def adapter(
        self, fake: FakeProvider, *, timeout: float, url: str | None = None, connections: int = 16
    ) -> Any:
        return FcmPushProvider(
            url or fake.url, FakeFcm.project_id, TOKEN, timeout=timeout, connections=connections
        )

    def message(self, key: str) -> PushMessage:
        return push(key)

    async def test_the_notification_goes_as_fcm_json_with_a_bearer_token(
        self, fake: FakeProvider, build: Build
    ) -> None:
        receipt = await build().send(push("cart-1"))
        (seen,) = fake.requests
        assert seen.payload == {
            "message": {
                "token": DEVICE,
                "notification": {
                    "title": "Your cart is waiting",
                    "body": "2 items, -10% until midnight",
                },
                "data": {
                    "campaign": "abandoned-cart",
                    "deep_link": "shop://cart",
                    "idempotency_key": "cart-1",
                },
            }
        }
        assert seen.headers["authorization"] == f"Bearer {TOKEN}"
        assert seen.headers["idempotency-key"] == "cart-1"
        assert receipt.provider_message_id == "projects/shop-app/messages/0:1"

    async def test_an_app_install_no_longer_registered_is_rejected(
        self, fake: FakeProvider, build: Build
    ) -> None:
        fake.reject()
        with pytest.raises(ProviderRejected, match=r"HTTP 404, UNREGISTERED"):
            await build().send(push("cart-1"))


class PushProviderContract:
    """The port itself, for every adapter: one notification per idempotency key."""

    @pytest.fixture
    def provider(self) -> PushProvider:
        raise NotImplementedError

    def delivered(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def test_a_notification_sent_twice_with_one_key_arrives_once(
        self, provider: PushProvider
    ) -> None:
        first = await provider.send(push("cart-1"))
        again = await provider.send(push("cart-1"))
        await provider.send(push("cart-2"))
        assert first == again
        assert len(self.delivered()) == 2


class TestFcmPushPort(PushProviderContract):
    @pytest.fixture
    async def provider(self, clock: SimulatedClock) -> AsyncIterator[PushProvider]:
        async with running(FakeFcm()) as fake:
            self.fake = fake
            provider = build_push_provider(
                kind="http",
                clock=clock,
                base_url=fake.url,
                project_id=FakeFcm.project_id,
                access_token=TOKEN,
            )
            yield provider
            await provider.aclose()

    def delivered(self) -> list[dict[str, Any]]:
        return list(self.fake.delivered.values())


class TestPushFolderPort(PushProviderContract):
    @pytest.fixture
    def provider(self, tmp_path: Path) -> PushProvider:
        self.folder = tmp_path / "push"
        return PushFolderProvider(self.folder)

    def delivered(self) -> list[dict[str, Any]]:
        return [json.loads(path.read_text()) for path in sorted(self.folder.glob("*.json"))]

    async def test_the_file_holds_what_the_phone_would_show(self, provider: PushProvider) -> None:
        await provider.send(push("cart-1"))
        assert self.delivered() == [
            {
                "token": DEVICE,
                "title": "Your cart is waiting",
                "body": "2 items, -10% until midnight",
                "deep_link": "shop://cart",
                "data": {"campaign": "abandoned-cart"},
                "idempotency_key": "cart-1",
            }
        ]
