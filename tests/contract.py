"""Contract checks: requests the clients send and answers the simulators give, validated
against the marketplaces' official OpenAPI documents (subsets) kept in ``tests/specs`` (its
README names their sources and patches); INVENTORY_SPECS_DIR overrides.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

SPEC_FILES = {
    "ozon": "ozon-seller-subset.json",
    "wildberries_stocks": "wildberries-stocks-subset.json",
    "wildberries_orders": "wildberries-orders-fbs-subset.json",
    "yandex_market": "yandex-market-subset.json",
}


def specs_dir() -> Path:
    override = os.environ.get("INVENTORY_SPECS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent / "specs"


@cache
def spec(name: str) -> OpenAPI:
    """The OpenAPI document of one marketplace (or WB part), loaded once."""
    path = specs_dir() / SPEC_FILES[name]
    # WB answers 401/429 as application/problem+json, which openapi-core cannot read by itself.
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_dict(json.loads(path.read_text(encoding="utf-8")), config=config)


SERVER_URLS = {
    "ozon": "https://api-seller.ozon.ru",
    "wildberries_stocks": "https://marketplace-api.wildberries.ru",
    "wildberries_orders": "https://marketplace-api.wildberries.ru",
    "yandex_market": "https://api.partner.market.yandex.ru",
}
"""Production hosts as the specs declare them (WB declares its servers per path)."""


def server_url(name: str) -> str:
    """Requests are validated as if sent to the marketplace's production host."""
    return SERVER_URLS[name]


def _mock_request(name: str, request: httpx.Request) -> MockRequest:
    body = request.content or None
    return MockRequest(
        host_url=server_url(name).rstrip("/"),
        method=request.method.lower(),
        path=_spec_path(name, request.url.path),
        args=dict(request.url.params),
        headers=dict(request.headers),
        data=body,
        content_type=request.headers.get("content-type", "application/json").split(";")[0],
    )


def _spec_path(name: str, path: str) -> str:
    """Strip the server URL's own path prefix, if the spec's server has one."""
    prefix = httpx.URL(server_url(name)).path.rstrip("/")
    return path[len(prefix) :] if prefix and path.startswith(prefix) else path


def validate_request(name: str, request: httpx.Request) -> None:
    """Raise if the request does not match its operation in the spec."""
    spec(name).validate_request(_mock_request(name, request))


def validate_response(name: str, request: httpx.Request, response: httpx.Response) -> None:
    """Raise if the answer does not match what the spec declares for that status."""
    mock_response = MockResponse(
        data=response.content or b"",
        status_code=response.status_code,
        headers=dict(response.headers),
        content_type=response.headers.get("content-type", "application/json").split(";")[0],
    )
    spec(name).validate_response(_mock_request(name, request), mock_response)


def json_of(request: httpx.Request) -> Any:
    return json.loads(request.content)
