"""What every simulator records for the benchmarks: when each notification left and was
answered, and when each stock value was accepted (``benchmarks/propagation.py`` times
propagation from these)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inventory_engine.http_server import serve_in_thread
from inventory_engine.simulators.base import notify_ssl_context
from inventory_engine.simulators.sandbox import Sandbox, start_sandbox

pytestmark = pytest.mark.integration


@pytest.fixture
def engine_stand_in() -> Iterator[str]:
    """Answers both marketplaces' notifications with 200, a little slowly (5 ms)."""

    async def answer(_: Request) -> Response:
        await asyncio.sleep(0.005)
        return JSONResponse({"result": True})

    routes = [Route("/{path:path}", answer, methods=["POST"])]
    server = serve_in_thread(Starlette(routes=routes))
    yield server.url
    server.stop()


@pytest.fixture
def sandbox(engine_stand_in: str) -> Iterator[Sandbox]:
    running = start_sandbox(ports={"ozon": 0, "wb": 0, "ym": 0}, engine_url=engine_stand_in)
    yield running
    running.stop()


def _notifications(url: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        records = httpx.get(f"{url}/_sim/notifications").json()["notifications"]
        if sum(1 for r in records if "answered_ns" in r) >= count:
            return records
        assert time.monotonic() < deadline, f"only {records} answered"
        time.sleep(0.02)


def test_notification_records_carry_send_and_answer_times(sandbox: Sandbox) -> None:
    before = time.time_ns()
    ozon, ym = sandbox.url("ozon"), sandbox.url("ym")
    httpx.post(f"{ozon}/_sim/products", json={"products": [{"offer_id": "A", "sku": 11}]})
    posting = {"products": [{"sku": 11, "quantity": 1}]}
    httpx.post(f"{ozon}/_sim/postings", json=posting).raise_for_status()
    order = {"items": [{"offerId": "A", "count": 1}]}
    httpx.post(f"{ym}/_sim/orders", json=order).raise_for_status()

    for url, status_key in ((ozon, "status_code"), (ym, "status")):
        (record,) = _notifications(url, 1)
        assert record[status_key] == 200
        assert before <= record["sent_ns"] <= record["answered_ns"] <= time.time_ns()
        # The stand-in answers after 5 ms: the answer time is the engine's, not a guess.
        assert record["answered_ns"] - record["sent_ns"] >= 5_000_000


def test_the_yandex_market_notification_client_shares_one_tls_context() -> None:
    assert notify_ssl_context() is notify_ssl_context()


def test_received_log_has_accept_time_and_value_of_every_stock_item(sandbox: Sandbox) -> None:
    wb = sandbox.url("wb")
    before = time.time_ns()
    body = {"stocks": [{"chrtId": 5, "amount": 3}, {"chrtId": 6, "amount": 0}]}
    answer = httpx.put(
        f"{wb}/api/v3/stocks/1", json=body, headers={"Authorization": "wb-sandbox-token"}
    )
    assert answer.status_code == 204
    rows = httpx.get(f"{wb}/_sim/received", params={"since": 0}).json()["received"]
    assert [(r["item_id"], r["value"]) for r in rows] == [("5", 3), ("6", 0)]
    assert all(before <= r["at_ns"] <= time.time_ns() for r in rows)
