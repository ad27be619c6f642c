"""Where a request comes from: the socket peer, X-Forwarded-For only from trusted proxies; the
marketplaces' webhook allowlists (defaults, validation, sandbox, simulators); and settings
whose secrets never reach a log line."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from pydantic import SecretStr
from structlog.testing import capture_logs

from inventory_engine.channels import yandex_market_notifications
from inventory_engine.config import (
    OZON_WEBHOOK_NETWORKS,
    YANDEX_MARKET_WEBHOOK_NETWORKS,
    ChannelSettings,
    OzonSettings,
    Settings,
    WebhookSettings,
    YandexMarketSettings,
    load_settings,
)
from inventory_engine.errors import ConfigError
from inventory_engine.intake.sources import (
    LOOPBACK,
    build_sources,
    client_address,
    networks,
    parse_address,
)

PROXY = "10.0.0.5"
TRUSTED = networks(["10.0.0.0/24", "fd00::/64"])
OZON_IP = "195.34.21.10"
YM_IP = "141.8.142.7"
STRANGER = "203.0.113.9"


@pytest.fixture(autouse=True)
def every_level() -> Iterator[None]:
    """Info lines too: an in-process CLI test may have configured structlog at WARNING, which
    drops them before ``capture_logs`` sees them."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        yield
    finally:
        structlog.configure(**saved)


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


# -- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        (" 1.2.3.4 ", "1.2.3.4"),
        ("1.2.3.4:5678", "1.2.3.4"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:195.34.21.10", "195.34.21.10"),  # a dual-stack socket's IPv4 peer
    ],
)
def test_addresses_are_parsed_with_or_without_a_port(text: str, expected: str) -> None:
    assert parse_address(text) == ip(expected)


@pytest.mark.parametrize("text", ["", "unknown", "testclient", "1.2.3", "[::1", "1.2.3.4.5"])
def test_what_is_not_an_address_is_none(text: str) -> None:
    assert parse_address(text) is None


# -- the client address ---------------------------------------------------------------------------


def test_the_peer_is_the_client_without_a_proxy() -> None:
    assert client_address(STRANGER, [], TRUSTED) == ip(STRANGER)
    assert client_address(STRANGER, [], ()) == ip(STRANGER)


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    """The spoof: anyone can write X-Forwarded-For."""
    assert client_address(STRANGER, [OZON_IP], TRUSTED) == ip(STRANGER)
    assert client_address(STRANGER, [OZON_IP], ()) == ip(STRANGER)
    assert client_address("127.0.0.1", [OZON_IP], ()) == ip("127.0.0.1")


def test_forwarded_for_from_a_trusted_proxy_is_the_right_most_untrusted_hop() -> None:
    assert client_address(PROXY, [OZON_IP], TRUSTED) == ip(OZON_IP)
    # The client wrote its own header; our proxy appended the address it really saw.
    assert client_address(PROXY, [f"{OZON_IP}, {STRANGER}"], TRUSTED) == ip(STRANGER)
    # Two of our proxies in a row: skip both.
    assert client_address(PROXY, [f"{STRANGER}, 10.0.0.7"], TRUSTED) == ip(STRANGER)
    # Several headers are one list, in order.
    assert client_address(PROXY, [OZON_IP, f"{STRANGER}, 10.0.0.7"], TRUSTED) == ip(STRANGER)
    assert client_address(PROXY, [STRANGER, OZON_IP], TRUSTED) == ip(OZON_IP)
    # Ports and brackets as some proxies write them.
    assert client_address(PROXY, [f"{OZON_IP}:4431"], TRUSTED) == ip(OZON_IP)
    assert client_address("fd00::3", ["[2001:db8::7]:80"], TRUSTED) == ip("2001:db8::7")
    assert client_address(f"::ffff:{PROXY}", [OZON_IP], TRUSTED) == ip(OZON_IP)


def test_a_trusted_proxy_without_forwarded_for_is_the_client() -> None:
    assert client_address(PROXY, [], TRUSTED) == ip(PROXY)
    assert client_address(PROXY, [" , "], TRUSTED) == ip(PROXY)


def test_a_chain_of_trusted_proxies_only_gives_the_left_most() -> None:
    assert client_address(PROXY, ["10.0.0.8, 10.0.0.7"], TRUSTED) == ip("10.0.0.8")


