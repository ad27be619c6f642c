"""Issue 14 §2/§3 on the push path, on a real Redis: a channel's ``limits`` table really paces
its pushes (in virtual time: the scripts' ``clock_offset``), WB's token type picks the defaults,
a refused WB request is charged as 10 requests, and a retired endpoint is logged, counted and
paused with a growing back-off instead of being hammered."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from pydantic import SecretStr
from structlog.testing import capture_logs

from inventory_engine.channels.wildberries import WildberriesClient
from inventory_engine.config import WildberriesSettings
from inventory_engine.ledger import RedisLedger
from inventory_engine.ledger.catalog import CatalogEntry, CatalogStore
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.results import text
from inventory_engine.metrics.recorder import parse_field
from inventory_engine.sync.limits import LIMITS, WB_BASIC_LIMITS
from inventory_engine.sync.publisher import ChannelPublisher
from inventory_engine.sync.retired import RETIRED_PAUSE_MS

pytestmark = pytest.mark.integration

KEYS = AccountKeys()
CATALOG = [
    CatalogEntry(sku="A", wb_chrt_id=2001),
    CatalogEntry(sku="B", wb_chrt_id=2002),
]


@pytest.fixture(autouse=True)
def every_level() -> Iterator[None]:
    """Every level reaches ``capture_logs`` (an in-process CLI test may have set WARNING)."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        yield
    finally:
        structlog.configure(**saved)


class FakeWB:
    """A WB marketplace behind httpx.MockTransport: answers with ``status`` (204 = accepted)."""

    def __init__(self) -> None:
        self.status = 204
        self.body: Any = None
        self.text = ""
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.body is not None:
            return httpx.Response(self.status, json=self.body)
        return httpx.Response(self.status, text=self.text)


def wb_settings(**fields: Any) -> WildberriesSettings:
    return WildberriesSettings(
        kind="wildberries",
        name="wb",
        base_url="http://wb.test",
        token=SecretStr("t"),
        warehouse_id=7,
        **fields,
    )


@pytest.fixture
def wb(real_client) -> Iterator[tuple[RedisLedger, FakeWB, Any]]:
    CatalogStore(real_client, channels=["wb"]).import_entries(CATALOG)
    ledger = RedisLedger(real_client, channels=["wb"])
    fake = FakeWB()
    http = httpx.Client(base_url="http://wb.test", transport=httpx.MockTransport(fake))

    def publisher(settings: WildberriesSettings) -> ChannelPublisher:
        client = WildberriesClient.from_settings(settings, http)
        return ChannelPublisher(real_client, settings, client)

    yield ledger, fake, publisher
    http.close()


def advance(client, ms: int) -> None:
    """Virtual time for every script at once (the Redis scripts' clock_offset)."""
    client.incrby(KEYS.clock_offset, ms)


def test_a_lower_rate_in_the_limits_table_paces_the_pushes(real_client, wb):
    ledger, fake, make = wb
    publisher = make(wb_settings(limits={"rate_per_minute": 60, "burst": 1}))
    assert publisher.limits.bucket_rate_per_s == 1.0
    assert publisher.limits.bucket_capacity == 1
    ledger.set_on_hand("A", 5)
    ledger.set_on_hand("B", 5)
    publisher.publish_once()  # the catalog's first values (and A, B): one request
    sent = len(fake.requests)
    assert sent == 1

    ledger.set_on_hand("A", 4)
    report = publisher.publish_once()
    # The burst of 1 is spent: with WB's default (burst 16) this would have gone at once.
    assert len(fake.requests) == sent
    assert report.next_due_ms is not None

    advance(real_client, 500)
    publisher.publish_once()
    assert len(fake.requests) == sent  # half a token at 60/min

    advance(real_client, 600)
    publisher.publish_once()
    assert len(fake.requests) == sent + 1  # a second (virtual) later: one more request


