"""The HTTP app on a real Redis: webhooks queue (and answer in each marketplace's shape), the
storefront API holds and counts stock, health and readiness tell the truth, oversized or broken
bodies are refused in the caller's shape and the engine keeps working."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import SimpleWorker

from inventory_engine.api import create_app
from inventory_engine.config import (
    ChannelSettings,
    HttpSettings,
    OzonSettings,
    Settings,
    WebhookSettings,
    WildberriesSettings,
    YandexMarketSettings,
)
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.http_server import serve_in_thread
from inventory_engine.ledger.catalog import CatalogEntry
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.redis_io import wall_clock_ms
from inventory_engine.service import Engine, order_from_dict
from tests.conftest import FakeClock

pytestmark = pytest.mark.integration

TOKEN = "storefront-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEYS = AccountKeys()
NOWHERE = "http://127.0.0.1:9"
"""The channels' base URL: the API never calls a marketplace."""
CAMPAIGN = 21000000
OZON_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
YM_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
NEW_POSTING = {
    "message_type": "TYPE_NEW_POSTING",
    "posting_number": "24219509-0020-1",
    "products": [{"sku": 147451959, "quantity": 2}],
    "in_process_at": "2021-01-26T06:56:36.294Z",
    "warehouse_id": 111,
    "seller_id": 15,
}
YM_CREATED = {
    "notificationType": "ORDER_CREATED",
    "campaignId": CAMPAIGN,
    "orderId": 51000000,
    "createdAt": "2025-01-16T10:09:49Z",
    "items": [{"offerId": "A-100", "count": 2}],
}
YM_PATHS = ["/webhooks/yandex-market", "/webhooks/yandex-market/notification"]


def ozon_channel(name: str = "ozon", warehouse_id: int = 111, **extra: Any) -> OzonSettings:
    return OzonSettings(
        kind="ozon",
        name=name,
        base_url=NOWHERE,
        client_id="1",
        api_key=SecretStr("k"),
        warehouse_id=warehouse_id,
        **extra,
    )


def default_channels() -> list[ChannelSettings]:
    return [
        ozon_channel(percent=50, buffer=1),
        YandexMarketSettings(
            kind="yandex_market",
            name="ym",
            base_url=NOWHERE,
            api_key=SecretStr("k"),
            campaign_id=CAMPAIGN,
            business_id=1,
            max=3,
        ),
        WildberriesSettings(
            kind="wildberries",
            name="wb",
            base_url=NOWHERE,
            token=SecretStr("t"),
            warehouse_id=5,
            location="other",
        ),
        WebhookSettings(kind="webhook", name="shop", base_url=NOWHERE, secret=SecretStr("s")),
    ]


def make_engine(
    client: redis.Redis,
    channels: list[ChannelSettings] | None = None,
    *,
    token: str | None = TOKEN,
    queue_client: redis.Redis | None = None,
) -> Engine:
    http = HttpSettings(api_token=SecretStr(token) if token else None)
    settings = Settings(http=http, channels=default_channels() if channels is None else channels)
    return Engine(settings, client, queue_client=queue_client)


def dead_redis() -> redis.Redis:
    """A client of a port nobody listens on, failing at once (no retries)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return redis.Redis(port=port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))


@pytest.fixture
def engine(real_client: redis.Redis) -> Engine:
    return make_engine(real_client)


Serve = Callable[[Engine], httpx.Client]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(engine)``: the engine's app on loopback (uvicorn in a thread) and a client of it.

    Real HTTP rather than an in-process client: what a marketplace sees, chunked bodies included
    (and Starlette's TestClient warns about its httpx dependency, which this suite turns into an
    error).
    """
    running = []

    def start(engine: Engine) -> httpx.Client:
        server = serve_in_thread(create_app(engine))
        client = httpx.Client(base_url=server.url, timeout=10)
        running.append((server, client))
        return client

    yield start
    for server, client in running:
        client.close()
        server.stop()


@pytest.fixture
def api(engine: Engine, serve: Serve) -> httpx.Client:
    return serve(engine)


def event_jobs(engine: Engine) -> list[tuple[Any, ...]]:
    """The queued events, oldest first: (channel, event dict), as the inbox holds them."""
    return [(entry.channel, entry.data) for entry in engine.inbox.peek()]


# -- Ozon -----------------------------------------------------------------------------------------