def test_garbage_before_the_first_untrusted_hop_is_unknown() -> None:
    assert client_address(PROXY, ["not-an-ip"], TRUSTED) is None
    assert client_address(PROXY, ["not-an-ip, 10.0.0.7"], TRUSTED) is None
    # Garbage left of a believable hop does not matter.
    assert client_address(PROXY, [f"not-an-ip, {OZON_IP}"], TRUSTED) == ip(OZON_IP)


def test_an_unknown_peer_is_unknown() -> None:
    assert client_address(None, [OZON_IP], TRUSTED) is None
    assert client_address("testclient", [OZON_IP], TRUSTED) is None


# -- settings -------------------------------------------------------------------------------------


def test_defaults_are_the_published_networks_and_no_trusted_proxy() -> None:
    settings = Settings()
    assert settings.webhooks.enforce_allowlist is True
    assert settings.webhooks.ozon_allow == list(OZON_WEBHOOK_NETWORKS)
    assert settings.webhooks.yandex_market_allow == list(YANDEX_MARKET_WEBHOOK_NETWORKS)
    assert settings.http.trusted_proxies == []
    # One list of YM's networks: the notification parser documents the same ones.
    assert YANDEX_MARKET_WEBHOOK_NETWORKS == yandex_market_notifications.SOURCE_NETWORKS
    assert OZON_WEBHOOK_NETWORKS == ("195.34.21.0/24", "185.73.192.0/22", "91.223.93.0/24")


def test_networks_are_read_from_toml_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[http]\ntrusted_proxies = ["10.0.0.1", "fd00::/64"]\n'
        '[webhooks]\nozon_allow = ["198.51.100.0/24"]\nyandex_market_allow = []\n'
    )
    settings = load_settings(config)
    assert settings.http.trusted_proxies == ["10.0.0.1/32", "fd00::/64"]
    assert settings.webhooks.ozon_allow == ["198.51.100.0/24"]
    assert settings.webhooks.yandex_market_allow == []
    monkeypatch.setenv("INVENTORY_WEBHOOKS__ENFORCE_ALLOWLIST", "false")
    monkeypatch.setenv("INVENTORY_HTTP__TRUSTED_PROXIES", '["192.0.2.1"]')
    settings = load_settings(config)
    assert settings.webhooks.enforce_allowlist is False
    assert settings.http.trusted_proxies == ["192.0.2.1/32"]


