"""The storefront webhook channel: exact body, HMAC signature, failures mapped once.

The webhook client is a bare ``send()``, so the shared helpers of ``channels/base.py`` it rests
on (Retry-After parsing, the failure mapping, local rejection, answer parsing) are tested here
too.
"""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inventory_engine.channels.base import (
    ChannelRateLimitedError,
    ChannelRejectedError,
    ChannelUnavailableError,
    ItemOutcome,
    StockUpdate,
)
from inventory_engine.channels.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    WebhookClient,
    sign,
    verify_signature,
)
from inventory_engine.http_server import serve_in_thread

SECRET = "shop-secret-123"
UPDATES = [StockUpdate("A", "A", 3), StockUpdate("Б-2", "Б-2", 0)]


def client_with(handler) -> WebhookClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return WebhookClient(
        http, name="shop", url="https://shop.example/hooks/stock", secret=SecretStr(SECRET)
    )


def test_webhook_push_sends_sku_quantities_signed():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    result = client_with(handler).push_stock(UPDATES)
    assert [item.outcome for item in result.items] == [ItemOutcome.ACCEPTED] * 2
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "https://shop.example/hooks/stock"
    assert json.loads(request.content) == {"A": 3, "Б-2": 0}
    assert request.headers[SIGNATURE_HEADER] == sign(SECRET, request.content)
    assert verify_signature(SECRET, request.content, request.headers[SIGNATURE_HEADER])
    assert len(request.headers[DELIVERY_HEADER]) == 32


def test_verify_signature_refuses_a_tampered_body_or_wrong_secret():
    body = b'{"A":3}'
    header = sign(SECRET, body)
    assert verify_signature(SECRET, body, header)
    assert not verify_signature(SECRET, b'{"A":300}', header)
    assert not verify_signature("other-secret", body, header)
    assert not verify_signature(SECRET, body, None)


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(307, headers={"Location": "/elsewhere"}), ChannelRejectedError),
        (httpx.Response(429, headers={"Retry-After": "7"}), ChannelRateLimitedError),
        (httpx.Response(503), ChannelUnavailableError),
        (httpx.Response(400, text="bad"), ChannelRejectedError),
        (httpx.Response(401), ChannelRejectedError),
    ],
)
def test_webhook_push_maps_failures(response, error):
    with pytest.raises(error) as caught:
        client_with(lambda request: response).push_stock(UPDATES)
    assert SECRET not in str(caught.value)
    if isinstance(caught.value, ChannelRateLimitedError):
        assert caught.value.retry_after_s == 7


def test_webhook_push_timeout_is_unavailable():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow shop", request=request)

    with pytest.raises(ChannelUnavailableError, match="timeout"):
        client_with(handler).push_stock(UPDATES)


def test_webhook_push_refuses_more_than_a_batch():
    with pytest.raises(ValueError, match="at most 1000"):
        client_with(lambda r: httpx.Response(204)).push_stock(
            [StockUpdate(str(i), str(i), 1) for i in range(1001)]
        )


def test_webhook_has_no_feed_or_read_back():
    client = client_with(lambda r: httpx.Response(204))
    assert client.read_stock(["A"]) == {}
    assert client.list_orders("c").orders == ()
    assert client.get_order("x") is None


@pytest.mark.integration
def test_webhook_signature_verified_by_a_real_receiver():
    """A shop on loopback checks every POST's HMAC; a forged one is refused with 401."""
    received: list[dict] = []

    async def receive(request: Request) -> Response:
        body = await request.body()
        if not verify_signature(SECRET, body, request.headers.get(SIGNATURE_HEADER)):
            return Response(status_code=401)
        received.append(json.loads(body))
        return Response(status_code=204)

    server = serve_in_thread(Starlette(routes=[Route("/stock", receive, methods=["POST"])]))
    try:
        url = f"{server.url}/stock"
        with httpx.Client(timeout=5) as http:
            WebhookClient(http, name="shop", url=url, secret=SecretStr(SECRET)).push_stock(UPDATES)
            forged = WebhookClient(http, name="shop", url=url, secret=SecretStr("guess"))
            with pytest.raises(ChannelRejectedError) as caught:
                forged.push_stock(UPDATES)
        assert caught.value.status_code == 401
        assert received == [{"A": 3, "Б-2": 0}]
    finally:
        server.stop()
