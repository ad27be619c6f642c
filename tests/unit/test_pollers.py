"""Order pollers without HTTP: interval floors, backoff, paging bounds, partial progress, cursor
reset, WB status rotation and pruning (fake channel clients, fakeredis)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from pydantic import SecretStr

from inventory_engine.channels.base import (
    ChannelLine,
    ChannelOrder,
    ChannelUnavailableError,
    OrdersPage,
)
from inventory_engine.config import (
    OzonSettings,
    Settings,
    WebhookSettings,
    WildberriesSettings,
    YandexMarketSettings,
)
from inventory_engine.domain.models import OrderAction
from inventory_engine.errors import ConfigError
from inventory_engine.intake import pollers
from inventory_engine.intake.pollers import (
    MAX_BACKOFF_S,
    MAX_PAGES_PER_POLL,
    POLL_LIMITS,
    PollerLoop,
    PollReport,
    backoff_delay,
    is_polled,
    next_delay,
    poll_interval,
    poll_once,
    read_cursor,
    tracked_tasks,
)
from inventory_engine.service import Engine

URL = "http://127.0.0.1:9"


def wb(**kwargs: Any) -> WildberriesSettings:
    return WildberriesSettings(
        kind="wildberries", name="wb", base_url=URL, token=SecretStr("t"), warehouse_id=1, **kwargs
    )


def oz(**kwargs: Any) -> OzonSettings:
    return OzonSettings(
        kind="ozon",
        name="ozon",
        base_url=URL,
        client_id="c",
        api_key=SecretStr("k"),
        warehouse_id=1,
        **kwargs,
    )


def ym(**kwargs: Any) -> YandexMarketSettings:
    return YandexMarketSettings(
        kind="yandex_market",
        name="ym",
        base_url=URL,
        api_key=SecretStr("k"),
        campaign_id=1,
        business_id=1,
        **kwargs,
    )


def shop() -> WebhookSettings:
    return WebhookSettings(kind="webhook", name="shop", base_url=URL, secret=SecretStr("s"))


# -- intervals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (wb(), 5.0),
        (oz(), 60.0),
        (ym(), 60.0),
        (wb(poll_interval_s=3), 3.0),
        (oz(poll_interval_s=15), 15.0),
        (ym(poll_interval_s=600), 600.0),
    ],
)
def test_interval_is_the_setting_or_the_kinds_default(settings, expected):
    assert poll_interval(settings) == expected


@pytest.mark.parametrize(
    ("settings", "floor"),
    [(wb(poll_interval_s=0.01), 2.0), (oz(poll_interval_s=0.2), 1.0), (ym(poll_interval_s=1), 5.0)],
)
def test_interval_never_below_the_kinds_floor(settings, floor):
    assert poll_interval(settings) == floor == POLL_LIMITS[settings.kind].floor_s


def test_floors_keep_a_usual_poll_well_inside_each_marketplaces_limit():
    # WB: 300 req/min on order methods; a usual poll is 2 requests (new + status).
    assert 2 * 60 / POLL_LIMITS["wildberries"].floor_s <= 300 / 4
    # Ozon: 50 req/s for every method; a usual poll is 2 requests (list + unfulfilled).
    assert 2 / POLL_LIMITS["ozon"].floor_s <= 50 / 10
    # YM: 10,000 order requests per hour; a usual poll is 1 request.
    assert 3600 / POLL_LIMITS["yandex_market"].floor_s <= 10_000 / 10
    # Paging never runs faster than half of any limit.
    assert 1 / POLL_LIMITS["wildberries"].request_spacing_s <= 5 / 2
    assert 1 / POLL_LIMITS["ozon"].request_spacing_s <= 50 / 2
    assert 1 / POLL_LIMITS["yandex_market"].request_spacing_s <= 10_000 / 3600 / 2


def test_webhook_channels_are_not_polled():
    assert not is_polled(shop())
    assert all(is_polled(s) for s in (wb(), oz(), ym()))
    with pytest.raises(ConfigError, match="not polled"):
        poll_interval(shop())


# -- delays ---------------------------------------------------------------------------------------


def report(**kwargs: Any) -> PollReport:
    return PollReport(channel="wb", kind="wildberries", **kwargs)


def test_a_good_poll_waits_the_interval_or_the_pacing_of_its_requests():
    limits = POLL_LIMITS["wildberries"]
    assert next_delay(limits, 5.0, report(requests=2), 0) == 5.0
    assert next_delay(limits, 5.0, report(requests=30), 0) == pytest.approx(30 * 0.4)
    # More pages waiting: come back at the floor, not the interval.
    assert next_delay(limits, 5.0, report(requests=1, more=True), 0) == 2.0


def test_failures_back_off_growing_and_capped_and_honour_retry_after():
    limits = POLL_LIMITS["ozon"]
    failed = report(error="boom", requests=1)
    assert [next_delay(limits, 60.0, failed, n) for n in (1, 2, 3, 4, 9)] == [
        60.0,
        120.0,
        240.0,
        MAX_BACKOFF_S,
        MAX_BACKOFF_S,
    ]
    limited = report(error="429", retry_after_s=90.0)
    assert next_delay(limits, 5.0, limited, 1) == 90.0
    assert backoff_delay(600.0, 5) == 600.0  # an interval above the cap stays the interval


# -- fakes ----------------------------------------------------------------------------------------


def order(order_id: str, status: str = "awaiting_packaging", **kwargs: Any) -> ChannelOrder:
    action = kwargs.pop("action", OrderAction.RESERVE)
    return ChannelOrder(
        order_id=order_id,
        action=action,
        status=status,
        lines=(ChannelLine("111", 1),),
        event_key=f"{order_id}|{status}",
        **kwargs,
    )


class FakeFeed:
    """A client whose pages are looked up by cursor (an Exception value is raised)."""

    kind = "ozon"
    name = "ozon"

    def __init__(self, pages: dict[str | None, Any], unfulfilled: list[ChannelOrder]) -> None:
        self.pages = pages
        self.unfulfilled = unfulfilled
        self.calls: list[str | None] = []

    def list_orders(self, cursor: str | None) -> OrdersPage:
        self.calls.append(cursor)
        if cursor not in self.pages:
            raise ValueError(f"not a cursor: {cursor!r}")
        page = self.pages[cursor]
        if isinstance(page, Exception):
            raise page
        return page

    def list_unfulfilled(self) -> list[ChannelOrder]:
        return list(self.unfulfilled)


class FakeWildberries:
    kind = "wildberries"
    name = "wb"

    def __init__(self) -> None:
        self.new: list[ChannelOrder] = []
        self.status: dict[str, tuple[OrderAction, str]] = {}
        self.status_calls: list[list[str]] = []

    def list_orders(self, cursor: str | None) -> OrdersPage:
        return OrdersPage(tuple(self.new), cursor="called-at")

    def order_statuses(self, ids: list[str]) -> list[ChannelOrder]:
        self.status_calls.append(list(ids))
        return [
            ChannelOrder(i, self.status[i][0], self.status[i][1], event_key=f"{i}:{self.status[i]}")
            for i in ids
            if i in self.status
        ]


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client() -> Iterator[fakeredis.FakeRedis]:
    redis_client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    yield redis_client
    redis_client.close()


@pytest.fixture
def engine(client) -> Engine:
    return Engine(Settings(), client, channels=[wb(), oz(), ym(), shop()])


def use(monkeypatch, engine: Engine, fake: Any) -> None:
    monkeypatch.setattr(engine, "channel", lambda name: fake)


def queued_ids(engine: Engine) -> list[str]:
    return [entry.data["order_id"] for entry in engine.inbox.peek()]


# -- Ozon and YM feeds ----------------------------------------------------------------------------


def test_more_is_followed_within_one_poll_up_to_the_bound(monkeypatch, engine):
    pages: dict[str | None, Any] = {
        None if n == 0 else f"p{n}": OrdersPage((order(f"o{n}"),), cursor=f"p{n + 1}", more=True)
        for n in range(MAX_PAGES_PER_POLL + 5)
    }
    fake = FakeFeed(pages, [])
    use(monkeypatch, engine, fake)

    result = poll_once(engine, "ozon")
    assert result.ok
    assert result.pages == MAX_PAGES_PER_POLL
    assert result.more
    assert result.queued == MAX_PAGES_PER_POLL
    assert read_cursor(engine, "ozon") == f"p{MAX_PAGES_PER_POLL}"
    # The next poll goes on from there.
    assert poll_once(engine, "ozon").cursor_in == f"p{MAX_PAGES_PER_POLL}"


def test_a_failure_mid_paging_keeps_what_was_queued_and_its_cursor(monkeypatch, engine):
    fake = FakeFeed(
        {
            None: OrdersPage((order("a"), order("b")), cursor="p1", more=True),
            "p1": ChannelUnavailableError("ozon", "HTTP 503"),
        },
        [order("c")],
    )
    use(monkeypatch, engine, fake)

    result = poll_once(engine, "ozon")
    assert not result.ok
    assert "503" in (result.error or "")
    assert result.queued == 2
    assert read_cursor(engine, "ozon") == "p1"
    assert queued_ids(engine) == ["a", "b"]  # the unfulfilled list waits for a good poll

    fake.pages["p1"] = OrdersPage((order("a"), order("b", "delivering")), cursor="p2")
    result = poll_once(engine, "ozon")
    assert result.ok
    assert queued_ids(engine) == ["a", "b", "b", "c"]  # a unchanged, b moved on, c new


def test_an_unreadable_cursor_starts_again_from_the_recent_window(monkeypatch, engine, client):
    client.hset(engine.ledger.keys.poll("ym").state, "cursor", "garbage")
    fake = FakeFeed({None: OrdersPage((order("1", "PROCESSING"),), cursor="t1")}, [])
    use(monkeypatch, engine, fake)

    result = poll_once(engine, "ym")
    assert result.ok
    assert result.cursor_reset
    assert fake.calls == ["garbage", None]
    assert read_cursor(engine, "ym") == "t1"


def test_ignored_statuses_are_remembered_but_not_queued(monkeypatch, engine):
    ignored = order("r", "RETURNED", action=OrderAction.IGNORE)
    use(monkeypatch, engine, FakeFeed({None: OrdersPage((ignored,), cursor="t")}, []))
    assert poll_once(engine, "ym").queued == 0
    assert engine.events.count == 0


def test_seen_orders_are_forgotten_after_the_retention(monkeypatch, engine, client):
    clock = Clock()
    fake = FakeFeed({None: OrdersPage((order("old"),), cursor="t"), "t": OrdersPage((), "t")}, [])
    use(monkeypatch, engine, fake)
    poll_once(engine, "ozon", clock=clock)
    keys = engine.ledger.keys.poll("ozon")
    assert client.hexists(keys.seen, "old")

    clock.now += pollers.SEEN_RETENTION_S + 1
    poll_once(engine, "ozon", clock=clock)
    assert not client.hexists(keys.seen, "old")
    assert client.zcard(keys.seen_at) == 0


# -- Wildberries ----------------------------------------------------------------------------------


def test_wildberries_asks_statuses_in_chunks_and_in_turn(monkeypatch, engine):
    monkeypatch.setattr(pollers.wildberries, "MAX_STATUS_IDS", 2)
    monkeypatch.setattr(pollers.wildberries, "MAX_STATUS_IDS_PER_POLL", 4)
    fake = FakeWildberries()
    use(monkeypatch, engine, fake)
    ids = [str(n) for n in range(1, 7)]
    fake.new = [order(i, "new") for i in ids]
    fake.status = {i: (OrderAction.RESERVE, "new/waiting") for i in ids}

    first = poll_once(engine, "wb")
    # One RESERVE per new task; its "new/waiting" status says the same and is not queued.
    assert (first.queued, first.requests) == (6, 3)
    assert fake.status_calls == [["1", "2"], ["3", "4"]]
    fake.status_calls.clear()
    fake.new = []

    second = poll_once(engine, "wb")
    assert second.queued == 0
    assert fake.status_calls == [["5", "6"]]  # the rest of the rotation
    fake.status_calls.clear()
    poll_once(engine, "wb")
    assert fake.status_calls == [["1", "2"], ["3", "4"]]  # and round again


def test_wildberries_a_new_task_already_cancelled_queues_both_events(monkeypatch, engine):
    fake = FakeWildberries()
    use(monkeypatch, engine, fake)
    fake.new = [order("7", "new")]
    fake.status = {"7": (OrderAction.RELEASE, "cancel/canceled")}

    result = poll_once(engine, "wb")
    assert result.queued == 2
    assert [entry.data["action"] for entry in engine.inbox.peek()] == ["reserve", "release"]
    assert tracked_tasks(engine, "wb") == set()


def test_wildberries_tasks_open_too_long_are_dropped(monkeypatch, engine):
    clock = Clock()
    fake = FakeWildberries()
    use(monkeypatch, engine, fake)
    fake.new = [order("9", "new")]
    poll_once(engine, "wb", clock=clock)
    assert tracked_tasks(engine, "wb") == {"9"}

    fake.new = []
    clock.now += pollers.WB_TRACK_MAX_AGE_S + 1
    poll_once(engine, "wb", clock=clock)
    assert tracked_tasks(engine, "wb") == set()


# -- the loop -------------------------------------------------------------------------------------


def test_loop_skips_webhook_channels_and_refuses_unknown_names(engine):
    assert PollerLoop(engine).names == ["wb", "ozon", "ym"]
    assert PollerLoop(engine, ["shop", "ym"]).names == ["ym"]
    with pytest.raises(ConfigError, match="nope"):
        PollerLoop(engine, ["nope"])


def test_loop_survives_any_exception_and_backs_off(engine):
    outcomes: list[Any] = [RuntimeError("bug"), RuntimeError("bug"), report(requests=1)]

    def poll(_: Engine, name: str) -> PollReport:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    loop = PollerLoop(engine, ["wb"], poll=poll)
    assert [loop.poll("wb") for _ in range(3)] == [5.0, 10.0, 5.0]
    assert loop.failures["wb"] == 0


def test_loop_threads_poll_each_channel_and_stop_when_asked(engine):
    polled = {name: threading.Event() for name in ("wb", "ozon", "ym")}

    def poll(_: Engine, name: str) -> PollReport:
        polled[name].set()
        return PollReport(channel=name, kind=engine.channel_settings[name].kind)

    loop = PollerLoop(engine, poll=poll)
    runner = threading.Thread(target=loop.run)
    runner.start()
    assert all(event.wait(5) for event in polled.values())
    loop.stop.set()
    runner.join(timeout=5)
    assert not runner.is_alive()
    assert loop.join(timeout=0)
