"""Bad input to the HTTP app, on fakeredis: every refusal is in the caller's own shape, and the
app keeps answering. In process (httpx's ASGI transport driven by anyio), no server."""

from __future__ import annotations

from typing import Any

import anyio
import fakeredis
import httpx
import pytest
from pydantic import SecretStr

from inventory_engine.api import create_app, error_response
from inventory_engine.config import HttpSettings, OzonSettings, Settings
from inventory_engine.service import Engine
from tests.conftest import write_bundles

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json", **AUTH}


def make_engine(*, ozon: bool = True) -> Engine:
    channels = (
        [
            OzonSettings(
                kind="ozon",
                name="ozon",
                base_url="http://127.0.0.1:9",
                client_id="1",
                api_key=SecretStr("k"),
                warehouse_id=1,
            )
        ]
        if ozon
        else []
    )
    settings = Settings(http=HttpSettings(api_token=SecretStr(TOKEN)), channels=channels)
    return Engine(settings, fakeredis.FakeRedis(server=fakeredis.FakeServer()))


def call(engine: Engine, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request to the engine's app, in process."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.request(method, path, **kwargs)

    return anyio.run(go)


@pytest.fixture
def engine() -> Engine:
    return make_engine()


def line(quantity: Any, sku: Any = "A") -> dict[str, Any]:
    return {"reservation_id": "r", "lines": [{"sku": sku, "quantity": quantity}]}


@pytest.mark.parametrize(
    "body",
    [
        line(0),
        line(-1),
        line(1_000_000),
        line("5"),
        line(5.0),
        line(True),
        line(10**30),
        line(1, sku=5),
        line(1, sku="   "),
        line(1, sku="a\nb"),
        line(1, sku="x" * 201),
        {"reservation_id": "r", "lines": []},
        {"reservation_id": "r"},
        {"reservation_id": "", "lines": [{"sku": "A", "quantity": 1}]},
        {**line(1), "ttl_seconds": 0},
        {**line(1), "ttl_seconds": 10**12},
        {**line(1), "colour": "red"},
        {"reservation_id": "r", "lines": [{"sku": "A", "quantity": 600_000}] * 2},
        [],
    ],
)
def test_bad_reservations_are_422_invalid_request(engine: Engine, body: Any) -> None:
    answer = call(engine, "POST", "/v1/reservations", json=body, headers=AUTH)
    assert answer.status_code == 422
    data = answer.json()
    assert data["error"] == "invalid_request"
    assert data["message"]
    assert isinstance(data["details"], list)
    assert data["details"]


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"",
        b'{"on_hand": 1e400}',
        b'{"on_hand": ' + b"9" * 5000 + b"}",
        b"[" * 100_000,
        b"\xff\xfe",
    ],
)
def test_unreadable_bodies_are_422_invalid_request(engine: Engine, raw: bytes) -> None:
    answer = call(engine, "PUT", "/v1/stock/A", content=raw, headers=JSON)
    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid_request"
    assert call(engine, "PUT", "/v1/stock/A", json={"on_hand": 1}, headers=AUTH).status_code == 200


@pytest.mark.parametrize("on_hand", [-1, 1_000_000_001, 1.5, "3", None])
def test_on_hand_out_of_range_is_422(engine: Engine, on_hand: Any) -> None:
    answer = call(engine, "PUT", "/v1/stock/A", json={"on_hand": on_hand}, headers=AUTH)
    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid_request"


def test_on_hand_bounds_are_accepted(engine: Engine) -> None:
    for value in (0, 1_000_000_000):
        answer = call(engine, "PUT", "/v1/stock/A", json={"on_hand": value}, headers=AUTH)
        assert answer.json()["on_hand"] == value


def test_a_bundles_count_cannot_be_set(engine: Engine) -> None:
    write_bundles(engine.client, {"KIT": "A:2"})
    answer = call(engine, "PUT", "/v1/stock/KIT", json={"on_hand": 1}, headers=AUTH)
    assert (answer.status_code, answer.json()["error"]) == (409, "stock_level")


def test_order_with_the_storefront_channel_or_unknown_status_is_422(engine: Engine) -> None:
    lines = [{"sku": "A", "quantity": 1}]
    for channel, status in (("storefront", "new"), ("shop", "lost")):
        order = {"channel": channel, "order_id": "o", "status": status, "lines": lines}
        answer = call(engine, "POST", "/v1/orders", json=order, headers=AUTH)
        assert (answer.status_code, answer.json()["error"]) == (422, "invalid_request")


def test_unknown_routes_and_methods_answer_in_the_callers_shape(engine: Engine) -> None:
    rest = call(engine, "GET", "/v1/nothing-here", headers=AUTH)
    assert (rest.status_code, rest.json()["error"]) == (404, "not_found")
    ozon = call(engine, "GET", "/webhooks/ozon")
    assert (ozon.status_code, ozon.json()["error"]["code"]) == (405, "ERROR_UNKNOWN")
    ym = call(engine, "GET", "/webhooks/yandex-market")
    assert (ym.status_code, ym.json()["error"]["type"]) == (405, "UNKNOWN")


def test_401_names_the_bearer_scheme(engine: Engine) -> None:
    answer = call(engine, "GET", "/v1/stock/A")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"


def test_ym_without_a_ym_channel_is_404_in_yms_shape() -> None:
    answer = call(
        make_engine(), "POST", "/webhooks/yandex-market", json={"notificationType": "PING"}
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "UNKNOWN"


def test_error_shapes_by_path() -> None:
    ozon = error_response("/webhooks/ozon", 400, "m")
    assert (
        ozon.body
        == b'{"error":{"code":"ERROR_PARAMETER_VALUE_MISSED","message":"m","details":null}}'
    )
    ym = error_response("/webhooks/yandex-market/notification", 500, "m")
    assert ym.body == b'{"error":{"type":"UNKNOWN","message":"m"}}'
    rest = error_response("/v1/stock/A", 503, "m")
    assert rest.body == b'{"error":"unavailable","message":"m"}'
