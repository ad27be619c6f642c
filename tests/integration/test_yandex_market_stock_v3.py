"""Yandex Market's v3 stock push, the 100-per-page read limit and the parallel-request rule,
client against simulator over real HTTP, every exchange checked against YM's spec subset
(issue 14 §2). Fixtures come from ``test_yandex_market_simulator``.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from pydantic import SecretStr

from inventory_engine.channels.base import ChannelRateLimitedError, ItemOutcome
from inventory_engine.channels.yandex_market import YandexMarketClient
from inventory_engine.config import YandexMarketSettings
from tests.contract import validate_response
from tests.integration import test_yandex_market_simulator as ym
from tests.integration.test_yandex_market_simulator import (
    HEADERS,
    SANDBOX_BUSINESS_ID,
    SANDBOX_CAMPAIGN_ID,
    SANDBOX_WAREHOUSE_ID,
    SPEC,
    STOCKS,
    body,
    error_of,
    updates,
)

server = ym.server
start = ym.start
"""The simulator fixtures of ``test_yandex_market_simulator``, shared here."""

pytestmark = pytest.mark.integration

V3 = f"/v3/businesses/{SANDBOX_BUSINESS_ID}/offers/stocks/update"


def items(*pairs: tuple[str, int], warehouse: int = SANDBOX_WAREHOUSE_ID) -> dict:
    return {"skuItems": [{"sku": s, "partnerWarehouseId": warehouse, "count": c} for s, c in pairs]}


def test_v3_client_pushes_sku_items_per_warehouse_and_reads_back(start):
    sim = start(stock_api="v3")
    result = sim.client.push_stock(updates(("A-1", 7), ("A-2", 0)))
    assert [i.outcome for i in result.items] == [ItemOutcome.ACCEPTED] * 2
    request = sim.exchanges[-1][0]
    assert (request.method, request.url.path) == ("POST", V3)
    sent = json.loads(request.content)["skuItems"]
    assert [(i["sku"], i["partnerWarehouseId"], i["count"]) for i in sent] == [
        ("A-1", SANDBOX_WAREHOUSE_ID, 7),
        ("A-2", SANDBOX_WAREHOUSE_ID, 0),
    ]
    assert all("updatedAt" in i for i in sent)
    stock = sim.client.read_stock(["A-1", "A-2"])
    assert {k: v.sellable for k, v in stock.items()} == {"A-1": 7, "A-2": 0}


def test_v3_has_its_own_50_requests_per_minute_answered_420(start):
    sim = start(stock_api="v3")
    for n in range(50):
        sim.client.push_stock(updates((f"S{n}", n)))
    response = sim.api("POST", V3, json=items(("S0", 1)))
    assert error_of(response) == (420, "LIMIT_EXCEEDED", "Hit rate limit of 50 requests per 60 s")
    assert response.headers["X-RateLimit-Resource-Limit"] == "50"
    with pytest.raises(ChannelRateLimitedError) as caught:
        sim.client.push_stock(updates(("S0", 1)))
    assert 1 <= caught.value.retry_after_s <= 2
    # The v2 method's budget (SKUs per minute) is apart from it.
    assert sim.api("PUT", STOCKS, json=body(("S0", 1))).status_code == 200
    assert sim.violations() == {"rate_limit": 2}
    sim.clock.now += 60
    sim.client.push_stock(updates(("S0", 2)))


@pytest.mark.parametrize(
    ("payload", "violation"),
    [
        ({"skuItems": []}, "bad_request"),
        (items(("A", 1), ("A", 2)), "duplicate_sku"),
        (items(("A", 1), warehouse=SANDBOX_WAREHOUSE_ID + 1), "unknown_warehouse"),
        (items(*[(f"S{n}", 1) for n in range(2001)]), "batch_size"),
        (items(("A", 2_000_000_001)), "count_range"),
        ({"skuItems": [{"sku": "A", "count": 1}]}, "bad_request"),
    ],
)
def test_v3_refuses_what_ym_would_refuse_with_400(start, payload, violation):
    sim = start()
    response = sim.api("POST", V3, json=payload)
    assert error_of(response)[:2] == (400, "BAD_REQUEST")
    assert sim.violations() == {violation: 1}


def test_v3_unknown_business_is_404(start):
    sim = start()
    response = sim.api("POST", "/v3/businesses/1/offers/stocks/update", json=items(("A", 1)))
    assert error_of(response) == (404, "NOT_FOUND", "Business not found: '1'")


def test_stock_api_setting_defaults_to_v2_and_builds_a_v3_client():
    settings = YandexMarketSettings(
        kind="yandex_market",
        name="ym",
        base_url="https://api.partner.market.yandex.ru",
        api_key=SecretStr("k"),
        campaign_id=SANDBOX_CAMPAIGN_ID,
        business_id=SANDBOX_BUSINESS_ID,
    )
    assert YandexMarketClient.from_settings(settings, httpx.Client()).stock_api == "v2"
    v3 = settings.model_copy(update={"stock_api": "v3", "warehouse_id": SANDBOX_WAREHOUSE_ID})
    client = YandexMarketClient.from_settings(v3, httpx.Client())
    assert (client.stock_api, client.warehouse_id) == ("v3", SANDBOX_WAREHOUSE_ID)


def test_v3_client_needs_the_partner_warehouse():
    with pytest.raises(ValueError, match="warehouse_id"):
        YandexMarketClient(
            httpx.Client(), name="ym", api_key=SecretStr("k"), campaign_id=1, business_id=1,
            stock_api="v3",
        )  # fmt: skip


def test_read_page_limit_over_100_is_cut_to_100_and_defaults_to_50(start):
    sim = start()
    sim.client.push_stock(updates(*[(f"S{n:03}", 1) for n in range(120)]))
    cut = sim.api("POST", STOCKS, params={"limit": 150}, json={}).json()["result"]
    assert len(cut["warehouses"][0]["offers"]) == 100
    assert cut["paging"]["nextPageToken"]
    default = sim.api("POST", STOCKS, json={}).json()["result"]
    assert len(default["warehouses"][0]["offers"]) == 50
    assert sim.violations() == {}


def parallel(sim, calls: list[tuple[str, str, dict]]) -> list[httpx.Response]:
    """Send the calls at once (each held 300 ms by injected latency)."""
    sim.admin("PUT", "/_sim/faults", json={"latency_ms": [300, 300]})
    answers: list[httpx.Response] = []

    def send(method: str, path: str, payload: dict) -> None:
        answers.append(httpx.request(method, sim.url + path, json=payload, headers=HEADERS))

    threads = [threading.Thread(target=send, args=call) for call in calls]
    for thread in threads:
        thread.start()
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    return answers


def test_four_parallel_requests_per_campaign_the_fifth_gets_420(start):
    sim = start()
    answers = parallel(sim, [("PUT", STOCKS, body((f"P{n}", 1))) for n in range(5)])
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 420]
    limited = next(a for a in answers if a.status_code == 420)
    validate_response(SPEC, limited.request, limited)
    message = f"Hit rate limit of 4 parallel requests for campaignId {SANDBOX_CAMPAIGN_ID}"
    assert error_of(limited)[2] == message


def test_parallel_limit_counts_campaign_and_cabinet_apart(start):
    sim = start(max_parallel=1)
    answers = parallel(sim, [("PUT", STOCKS, body(("P", 1))), ("POST", V3, items(("Q", 1)))])
    assert sorted(a.status_code for a in answers) == [200, 200]
    assert sim.violations() == {}