def test_ozon_ping_is_answered_with_version_name_time(api: httpx.Client) -> None:
    answer = api.post(
        "/webhooks/ozon", json={"message_type": "TYPE_PING", "time": "2019-08-24T14:15:22Z"}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"version", "name", "time"}
    assert OZON_TIME.match(body["time"])


def test_ozon_new_posting_is_queued_once_then_answered(api: httpx.Client, engine: Engine) -> None:
    answer = api.post("/webhooks/ozon", json=NEW_POSTING)
    assert (answer.status_code, answer.json()) == (200, {"result": True})
    [(channel, order)] = event_jobs(engine)
    assert channel == "ozon"
    assert order["order_id"] == "24219509-0020-1"
    assert order["action"] == "reserve"
    assert list(order["lines"]) == [{"item_id": "147451959", "quantity": 2}]
    # One drain job applies whatever the inbox holds by then.
    assert [job.func_name for job in engine.events.jobs] == ["workers.jobs.apply_inbox"]


def test_ozon_duplicate_is_queued_again_and_applies_once(api: httpx.Client, engine: Engine) -> None:
    for _ in range(2):
        assert api.post("/webhooks/ozon", json=NEW_POSTING).json() == {"result": True}
    jobs = event_jobs(engine)
    assert len(jobs) == 2
    outcomes = [engine.apply_order_event(channel, order_from_dict(data)) for channel, data in jobs]
    assert [outcome.applied for outcome in outcomes] == [True, False]