@pytest.mark.parametrize(
    "toml",
    [
        '[http]\ntrusted_proxies = ["10.0.0.1/8"]\n',  # host bits set
        '[http]\ntrusted_proxies = ["proxy.local"]\n',
        '[webhooks]\nozon_allow = ["195.34.21.0/33"]\n',
        '[webhooks]\nyandex_market_allow = ["5.45.207.0/25", "nope"]\n',
        '[webhooks]\nozon_allow = "195.34.21.0/24"\n',  # a string, not a list
    ],
)
def test_an_invalid_network_is_a_config_error_at_load(tmp_path: Path, toml: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert "trusted_proxies" in str(error.value) or "_allow" in str(error.value)


def test_an_invalid_network_in_the_environment_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INVENTORY_WEBHOOKS__OZON_ALLOW", '["300.1.1.0/24"]')
    with pytest.raises(ConfigError, match="ozon_allow"):
        load_settings()


# -- the policies ---------------------------------------------------------------------------------


def ozon(base_url: str = "https://api-seller.ozon.ru") -> OzonSettings:
    return OzonSettings(
        kind="ozon",
        name="ozon",
        base_url=base_url,
        client_id="1",
        api_key=SecretStr("k"),
        warehouse_id=1,
    )


def ym(base_url: str = "https://api.partner.market.yandex.ru") -> YandexMarketSettings:
    return YandexMarketSettings(
        kind="yandex_market",
        name="ym",
        base_url=base_url,
        api_key=SecretStr("k"),
        campaign_id=1,
        business_id=1,
    )


def test_the_published_networks_are_enforced_by_default() -> None:
    sources = build_sources(Settings(), [ozon(), ym()])
    assert sources.allows("ozon", ip(OZON_IP))
    assert sources.allows("ozon", ip("185.73.195.254"))
    assert not sources.allows("ozon", ip(YM_IP))  # each marketplace its own networks
    assert sources.allows("yandex_market", ip(YM_IP))
    assert not sources.allows("yandex_market", ip(OZON_IP))
    for marketplace in ("ozon", "yandex_market"):
        assert not sources.allows(marketplace, ip(STRANGER))
        assert not sources.allows(marketplace, ip("127.0.0.1"))
        assert not sources.allows(marketplace, None)


def test_an_empty_list_refuses_everyone_and_the_whole_internet_allows_everyone() -> None:
    settings = Settings(
        webhooks={"ozon_allow": [], "yandex_market_allow": ["0.0.0.0/0", "::/0"]}  # type: ignore[arg-type]
    )
    sources = build_sources(settings, [ozon(), ym()])
    assert not sources.allows("ozon", ip(OZON_IP))
    assert sources.allows("yandex_market", ip(STRANGER))
    assert sources.allows("yandex_market", ip("2001:db8::1"))
    assert not sources.allows("yandex_market", None)


def test_sandbox_mode_turns_the_check_off_and_says_so() -> None:
    with capture_logs() as logs:
        sources = build_sources(Settings(), [ozon("http://127.0.0.1:8101")], sandbox=True)
    assert sources.allows("ozon", ip(STRANGER))
    assert sources.allows("yandex_market", None)
    [line] = [entry for entry in logs if entry["event"] == "webhook_allowlist_off"]
    assert line["log_level"] == "warning"
    assert line["marketplaces"] == ["ozon", "yandex_market"]
    assert "sandbox" in line["reason"]


def test_enforce_allowlist_false_turns_the_check_off() -> None:
    settings = Settings(webhooks={"enforce_allowlist": False})  # type: ignore[arg-type]
    sources = build_sources(settings, [ozon(), ym()])
    assert sources.allows("ozon", ip(STRANGER))
    assert sources.allows("yandex_market", ip(STRANGER))


@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:8101", "http://localhost:8101", "http://[::1]:8101"]
)
def test_a_channel_on_a_loopback_simulator_adds_loopback_to_its_marketplace(
    base_url: str,
) -> None:
    with capture_logs() as logs:
        sources = build_sources(Settings(), [ozon(base_url), ym()])
    assert sources.allows("ozon", ip("127.0.0.1"))
    assert sources.allows("ozon", ip("::1"))
    assert sources.allows("ozon", ip(OZON_IP))
    assert not sources.allows("ozon", ip(STRANGER))
    assert not sources.allows("yandex_market", ip("127.0.0.1"))  # a real YM channel
    assert sources.policies["ozon"].allowed == networks(OZON_WEBHOOK_NETWORKS) + LOOPBACK
    [line] = [entry for entry in logs if entry["event"] == "webhook_allowlists"]
    assert "simulator" in line["allowlists"]["ozon"]


def test_a_webhook_channel_changes_nothing() -> None:
    shop = WebhookSettings(
        kind="webhook", name="shop", base_url="http://127.0.0.1:9", secret=SecretStr("s")
    )
    channels: list[ChannelSettings] = [shop]
    sources = build_sources(Settings(), channels)
    assert not sources.allows("ozon", ip("127.0.0.1"))
    assert not sources.allows("yandex_market", ip("127.0.0.1"))


def test_trusted_proxies_come_from_http_settings() -> None:
    settings = Settings(http={"trusted_proxies": ["10.0.0.0/24"]})  # type: ignore[arg-type]
    sources = build_sources(settings, [ozon()])
    scope = {
        "client": (PROXY, 5000),
        "headers": [(b"x-forwarded-for", f"{STRANGER}, {OZON_IP}".encode())],
    }
    assert sources.client(scope) == ip(OZON_IP)
    assert sources.client({**scope, "client": (STRANGER, 5000)}) == ip(STRANGER)


# -- secrets never reach a log line --------------------------------------------------------------

SECRETS = {
    "api_token": "SECRET-api-token-4f1c",
    "ozon": "SECRET-ozon-key-77aa",
    "wb": "SECRET-wb-token-91bd",
    "ym": "SECRET-ym-key-03ce",
    "shop": "SECRET-shop-hmac-5e2f",
    "alert": "SECRET-alert-token-6d40",
    "redis": "SECRET-redis-pass-8b19",
}


