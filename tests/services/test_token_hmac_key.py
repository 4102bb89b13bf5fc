"""The keys nudge keeps secret (bank card token hashes, unsubscribe links): the setting,
else one generated once and kept under the data dir."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from services.bootstrap import (
    HASH_KEY_FILE,
    UNSUBSCRIBE_KEY_FILE,
    token_hmac_key,
    unsubscribe_key,
)
from shared.settings import Settings


def test_the_configured_key_wins_and_nothing_is_written(tmp_path: Path) -> None:
    key = "k" * 32
    settings = Settings(data_dir=tmp_path / "data", token_hmac_key=SecretStr(key))

    assert token_hmac_key(settings) == key.encode()
    assert not (tmp_path / "data").exists()


def test_without_a_setting_a_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")

    first = token_hmac_key(settings)
    again = token_hmac_key(Settings(data_dir=tmp_path / "data"))

    assert first == again
    assert len(first) >= 32
    kept = tmp_path / "data" / HASH_KEY_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert [p.name for p in kept.parent.iterdir()] == [HASH_KEY_FILE]


def test_each_data_dir_gets_a_key_of_its_own(tmp_path: Path) -> None:
    one = token_hmac_key(Settings(data_dir=tmp_path / "one"))
    other = token_hmac_key(Settings(data_dir=tmp_path / "other"))
    assert one != other


def test_a_kept_key_that_is_not_usable_is_refused(tmp_path: Path) -> None:
    (tmp_path / HASH_KEY_FILE).write_text("short\n")
    with pytest.raises(RuntimeError, match="no usable key"):
        token_hmac_key(Settings(data_dir=tmp_path))


def test_a_configured_key_shorter_than_32_characters_is_refused() -> None:
    with pytest.raises(ValidationError, match="token_hmac_key"):
        Settings(token_hmac_key=SecretStr("too short"))


def test_the_default_region_is_checked_and_upper_cased() -> None:
    assert Settings(default_region="gb").default_region == "GB"
    with pytest.raises(ValidationError, match="default_region"):
        Settings(default_region="XX")


def test_unsubscribe_links_get_a_kept_key_of_their_own(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)

    links = unsubscribe_key(settings)

    assert links == unsubscribe_key(Settings(data_dir=tmp_path))
    assert links != token_hmac_key(settings)
    kept = tmp_path / UNSUBSCRIBE_KEY_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [HASH_KEY_FILE, UNSUBSCRIBE_KEY_FILE]
    )


def test_a_configured_unsubscribe_key_wins_and_must_be_long_enough(tmp_path: Path) -> None:
    key = "u" * 32
    assert unsubscribe_key(Settings(data_dir=tmp_path, unsubscribe_key=SecretStr(key))) == (
        key.encode()
    )
    assert not (tmp_path / UNSUBSCRIBE_KEY_FILE).exists()
    with pytest.raises(ValidationError, match="unsubscribe_key"):
        Settings(unsubscribe_key=SecretStr("too short"))


def test_webhook_secrets_come_from_one_json_variable_and_never_show(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NUDGE_WEBHOOK_SECRETS", '{"mailer": "whsec-0123456789", "sms-gate": "s2"}')

    secrets = Settings().webhook_secrets

    assert {p: s.get_secret_value() for p, s in secrets.items()} == {
        "mailer": "whsec-0123456789",
        "sms-gate": "s2",
    }
    assert "whsec" not in repr(secrets)


@pytest.mark.parametrize("url", ["ftp://shop.example", "shop.example", "https://"])
def test_the_public_url_is_an_http_address(url: str) -> None:
    with pytest.raises(ValidationError, match="public_url"):
        Settings(public_url=url)