def test_ozon_types_without_stock_effect_queue_nothing(api: httpx.Client, engine: Engine) -> None:
    payload = {"message_type": "TYPE_CUTOFF_DATE_CHANGED", "posting_number": "1-1", "seller_id": 1}
    assert api.post("/webhooks/ozon", json=payload).json() == {"result": True}
    assert event_jobs(engine) == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"",
        b"[]",
        b'{"message_type": 5}',
        b'{"message_type": "TYPE_NEW_POSTING", "posting_number": "1-1"}',
        b'{"message_type": "TYPE_NEW_POSTING", "posting_number": "1-1",'
        b' "products": [{"sku": 1, "quantity": -1}]}',
        b'{"message_type": "TYPE_NEW_POSTING", "posting_number": "1-1",'
        b' "products": [{"sku": 1, "quantity": 1000000000000000000000000000000}]}',
        b'{"message_type": "TYPE_NEW_POSTING", "posting_number": "1-1",'
        b' "products": [{"sku": 1, "quantity": 1e400}]}',
        b'{"message_type": "TYPE_NEW_POSTING", "posting_number": "1-1",'
        b' "products": [{"sku": 1, "quantity": NaN}]}',
        b'{"message_type": "TYPE_PING", "n": ' + b"9" * 5000 + b"}",
        b"[" * 100_000,
        b"\xff\xfe garbage",
    ],
)
def test_ozon_bad_payloads_get_ozons_error_shape(
    api: httpx.Client, engine: Engine, body: bytes
) -> None:
    answer = api.post("/webhooks/ozon", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "ERROR_PARAMETER_VALUE_MISSED"
    assert error["details"] is None
    assert error["message"]
    assert event_jobs(engine) == []
    assert api.post("/webhooks/ozon", json={"message_type": "TYPE_PING"}).status_code == 200


def test_ozon_without_an_ozon_channel_is_404_in_ozons_shape(
    real_client: redis.Redis, serve: Serve
) -> None:
    api = serve(make_engine(real_client, channels=[]))
    answer = api.post("/webhooks/ozon", json={"message_type": "TYPE_PING"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "ERROR_UNKNOWN"


def test_ozon_push_goes_to_the_channel_of_its_warehouse(
    real_client: redis.Redis, serve: Serve
) -> None:
    engine = make_engine(real_client, [ozon_channel("ozon-a", 111), ozon_channel("ozon-b", 222)])
    api = serve(engine)
    api.post("/webhooks/ozon", json={**NEW_POSTING, "warehouse_id": 222})
    api.post("/webhooks/ozon", json={**NEW_POSTING, "posting_number": "9-9", "warehouse_id": 111})
    assert [job[0] for job in event_jobs(engine)] == ["ozon-b", "ozon-a"]
    # No warehouse in the push (TYPE_STATE_CHANGED sends 0): the channel holding the posting.
    engine.ledger.record_order(
        "ozon-b", "7-7", [OrderLine(sku="A", quantity=1)], OrderAction.RESERVE
    )
    state_changed = {
        "message_type": "TYPE_STATE_CHANGED",
        "posting_number": "7-7",
        "new_state": "posting_delivered",
        "changed_state_date": "2021-02-02T15:07:46.765Z",
        "warehouse_id": 0,
    }
    assert api.post("/webhooks/ozon", json=state_changed).json() == {"result": True}
    assert event_jobs(engine)[-1][0] == "ozon-b"


def test_webhooks_answer_500_when_the_queue_is_down(real_client: redis.Redis, serve: Serve) -> None:
    engine = make_engine(real_client, queue_client=dead_redis())
    api = serve(engine)
    ozon = api.post("/webhooks/ozon", json=NEW_POSTING)
    assert ozon.status_code == 500
    assert ozon.json()["error"]["code"] == "ERROR_UNKNOWN"
    ym = api.post(YM_PATHS[0], json=YM_CREATED)
    assert ym.status_code == 500
    assert ym.json() == {"error": {"type": "UNKNOWN", "message": ym.json()["error"]["message"]}}


# -- Yandex Market --------------------------------------------------------------------------------

YM_EVERY_TYPE = [
    {"notificationType": "PING", "time": "2025-01-16T10:09:49.759084017Z"},
    YM_CREATED,
    {
        "notificationType": "ORDER_STATUS_UPDATED",
        "campaignId": CAMPAIGN,
        "orderId": 51000000,
        "status": "DELIVERY",
        "updatedAt": "2025-01-16T11:00:00Z",
    },
    {
        "notificationType": "ORDER_CANCELLED",
        "campaignId": CAMPAIGN,
        "orderId": 51000000,
        "cancelledAt": "2025-01-16T12:00:00Z",
        "items": [{"offerId": "A-100", "count": 2}],
    },
    {"notificationType": "ORDER_UPDATED", "campaignId": CAMPAIGN, "orderId": 51000000},
    {"notificationType": "CHAT_CREATED", "chatId": 1},
    {"notificationType": "SOMETHING_NEW"},
]


@pytest.mark.parametrize("path", YM_PATHS)
def test_ym_every_type_is_answered_version_name_time(
    api: httpx.Client, engine: Engine, path: str
) -> None:
    for payload in YM_EVERY_TYPE:
        answer = api.post(path, json=payload)
        assert answer.status_code == 200, payload
        body = answer.json()
        assert set(body) == {"version", "name", "time"}
        assert YM_TIME.match(body["time"])
    assert [job[1]["action"] for job in event_jobs(engine)] == ["reserve", "commit", "release"]
    assert {job[0] for job in event_jobs(engine)} == {"ym"}


def test_ym_notification_of_another_store_is_answered_and_ignored(
    api: httpx.Client, engine: Engine
) -> None:
    answer = api.post(YM_PATHS[1], json={**YM_CREATED, "campaignId": CAMPAIGN + 1})
    assert answer.status_code == 200
    assert event_jobs(engine) == []


@pytest.mark.parametrize("path", YM_PATHS)
@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"",
        b"[]",
        b"{}",
        b'{"notificationType": "ORDER_CREATED", "orderId": 1}',
        b'{"notificationType": "ORDER_CREATED", "orderId": 1, "createdAt": "2025-01-16T10:09:49Z",'
        b' "items": [{"offerId": "A", "count": -1}]}',
        b'{"notificationType": "PING", "time": ' + b"1" * 5000 + b"}",
    ],
)
def test_ym_malformed_is_exactly_400_wrong_event_format(
    api: httpx.Client, engine: Engine, path: str, body: bytes
) -> None:
    answer = api.post(path, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    error = answer.json()
    assert set(error) == {"error"}
    assert set(error["error"]) == {"type", "message"}
    assert error["error"]["type"] == "WRONG_EVENT_FORMAT"
    assert event_jobs(engine) == []


# -- body size ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "check"),
    [
        ("/webhooks/ozon", lambda b: b["error"]["code"] == "ERROR_PARAMETER_VALUE_MISSED"),
        (YM_PATHS[0], lambda b: b["error"]["type"] == "WRONG_EVENT_FORMAT"),
        (YM_PATHS[1], lambda b: b["error"]["type"] == "WRONG_EVENT_FORMAT"),
        ("/v1/reservations", lambda b: b["error"] == "payload_too_large"),
    ],
)
def test_ten_megabytes_is_413_in_the_callers_shape(
    api: httpx.Client, path: str, check: Any
) -> None:
    answer = api.post(path, content=b" " * 10_000_000, headers=AUTH)
    assert answer.status_code == 413
    assert check(answer.json())
    assert api.post("/webhooks/ozon", json={"message_type": "TYPE_PING"}).status_code == 200


# -- storefront API -------------------------------------------------------------------------------


def test_v1_without_token_is_401_and_with_a_wrong_one_403(api: httpx.Client) -> None:
    body = {"reservation_id": "r1", "lines": [{"sku": "A", "quantity": 1}]}
    missing = api.post("/v1/reservations", json=body)
    assert (missing.status_code, missing.json()["error"]) == (401, "unauthorized")
    basic = api.get("/v1/stock/A", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401
    wrong = api.get("/v1/stock/A", headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["error"]) == (403, "forbidden")
    # Checked before the body is read: a broken body tells an anonymous caller nothing.
    broken = api.post(
        "/v1/reservations", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 401


def test_v1_refuses_every_call_without_a_configured_token(
    real_client: redis.Redis, serve: Serve
) -> None:
    api = serve(make_engine(real_client, token=None))
    assert api.get("/v1/stock/A", headers=AUTH).status_code == 401


def test_reservation_lifecycle(api: httpx.Client) -> None:
    assert api.put("/v1/stock/A", json={"on_hand": 5}, headers=AUTH).status_code == 200
    request = {"reservation_id": "r1", "lines": [{"sku": "A", "quantity": 2}], "ttl_seconds": 600}
    first = api.post("/v1/reservations", json=request, headers=AUTH)
    assert first.status_code == 201
    assert first.json()["state"] == "reserved"
    assert first.json()["expires_at"].endswith("Z")
    again = api.post("/v1/reservations", json=request, headers=AUTH)
    assert (again.status_code, again.json()) == (200, first.json())
    other = {"reservation_id": "r1", "lines": [{"sku": "A", "quantity": 3}]}
    conflict = api.post("/v1/reservations", json=other, headers=AUTH)
    assert (conflict.status_code, conflict.json()["error"]) == (409, "reservation_conflict")
    short = {"reservation_id": "r2", "lines": [{"sku": "A", "quantity": 4}]}
    refused = api.post("/v1/reservations", json=short, headers=AUTH)
    assert refused.status_code == 409
    assert refused.json()["error"] == "insufficient_stock"
    assert refused.json()["items"] == [{"sku": "A", "requested": 4, "available": 3}]

    committed = api.post("/v1/reservations/r1/commit", headers=AUTH)
    assert (committed.status_code, committed.json()["state"]) == (200, "committed")
    assert committed.json()["applied"] is True
    for action in ("commit", "release"):
        noop = api.post(f"/v1/reservations/r1/{action}", headers=AUTH)
        assert noop.status_code == 200
        assert noop.json() == {"reservation_id": "r1", "state": "committed", "applied": False}
    stock = api.get("/v1/stock/A", headers=AUTH).json()
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (3, 0, 3)


def test_commit_of_an_expired_hold_takes_the_stock_again_or_is_409(
    api: httpx.Client, engine: Engine
) -> None:
    clock = FakeClock(wall_clock_ms())
    engine.ledger.clock = clock
    api.put("/v1/stock/A", json={"on_hand": 5}, headers=AUTH)

    def hold(reservation_id: str, ttl: int | None = 60) -> None:
        body = {"reservation_id": reservation_id, "lines": [{"sku": "A", "quantity": 2}]}
        if ttl:
            body["ttl_seconds"] = ttl
        assert api.post("/v1/reservations", json=body, headers=AUTH).status_code == 201

    def stock() -> tuple[int, int]:
        body = api.get("/v1/stock/A", headers=AUTH).json()
        return body["on_hand"], body["reserved"]

    # Expired, its stock still there: held again and committed at once, taken exactly once.
    hold("r1")
    clock.advance(seconds=60)
    assert engine.ledger.expire_due() == 1
    assert stock() == (5, 0)
    committed = api.post("/v1/reservations/r1/commit", headers=AUTH)
    assert committed.status_code == 200
    assert committed.json() == {"reservation_id": "r1", "state": "committed", "applied": True}
    assert stock() == (3, 0)
    again = api.post("/v1/reservations/r1/commit", headers=AUTH)
    assert (again.status_code, again.json()["applied"]) == (200, False)  # idempotent
    assert stock() == (3, 0)

    # Expired, and another checkout took the units meanwhile: 409, nothing changes.
    hold("r2")
    clock.advance(seconds=60)
    assert engine.ledger.expire_due() == 1
    hold("r3", ttl=None)
    for _ in range(2):
        refused = api.post("/v1/reservations/r2/commit", headers=AUTH)
        assert refused.status_code == 409
        body = refused.json()
        assert (body["error"], body["reservation_id"]) == ("reservation_expired", "r2")
        assert body["items"] == [{"sku": "A", "requested": 2, "available": 1}]
        assert "expired" in body["message"]
        assert stock() == (3, 2)
    record = engine.reader.order("storefront", "r2")
    assert record is not None
    assert record.state.value == "expired"


def test_release_gives_units_back_and_unknown_ids_are_404(api: httpx.Client) -> None:
    api.put("/v1/stock/A", json={"on_hand": 5}, headers=AUTH)
    api.post(
        "/v1/reservations",
        json={"reservation_id": "r1", "lines": [{"sku": "A", "quantity": 5}]},
        headers=AUTH,
    )
    released = api.post("/v1/reservations/r1/release", headers=AUTH)
    assert (released.status_code, released.json()["state"]) == (200, "released")
    assert api.get("/v1/stock/A", headers=AUTH).json()["available"] == 5
    for action in ("commit", "release"):
        missing = api.post(f"/v1/reservations/nope/{action}", headers=AUTH)
        assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    # The 404 left no tombstone: the id can still be reserved.
    late = {"reservation_id": "nope", "lines": [{"sku": "A", "quantity": 1}]}
    assert api.post("/v1/reservations", json=late, headers=AUTH).status_code == 201


def test_stock_body_with_channel_targets(api: httpx.Client, engine: Engine) -> None:
    assert api.get("/v1/stock/A", headers=AUTH).status_code == 404
    put = api.put("/v1/stock/A", json={"on_hand": 10}, headers=AUTH)
    assert put.status_code == 200
    api.post(
        "/v1/reservations",
        json={"reservation_id": "r1", "lines": [{"sku": "A", "quantity": 3}]},
        headers=AUTH,
    )
    body = api.get("/v1/stock/A", headers=AUTH).json()
    assert {k: body[k] for k in ("sku", "on_hand", "reserved", "available")} == {
        "sku": "A",
        "on_hand": 10,
        "reserved": 3,
        "available": 7,
    }
    assert body["locations"]["main"] == {"on_hand": 10, "reserved": 3, "available": 7}
    # Not in the catalog: no marketplace lists it (the seller's own shop knows it by SKU).
    assert body["channels"] == {
        "ozon": {"listed": False, "target": None, "accepted": None, "pending": True},
        "ym": {"listed": False, "target": None, "accepted": None, "pending": True},
        "wb": {"listed": False, "target": None, "accepted": None, "pending": True},
        "shop": {"listed": True, "target": 7, "accepted": None, "pending": True},
    }
    engine.catalog.import_entries(
        [CatalogEntry(sku="A", ozon_offer_id="A", wb_chrt_id=77, ym_offer_id="A")]
    )
    body = api.get("/v1/stock/A", headers=AUTH).json()
    assert body["channels"] == {
        "ozon": {"listed": True, "target": 2, "accepted": None, "pending": True},  # 7 × 50 % − 1
        "ym": {"listed": True, "target": 3, "accepted": None, "pending": True},  # max 3
        "wb": {"listed": True, "target": 0, "accepted": None, "pending": True},  # "other": empty
        "shop": {"listed": True, "target": 7, "accepted": None, "pending": True},
    }
    engine.client.hset(KEYS.accepted("ozon"), "A", 2)
    engine.client.zrem(KEYS.dirty("ozon"), "A")
    ozon = api.get("/v1/stock/A", headers=AUTH).json()["channels"]["ozon"]
    assert ozon == {"listed": True, "target": 2, "accepted": 2, "pending": False}


def test_reserving_an_unknown_sku_says_so(api: httpx.Client) -> None:
    """Issue 12: it said "insufficient stock, available 0"."""
    body = {"reservation_id": "r-x", "lines": [{"sku": "NOPE", "quantity": 1}]}
    answer = api.post("/v1/reservations", json=body, headers=AUTH)
    assert answer.status_code == 409
    assert answer.json()["error"] == "unknown_sku"
    assert answer.json()["skus"] == ["NOPE"]


def test_orders_of_a_channel_without_adapter(api: httpx.Client) -> None:
    api.put("/v1/stock/A", json={"on_hand": 4}, headers=AUTH)
    order = {
        "channel": "shop",
        "order_id": "o-1",
        "status": "new",
        "lines": [{"sku": "A", "quantity": 1}],
    }
    created = api.post("/v1/orders", json=order, headers=AUTH)
    assert created.status_code == 200
    assert created.json()["state"] == "reserved"
    assert created.json()["applied"] is True
    shipped = api.post("/v1/orders", json={**order, "status": "shipped"}, headers=AUTH)
    assert shipped.json()["state"] == "committed"
    assert api.get("/v1/stock/A", headers=AUTH).json()["on_hand"] == 3
    for refused in ({**order, "status": "bogus"}, {**order, "channel": "ozon"}):
        answer = api.post("/v1/orders", json=refused, headers=AUTH)
        assert (answer.status_code, answer.json()["error"]) == (422, "invalid_request")


# -- health, readiness, OpenAPI ------------------------------------------------------------------


def test_healthz_and_readyz_follow_workers(api: httpx.Client, engine: Engine) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    waiting = api.get("/readyz")
    assert waiting.status_code == 503
    assert waiting.json()["missing"] == ["worker"]
    worker = SimpleWorker([engine.events], connection=engine.queue_client)
    worker.register_birth()
    try:
        ready = api.get("/readyz")
        assert (ready.status_code, ready.json()["workers"]) == (200, 1)
    finally:
        worker.register_death()
    assert api.get("/readyz").status_code == 503


def test_readyz_is_503_when_redis_is_down(serve: Serve) -> None:
    api = serve(make_engine(dead_redis(), channels=[]))
    answer = api.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["missing"] == ["redis"]
    assert api.get("/healthz").status_code == 200


def test_v1_is_503_when_the_ledger_is_down(serve: Serve) -> None:
    api = serve(make_engine(dead_redis(), channels=[]))
    answer = api.get("/v1/stock/A", headers=AUTH)
    assert (answer.status_code, answer.json()["error"]) == (503, "unavailable")


def test_openapi_describes_the_rest_api(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    assert {"/v1/reservations", "/v1/stock/{sku}", "/v1/orders"} <= set(spec["paths"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


# -- streaming ------------------------------------------------------------------------------------


def test_a_chunked_body_past_the_limit_is_refused_while_it_streams(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length
        for _ in range(20):
            yield b" " * 1_000_000

    big = api.post("/webhooks/ozon", content=chunks())
    assert big.status_code == 413
    assert big.json()["error"]["code"] == "ERROR_PARAMETER_VALUE_MISSED"
    small = api.post("/webhooks/ozon", content=iter([b'{"message_type": ', b'"TYPE_PING"}']))
    assert small.status_code == 200


def test_the_readmes_curl_examples_work_as_written(api: httpx.Client) -> None:
    """Issue 12: the README's curl examples were answered 422 (no Content-Type). The block is
    run as written, with only the address and the token filled in."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("Talk to it", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    assert block.count("curl ") == 3
    host = str(api.base_url).removeprefix("http://").rstrip("/")
    script = block.replace("localhost:8080", host).replace(
        "curl ", "curl -sS -f -o /dev/null -w '%{http_code}\\n' "
    )
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, "TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stdout.split() == ["200", "201", "200"]


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded"])
def test_a_v1_body_without_a_json_type_is_read_as_json(api: httpx.Client, content_type) -> None:
    """curl -d without -H sends a form type; no header at all is possible too: both are JSON."""
    headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    answer = api.put("/v1/stock/Z", content=b'{"on_hand": 4}', headers=headers)
    assert answer.status_code == 200, answer.text
    assert api.get("/v1/stock/Z", headers=AUTH).json()["on_hand"] == 4


def test_a_v1_body_of_another_declared_type_is_refused_in_the_callers_shape(
    api: httpx.Client,
) -> None:
    headers = {**AUTH, "Content-Type": "text/plain"}
    answer = api.put("/v1/stock/Z", content=b'{"on_hand": 4}', headers=headers)
    assert answer.status_code == 415
    assert answer.json()["error"] == "unsupported_media_type"
    assert "Content-Type: application/json" in answer.json()["message"]
