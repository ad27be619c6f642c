"""``[[accounts]]`` settings (issue 15 §1): the single-account layout keeps working as the
account ``default``; several accounts are checked for what would mix them up."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from inventory_engine.cli import app
from inventory_engine.config import load_settings
from inventory_engine.errors import ConfigError

OZON = {
    "name": "ozon",
    "kind": "ozon",
    "base_url": "http://127.0.0.1:9",
    "client_id": "42",
    "api_key": "k",
    "warehouse_id": 1,
}


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INVENTORY_CONFIG", "INVENTORY_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)


def test_the_single_account_layout_is_the_default_account() -> None:
    settings = load_settings(http={"api_token": "t"}, channels=[OZON])
    assert settings.account_names() == ["default"]
    assert settings.pick_account(None) is settings
    assert [t.get_secret_value() for t in settings.api_tokens()["default"]] == ["t"]
    with pytest.raises(ConfigError, match="no account named 'shop'"):
        settings.for_account("shop")


def test_each_account_gets_its_own_settings_with_the_top_level_policies() -> None:
    settings = load_settings(
        alerts={"oversold_url": "http://127.0.0.1:9/top"},
        accounts=[
            {"name": "a", "api_tokens": ["ta"], "channels": [OZON]},
            {"name": "b", "alerts": {"oversold_url": "http://127.0.0.1:9/b"}},
        ],
    )
    a, b = settings.for_account("a"), settings.for_account("b")
    assert (a.account, [c.name for c in a.channels], b.channels) == ("a", ["ozon"], [])
    assert a.http.api_token is not None
    assert a.http.api_token.get_secret_value() == "ta"
    assert b.http.api_token is None
    assert str(a.alerts.oversold_url).endswith("/top")
    assert str(b.alerts.oversold_url).endswith("/b")
    assert a.accounts == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"channels": [OZON]}, "put each channel under its account"),
        ({"http": {"api_token": "x"}}, "each account has its own api_tokens"),
        ({"accounts": [{"name": "a"}, {"name": "a"}]}, "account names must be unique"),
        (
            {"accounts": [{"name": "a", "api_tokens": ["s"]}, {"name": "b", "api_tokens": ["s"]}]},
            "an API token may open one account only",
        ),
        ({"accounts": [{"name": "Bad Name"}]}, "accounts.0.name"),
    ],
)
def test_what_would_mix_accounts_up_is_refused(extra: dict, message: str) -> None:
    settings = {"accounts": [{"name": "a"}], **extra}
    with pytest.raises(ConfigError, match=message):
        load_settings(**settings)


def test_without_a_default_account_a_command_must_name_one() -> None:
    settings = load_settings(accounts=[{"name": "a"}, {"name": "b"}])
    with pytest.raises(ConfigError, match=r"no account named 'default' \(accounts: a, b\)"):
        settings.pick_account(None)
    assert settings.pick_account("b").account == "b"


def test_account_channel_secrets_come_from_their_own_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.toml"
    channel = {k: v for k, v in OZON.items() if k != "api_key"}
    config.write_text(
        "".join(
            f'[[accounts]]\nname = "{name}"\n[[accounts.channels]]\n'
            + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in channel.items())
            for name in ("shop-a", "shop-b")
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("INVENTORY_ACCOUNT_SHOP_A_CHANNEL_OZON_API_KEY", "key-a")
    monkeypatch.setenv("INVENTORY_ACCOUNT_SHOP_B_CHANNEL_OZON_API_KEY", "key-b")
    settings = load_settings(config)
    keys = {
        name: settings.for_account(name).channels[0].api_key.get_secret_value()  # type: ignore[union-attr]
        for name in ("shop-a", "shop-b")
    }
    assert keys == {"shop-a": "key-a", "shop-b": "key-b"}


def test_accounts_list_names_each_account_its_channels_and_webhook_paths(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[[accounts]]\nname = "default"\napi_tokens = ["t1", "t2"]\n'
        '[[accounts]]\nname = "shop-b"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["accounts", "list", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert '"/webhooks/ozon"' in result.output  # the default account keeps the plain paths
    assert '"/webhooks/shop-b/yandex-market"' in result.output
    assert '"api_tokens": 2' in result.output
    assert "t1" not in result.output