def secret_config(tmp_path: Path) -> Path:
    config = tmp_path / "secrets.toml"
    config.write_text(
        f"""
[redis]
url = "redis://:{SECRETS["redis"]}@127.0.0.1:6379/0"
queue_url = "redis://user:{SECRETS["redis"]}@127.0.0.1:6380/0"
[http]
api_token = "{SECRETS["api_token"]}"
[alerts]
oversold_url = "https://alerts.example/hook"
oversold_token = "{SECRETS["alert"]}"
[[channels]]
name = "ozon"
kind = "ozon"
base_url = "https://api-seller.ozon.ru"
client_id = "123"
api_key = "{SECRETS["ozon"]}"
warehouse_id = 1
[[channels]]
name = "wb"
kind = "wildberries"
base_url = "https://marketplace-api.wildberries.ru"
token = "{SECRETS["wb"]}"
warehouse_id = 1
[[channels]]
name = "ym"
kind = "yandex_market"
base_url = "https://api.partner.market.yandex.ru"
api_key = "{SECRETS["ym"]}"
campaign_id = 1
business_id = 1
[[channels]]
name = "shop"
kind = "webhook"
base_url = "https://shop.example/stock"
secret = "{SECRETS["shop"]}"
"""
    )
    return config


def rendered(entries: list[dict]) -> str:
    """What the engine's two renderers (JSON off a terminal, console on one) would print."""
    json_renderer = structlog.processors.JSONRenderer()
    console = structlog.dev.ConsoleRenderer(colors=False)
    lines = []
    for entry in entries:
        lines.append(json_renderer(None, "info", dict(entry)))
        lines.append(console(None, "info", dict(entry)))
    return "\n".join(str(line) for line in lines)


def test_secrets_never_reach_a_log_line_even_with_the_whole_settings(tmp_path: Path) -> None:
    log = structlog.get_logger()
    with capture_logs() as logs:
        settings = load_settings(secret_config(tmp_path))
        # The worst a careless log call could do: the whole object, its parts, its dump.
        log.info("settings_loaded", settings=settings)
        log.info("parts", http=settings.http, redis=settings.redis, alerts=settings.alerts)
        log.info("channels", channels=settings.channels, first=settings.channels[0])
        log.info("dump", dump=settings.model_dump(mode="json"), text=str(settings))
        log.info("repr", text=repr(settings), redis=repr(settings.redis))
        build_sources(settings, settings.channels)
    assert settings.http.api_token is not None
    assert settings.http.api_token.get_secret_value() == SECRETS["api_token"]  # loaded at all
    assert settings.redis.url is not None
    assert SECRETS["redis"] in settings.redis.url  # still usable by the code that connects
    text = rendered(logs)
    assert "settings_loaded" in text
    for name, secret in SECRETS.items():
        assert secret not in text, f"the {name} secret reached a log line"


def test_secrets_from_the_environment_never_reach_a_log_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[[channels]]\nname = "ozon"\nkind = "ozon"\nbase_url = "https://x"\n'
        'client_id = "1"\napi_key = "placeholder"\nwarehouse_id = 1\n'
    )
    monkeypatch.setenv("INVENTORY_CHANNEL_OZON_API_KEY", SECRETS["ozon"])
    monkeypatch.setenv("INVENTORY_HTTP__API_TOKEN", SECRETS["api_token"])
    monkeypatch.setenv("INVENTORY_REDIS_URL", f"redis://:{SECRETS['redis']}@127.0.0.1:1/0")
    with capture_logs() as logs:
        settings = load_settings(config)
        structlog.get_logger().info("settings_loaded", settings=settings)
    assert isinstance(settings.channels[0], OzonSettings)
    assert settings.channels[0].api_key.get_secret_value() == SECRETS["ozon"]
    text = rendered(logs)
    for secret in (SECRETS["ozon"], SECRETS["api_token"], SECRETS["redis"]):
        assert secret not in text


def test_a_config_error_does_not_repeat_a_secret(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[http]\napi_token = "{SECRETS["api_token"]}"\nport = "not a port"\n'
        f'[redis]\nurl = "http://:{SECRETS["redis"]}@x"\n'
        f'[alerts]\noversold_token = "{SECRETS["alert"]}"\noversold_url = "ftp://x"\n'
    )
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    message = str(error.value)
    assert "http.port" in message
    assert "redis.url" in message
    for secret in SECRETS.values():
        assert secret not in message
    assert json.dumps(message)  # a plain string, fit for a log line
