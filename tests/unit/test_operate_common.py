"""Operator commands' plumbing: durations, which channels a command can reach, channel choice,
and read-back pacing (fakeredis with Lua, a fake clock and no real sleeping)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import timedelta

import fakeredis
import pytest
from pydantic import SecretStr

from inventory_engine.channels.base import (
    ChannelRateLimitedError,
    ChannelRejectedError,
    ChannelStock,
    ChannelUnavailableError,
)
from inventory_engine.config import OzonSettings, Settings, WebhookSettings
from inventory_engine.errors import ConfigError
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.operate import pacing
from inventory_engine.operate.common import (
    SANDBOX_ENV,
    Operation,
    operator_channels,
    parse_duration,
)
from inventory_engine.operate.pacing import READ_LIMITS, ReadPacer, read_limits, with_retries
from inventory_engine.service import Engine
from inventory_engine.sync.limits import LIMITS

URL = "http://127.0.0.1:9"


def oz() -> OzonSettings:
    return OzonSettings(
        kind="ozon",
        name="ozon",
        base_url=URL,
        client_id="c",
        api_key=SecretStr("k"),
        warehouse_id=1,
    )


def shop() -> WebhookSettings:
    return WebhookSettings(kind="webhook", name="shop", base_url=URL, secret=SecretStr("s"))


@pytest.fixture
def client() -> Iterator[fakeredis.FakeRedis]:
    redis_client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    yield redis_client
    redis_client.close()


# -- durations and channels ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1w", 604800), (" 5m ", 300)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "15", "1y", "0m", "-1h", "yesterday", "1.5h"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_configured_channels_are_reachable(monkeypatch):
    monkeypatch.delenv(SANDBOX_ENV, raising=False)
    channels, reachable = operator_channels(Settings(channels=[oz()]))
    assert [c.name for c in channels] == ["ozon"]
    assert reachable


def test_sandbox_channels_are_reachable_only_with_the_simulators_addresses(monkeypatch):
    monkeypatch.delenv(SANDBOX_ENV, raising=False)
    channels, reachable = operator_channels(Settings())
    assert [c.name for c in channels] == ["ozon", "wb", "ym"]
    assert not reachable
    urls = {"ozon": "http://127.0.0.1:1", "wb": "http://127.0.0.1:2", "ym": "http://127.0.0.1:3"}
    monkeypatch.setenv(SANDBOX_ENV, json.dumps(urls))
    channels, reachable = operator_channels(Settings())
    assert reachable
    assert {c.name: c.base_url for c in channels} == urls
    monkeypatch.setenv(SANDBOX_ENV, "{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        operator_channels(Settings())
    monkeypatch.setenv(SANDBOX_ENV, json.dumps({"ozon": "http://x"}))
    with pytest.raises(ConfigError, match="must map"):
        operator_channels(Settings())


def test_channel_choice(client):
    engine = Engine(Settings(), client, channels=[oz(), shop()])
    op = Operation(engine, reachable=False)
    assert op.channels() == ["ozon", "shop"]
    assert op.channels(readable=True) == ["ozon"]
    assert op.channels("shop") == ["shop"]
    with pytest.raises(ConfigError, match="cannot be read back"):
        op.channels("shop", readable=True)
    with pytest.raises(ConfigError, match="no channel named 'wb'"):
        op.channels("wb")
    with pytest.raises(ConfigError, match="sandbox mode"):
        op.require_reachable()


# -- pacing --------------------------------------------------------------------------------------


class Clock:
    """Epoch ms that only moves when the pacer sleeps."""

    def __init__(self) -> None:
        self.ms = 1_700_000_000_000
        self.slept: list[float] = []

    def __call__(self) -> int:
        return self.ms

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.ms += int(seconds * 1000)


class Reader:
    """A channel whose read-back shows 1 for every id; failures can be queued."""

    def __init__(self, failures: Sequence[Exception] = ()) -> None:
        self.pages: list[int] = []
        self.failures = list(failures)

    def read_stock(self, item_ids: Sequence[str]) -> dict[str, ChannelStock]:
        if self.failures:
            raise self.failures.pop(0)
        self.pages.append(len(item_ids))
        return {i: ChannelStock(i, 1) for i in item_ids}


@pytest.mark.parametrize(
    ("kind", "items", "pages"),
    [
        ("ozon", 250, [100, 100, 50]),
        ("wildberries", 2500, [1000, 1000, 500]),
        ("yandex_market", 1200, [500, 500, 200]),
    ],
)
def test_reads_go_in_pages_of_the_channels_read_size(client, kind, items, pages):
    clock = Clock()
    pacer = ReadPacer(client, clock=clock, sleep=clock.sleep)
    reader = Reader()
    ids = [str(n) for n in range(1, items + 1)]
    shown: dict[str, ChannelStock] = {}
    for _, page in pacer.read_stock("ch", kind, reader, ids):  # type: ignore[arg-type]
        shown.update(page)
    assert reader.pages == pages
    assert len(shown) == items


def test_wildberries_reads_take_from_the_push_bucket_and_wait_when_it_is_empty(client):
    clock = Clock()
    pacer = ReadPacer(client, clock=clock, sleep=clock.sleep)
    reader = Reader()
    ids = [str(n) for n in range(1, 25 * 1000 + 1)]  # 25 requests, burst 20
    list(pacer.read_stock("wb", "wildberries", reader, ids))  # type: ignore[arg-type]
    assert len(reader.pages) == 25
    assert client.exists(AccountKeys().bucket("wb"))  # the publisher's own bucket
    waited = sum(clock.slept)
    # 5 requests beyond the burst at 4.8/s: about a second, never less.
    assert waited >= (25 - LIMITS["wildberries"].bucket_capacity) / 4.8 - 0.01


def test_ozon_reads_pay_for_two_requests_from_their_own_bucket(client):
    clock = Clock()
    pacer = ReadPacer(client, clock=clock, sleep=clock.sleep)
    list(pacer.read_stock("ozon", "ozon", Reader(), [str(n) for n in range(300)]))  # type: ignore[arg-type]
    assert pacer.requests == 6
    assert client.exists(AccountKeys().bucket("ozon:read"))
    assert not client.exists(AccountKeys().bucket("ozon"))


def test_a_rate_limit_is_waited_out_and_an_outage_retried_then_given_up():
    slept: list[float] = []
    limited = ChannelRateLimitedError("wb", "slow down", retry_after_s=2.0)
    reader = Reader([limited, ChannelUnavailableError("wb", "502")])
    assert with_retries(lambda: reader.read_stock(["1"]), sleep=slept.append) == {
        "1": ChannelStock("1", 1)
    }
    assert slept == [2.0, 2.0]
    down = Reader([ChannelUnavailableError("wb", "502")] * pacing.MAX_ATTEMPTS)
    with pytest.raises(ChannelUnavailableError):
        with_retries(lambda: down.read_stock(["1"]), sleep=slept.append)
    too_long = ChannelRateLimitedError("wb", "later", retry_after_s=pacing.MAX_WAIT_S + 1)
    with pytest.raises(ChannelRateLimitedError):
        with_retries(lambda: Reader([too_long]).read_stock(["1"]), sleep=slept.append)
    refused = ChannelRejectedError("wb", 401, "bad token")
    with pytest.raises(ChannelRejectedError):
        with_retries(lambda: Reader([refused]).read_stock(["1"]), sleep=slept.append)


def test_only_marketplaces_can_be_read_back():
    assert set(READ_LIMITS) == {"ozon", "wildberries", "yandex_market"}
    with pytest.raises(ConfigError, match="cannot be read back"):
        read_limits("webhook")


def test_sandbox_addresses_recorded_by_a_running_serve_are_found_in_redis(monkeypatch):
    monkeypatch.delenv(SANDBOX_ENV, raising=False)
    client = fakeredis.FakeRedis()
    urls = {"ozon": "http://127.0.0.1:4", "wb": "http://127.0.0.1:5", "ym": "http://127.0.0.1:6"}
    assert operator_channels(Settings(), client)[1] is False  # serve not running: not known
    client.set(AccountKeys().sandbox, json.dumps(urls))
    channels, reachable = operator_channels(Settings(), client)
    assert reachable
    assert {c.name: c.base_url for c in channels} == urls