def test_wb_token_type_picks_the_default_limits(wb):
    _, _, make = wb
    assert make(wb_settings()).limits == LIMITS["wildberries"]
    assert make(wb_settings(token_type="service")).limits == LIMITS["wildberries"]
    basic = make(wb_settings(token_type="basic")).limits
    assert basic == WB_BASIC_LIMITS
    assert basic.bucket_rate_per_s * 60 <= 150
    assert basic.bucket_capacity <= 10
    # An override still applies on top of the token type's defaults.
    tuned = make(wb_settings(token_type="basic", limits={"concurrency": 1})).limits
    assert tuned.concurrency == 1
    assert tuned.bucket_capacity == WB_BASIC_LIMITS.bucket_capacity


def bucket_tokens(client) -> float:
    return float(text(client.hget(KEYS.bucket("wb"), "tokens")))


def test_a_wb_400_is_charged_as_ten_requests(real_client, wb):
    ledger, fake, make = wb
    publisher = make(wb_settings())
    fake.status, fake.body = 400, {"code": "IncorrectRequestBody", "message": "bad"}
    ledger.set_on_hand("A", 5)
    report = publisher.publish_once()
    assert report.requests == 1
    capacity = LIMITS["wildberries"].bucket_capacity
    # One token taken for the request, nine more charged for WB's bill of 10 (a little refill
    # while the test runs).
    assert bucket_tokens(real_client) < capacity - 9.5


def test_a_wb_429_is_not_charged_beyond_the_request(real_client, wb):
    ledger, fake, make = wb
    publisher = make(wb_settings())
    fake.status, fake.body = 429, {"title": "too many requests"}
    ledger.set_on_hand("A", 5)
    publisher.publish_once()
    assert bucket_tokens(real_client) > LIMITS["wildberries"].bucket_capacity - 2


def api_errors(client) -> dict[tuple[str, ...], float]:
    found = {}
    for field, value in client.hgetall(KEYS.metrics).items():
        name, labels, suffix = parse_field(text(field))
        if name == "inventory_api_errors" and suffix == "c":
            found[labels] = float(value)
    return found


def paused_for_ms(client) -> int:
    now_s, now_us = client.time()
    now = now_s * 1000 + now_us // 1000 + int(client.get(KEYS.clock_offset) or 0)
    return int(text(client.get(KEYS.paused("wb")))) - now


def test_a_retired_endpoint_is_logged_counted_and_paused_with_growing_back_off(real_client, wb):
    ledger, fake, make = wb
    publisher = make(wb_settings())
    fake.status, fake.text = 404, "404 page not found"  # a router's answer: no such method
    ledger.set_on_hand("A", 5)
    with capture_logs() as logs:
        publisher.publish_once()
    retired = [e for e in logs if e["event"] == "channel_endpoint_retired"]
    assert len(retired) == 1
    assert retired[0]["log_level"] == "error"
    assert retired[0]["endpoint"] == "PUT /api/v3/stocks/{warehouse_id}"
    assert "retired this API version" in retired[0]["likely_cause"]
    key = ("wb", "404", "PUT /api/v3/stocks/{warehouse_id}")
    assert api_errors(real_client) == {key: 1.0}
    first = paused_for_ms(real_client)
    assert RETIRED_PAUSE_MS - 5_000 < first <= RETIRED_PAUSE_MS

    sent = len(fake.requests)
    publisher.publish_once()
    assert len(fake.requests) == sent  # paused: the endpoint is not hammered

    advance(real_client, first + 1)
    publisher.publish_once()
    assert len(fake.requests) == sent + 1
    assert api_errors(real_client) == {key: 2.0}
    assert paused_for_ms(real_client) > 2 * RETIRED_PAUSE_MS - 5_000  # the back-off grows

    fake.status, fake.text = 204, ""  # the method is back: the back-off starts over
    advance(real_client, 2 * RETIRED_PAUSE_MS + 1)
    assert publisher.publish_once().accepted == 1
    assert not real_client.exists(publisher.retired.key("PUT /api/v3/stocks/{warehouse_id}"))


def test_a_missing_warehouse_404_with_wbs_error_body_is_not_a_retired_endpoint(real_client, wb):
    ledger, fake, make = wb
    publisher = make(wb_settings())
    fake.status, fake.body = 404, {"code": "NotFound", "message": "Not found"}
    ledger.set_on_hand("A", 5)
    with capture_logs() as logs:
        publisher.publish_once()
    assert not [e for e in logs if e["event"] == "channel_endpoint_retired"]
    assert api_errors(real_client) == {}
