"""The HTTP intake of a multi-account deployment (issue 15 §1), over real HTTP on a real
Valkey: webhooks by account path, refused when they name another account's seller or store;
storefront calls by token, each token opening its own account only (reading and changing).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from pydantic import SecretStr

from inventory_engine.api import create_app
from inventory_engine.config import (
    AccountSettings,
    OzonSettings,
    Settings,
    YandexMarketSettings,
)
from inventory_engine.http_server import serve_in_thread
from inventory_engine.ledger import LedgerReader
from inventory_engine.service import Engines
from tests.integration.test_api import NEW_POSTING as OZON_NEW_POSTING
from tests.integration.test_api import YM_CREATED

pytestmark = pytest.mark.integration

NOWHERE = "http://127.0.0.1:9"


def account(name: str, seller: int, campaign: int) -> AccountSettings:
    return AccountSettings(
        name=name,
        api_tokens=[SecretStr(f"token-{name}"), SecretStr(f"token-{name}-next")],
        channels=[
            OzonSettings(
                kind="ozon",
                name="ozon",
                base_url=NOWHERE,
                client_id=str(seller),
                api_key=SecretStr("k"),
                warehouse_id=111,
            ),
            YandexMarketSettings(
                kind="yandex_market",
                name="ym",
                base_url=NOWHERE,
                api_key=SecretStr("k"),
                campaign_id=campaign,
                business_id=1,
            ),
        ],
    )


@pytest.fixture
def base(real_client: redis.Redis) -> Iterator[str]:
    settings = Settings(accounts=[account("north", 15, 2100), account("south", 16, 2200)])
    engines = Engines(settings, real_client)
    server = serve_in_thread(create_app(engines, sandbox=True))
    try:
        yield server.url
    finally:
        server.stop()
        engines.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ozon(number: str, seller: int) -> dict[str, Any]:
    return {**OZON_NEW_POSTING, "posting_number": number, "seller_id": seller}


def test_a_token_reads_and_changes_its_own_account_only(base, real_client):
    north = LedgerReader(real_client, account="north")
    south = LedgerReader(real_client, account="south")
    stock = f"{base}/v1/stock/A"
    assert httpx.put(stock, json={"on_hand": 7}, headers=bearer("token-north")).status_code == 200
    # The second token of an account opens the same account (rotation).
    assert httpx.get(stock, headers=bearer("token-north-next")).json()["on_hand"] == 7
    # South has no such SKU: north's count is not visible to it.
    assert httpx.get(stock, headers=bearer("token-south")).status_code == 404
    assert httpx.put(stock, json={"on_hand": 2}, headers=bearer("token-south")).status_code == 200
    assert (north.stock("A").on_hand, south.stock("A").on_hand) == (7, 2)
    hold = httpx.post(
        f"{base}/v1/reservations",
        json={"reservation_id": "cart", "lines": [{"sku": "A", "quantity": 2}]},
        headers=bearer("token-south"),
    )
    assert hold.status_code in (200, 201), hold.text
    assert (north.stock("A").reserved, south.stock("A").reserved) == (0, 2)
    # The other account can neither see nor release it.
    gone = httpx.post(f"{base}/v1/reservations/cart/release", headers=bearer("token-north"))
    assert gone.status_code == 404
    assert south.stock("A").reserved == 2
    assert httpx.get(stock, headers=bearer("token-west")).status_code == 403


def test_webhooks_go_to_the_account_their_path_names(base, real_client):
    assert httpx.post(f"{base}/webhooks/north/ozon", json=ozon("N-1", 15)).status_code == 200
    assert httpx.post(f"{base}/webhooks/south/ozon", json=ozon("S-1", 16)).status_code == 200
    ym = {**YM_CREATED, "campaignId": 2200, "orderId": 77}
    assert (
        httpx.post(f"{base}/webhooks/south/yandex-market/notification", json=ym).status_code == 200
    )
    inbox = {name: real_client.xlen(f"inv:{{{name}}}:inbox") for name in ("north", "south")}
    assert inbox == {"north": 1, "south": 2}


def test_a_webhook_for_another_accounts_seller_or_store_is_refused(base, real_client):
    wrong = httpx.post(f"{base}/webhooks/south/ozon", json=ozon("N-2", 15))
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "ERROR_PARAMETER_VALUE_MISSED"
    assert "seller_id 15" in wrong.json()["error"]["message"]
    ym = {**YM_CREATED, "campaignId": 2100, "orderId": 78}
    refused = httpx.post(f"{base}/webhooks/south/yandex-market", json=ym)
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "WRONG_EVENT_FORMAT"
    assert "campaignId 2100" in refused.json()["error"]["message"]
    assert real_client.xlen("inv:{south}:inbox") == 0  # nothing queued


def test_unknown_accounts_and_the_unprefixed_paths_answer_404_in_the_marketplaces_shape(base):
    ozon_answer = httpx.post(f"{base}/webhooks/west/ozon", json=ozon("W-1", 15))
    assert ozon_answer.status_code == 404
    assert ozon_answer.json()["error"]["code"] == "ERROR_UNKNOWN"
    ym_answer = httpx.post(f"{base}/webhooks/yandex-market", json=YM_CREATED)
    assert ym_answer.status_code == 404
    assert "use /webhooks/<account>/" in ym_answer.json()["error"]["message"]
