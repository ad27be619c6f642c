"""Issue §4, bad input on the webhooks, beyond the cases of ``test_api`` and
``test_sync_scenarios``: unicode of every kind, JSON that decodes to text no store can hold, huge
and negative numbers and wrong types in the fields those tests leave alone, unknown message
types, generated mutations of good payloads, and 10 MB bodies of valid JSON. Each one is answered
with a 4xx in the marketplace's own error shape, or as accepted (``{"result": true}`` / YM's
``version``/``name``/``time``) when it is a type the engine ignores; never a 5xx. Afterwards the
engine keeps working: what the webhooks did queue is applied by a real worker without a single
failed job, and a good notification still goes all the way to the ledger.

On a real Valkey; in process through httpx's ASGI transport (a 5xx comes back as an answer, not
an exception), and over a real uvicorn server for the 10 MB bodies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

import workers.runtime
from inventory_engine.api import create_app
from inventory_engine.config import HttpSettings, Settings
from inventory_engine.domain.models import OrderState
from inventory_engine.http_server import serve_in_thread
from inventory_engine.ledger.catalog import CatalogEntry
from inventory_engine.service import Engine
from inventory_engine.simulators.sandbox import Sandbox, sandbox_channels
from tests.integration import burst

pytestmark = pytest.mark.integration

TOKEN = "bad-input-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}
OZON = "/webhooks/ozon"
YM = "/webhooks/yandex-market/notification"
OZON_SKU = 147_451_959
CAMPAIGN = 21_000_000
LONE_SURROGATE = "\\ud800"
"""A JSON escape that decodes to half a UTF-16 pair: valid JSON, but text no UTF-8 store holds."""


def ozon_push(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "message_type": "TYPE_NEW_POSTING",
        "posting_number": "0113-1",
        "products": [{"sku": OZON_SKU, "quantity": 2}],
        "in_process_at": "2026-11-22T10:00:00.000Z",
        "warehouse_id": 0,
        "seller_id": 15,
    }
    payload.update(changes)
    return payload


def ozon_state(**changes: Any) -> dict[str, Any]:
    payload = {
        "message_type": "TYPE_STATE_CHANGED",
        "posting_number": "0113-1",
        "new_state": "posting_delivered",
        "changed_state_date": "2026-11-22T11:00:00.000Z",
        "warehouse_id": 0,
    }
    payload.update(changes)
    return payload


def ym_created(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "notificationType": "ORDER_CREATED",
        "campaignId": CAMPAIGN,
        "orderId": 51_000_113,
        "createdAt": "2026-11-22T10:00:00Z",
        "items": [{"offerId": "MUG", "count": 2}],
    }
    payload.update(changes)
    return payload


def ym_status(**changes: Any) -> dict[str, Any]:
    payload = {
        "notificationType": "ORDER_STATUS_UPDATED",
        "campaignId": CAMPAIGN,
        "orderId": 51_000_113,
        "status": "PROCESSING",
        "substatus": "STARTED",
        "updatedAt": "2026-11-22T11:00:00Z",
    }
    payload.update(changes)
    return payload


def raw(payload: dict[str, Any], **escaped: str) -> bytes:
    """``payload`` as JSON with some string fields replaced by raw JSON text (escapes kept)."""
    text = json.dumps(payload, ensure_ascii=False)
    for key, value in escaped.items():
        text = text.replace(json.dumps(payload[key], ensure_ascii=False), f'"{value}"', 1)
    return text.encode("utf-8")


OZON_CASES = {
    # unicode that is fine: a Cyrillic posting number, states and times nobody knows
    "cyrillic-posting": (ozon_push(posting_number="Заказ-0113"), {200}),
    "emoji-state": (ozon_state(new_state="🚚"), {200}),
    "rtl-and-zero-width-state": (ozon_state(new_state="\u202eposting\u200b_delivered"), {200}),
    "combining-marks": (ozon_push(posting_number="0113-1\u0301\u0301"), {200}),
    # unicode that no identifier may hold: refused
    "posting-rtl-override": (ozon_push(posting_number="0113\u202e-1"), {400}),
    "posting-nul": (ozon_push(posting_number="0113\x00-1"), {400}),
    "posting-only-spaces": (ozon_push(posting_number="\u3000\u00a0"), {400}),
    # types the engine ignores
    "unknown-type": ({"message_type": "TYPE_FROM_THE_FUTURE", "posting_number": "1"}, {200}),
    "unknown-state": (ozon_state(new_state="posting_teleported"), {200}),
    "chat-message": ({"message_type": "TYPE_NEW_MESSAGE", "chat_id": "x", "data": ["ъ"]}, {200}),
    # numbers and types in fields the other tests leave alone
    "seller-id-40-digits": (ozon_push(seller_id=10**40), {200, 400}),
    "warehouse-40-digits": (ozon_push(warehouse_id=10**40), {400}),
    "warehouse-float": (ozon_push(warehouse_id=1.5), {400}),
    "warehouse-text": (ozon_push(warehouse_id="22142605386000"), {400}),
    "sku-negative": (ozon_push(products=[{"sku": -1, "quantity": 1}]), {400}),
    "sku-zero": (ozon_push(products=[{"sku": 0, "quantity": 1}]), {400}),
    "sku-float": (ozon_push(products=[{"sku": 1.0, "quantity": 1}]), {400}),
    "quantity-negative-huge": (ozon_push(products=[{"sku": 1, "quantity": -(10**30)}]), {400}),
    "products-null": (ozon_push(products=None), {400}),
    "products-nested-deep": (ozon_push(products=[[[[[{"sku": 1, "quantity": 1}]]]]]), {400}),
    "state-not-text": (ozon_state(new_state=["posting_delivered"]), {400}),
    "posting-number-object": (ozon_push(posting_number={"id": 1}), {400}),
    "type-null": (ozon_push(message_type=None), {400}),
}
OZON_RAW_CASES = {
    "bom-then-ping": (b'\xef\xbb\xbf{"message_type": "TYPE_PING"}', {200, 400}),
    # Python's decoder reads UTF-16/32 JSON too (RFC 8259 asks for UTF-8): harmless either way.
    "utf16-body": ('{"message_type": "TYPE_PING"}'.encode("utf-16"), {200, 400}),
    "latin1-state": (
        json.dumps(ozon_state()).replace("posting_delivered", "d\xe9livr\xe9").encode("latin-1"),
        {400},
    ),
    "duplicate-keys": (b'{"message_type": "TYPE_PING", "message_type": "TYPE_NEW_POSTING"}', {400}),
    "trailing-garbage": (b'{"message_type": "TYPE_PING"} {"x": 1}', {400}),
    "number-1e999999": (
        json.dumps(ozon_push()).replace('"quantity": 2', '"quantity": 1e999999').encode(),
        {400},
    ),
    "posting-lone-surrogate": (raw(ozon_push(), posting_number=LONE_SURROGATE), {400}),
    # An unknown type, whatever its text: ignored (or refused).
    "type-lone-surrogate": (raw({"message_type": "x"}, message_type=LONE_SURROGATE), {200, 400}),
}
OZON_SURROGATE_CASES = {
    "state-lone-surrogate": raw(ozon_state(), new_state=LONE_SURROGATE),
    "changed-date-lone-surrogate": raw(ozon_state(), changed_state_date=LONE_SURROGATE),
}

YM_CASES = {
    "cyrillic-offer": (ym_created(items=[{"offerId": "Кружка-синяя", "count": 1}]), {200}),
    "emoji-offer": (ym_created(items=[{"offerId": "☕ mug", "count": 1}]), {200}),
    "offer-rtl-override": (ym_created(items=[{"offerId": "MUG\u202e", "count": 1}]), {400}),
    "offer-nul": (ym_created(items=[{"offerId": "MUG\x00", "count": 1}]), {400}),
    "unknown-type": ({"notificationType": "ORDER_TELEPORTED", "orderId": 1}, {200}),
    "unknown-status": (ym_status(status="HYPERSPACE", substatus="🚀"), {200}),
    "order-id-negative": (ym_created(orderId=-5), {400}),
    "order-id-float": (ym_created(orderId=5.5), {400}),
    "order-id-bool": (ym_created(orderId=True), {400}),
    "campaign-40-digits": (ym_created(campaignId=10**40), {200, 400}),
    "campaign-text": (ym_created(campaignId="21000000"), {200, 400}),
    "count-negative": (ym_created(items=[{"offerId": "MUG", "count": -3}]), {400}),
    "count-negative-huge": (ym_created(items=[{"offerId": "MUG", "count": -(10**30)}]), {400}),
    "count-float": (ym_created(items=[{"offerId": "MUG", "count": 1.5}]), {400}),
    "items-object": (ym_created(items={"offerId": "MUG", "count": 1}), {400}),
    "items-null": (ym_created(items=None), {400}),
    "offer-number": (ym_created(items=[{"offerId": 12345, "count": 1}]), {400}),
    "type-number": (ym_created(notificationType=7), {400}),
    "status-object": (ym_status(status={"v": "DELIVERY"}), {400}),
}
YM_RAW_CASES = {
    "utf16-body": ('{"notificationType": "PING"}'.encode("utf-16"), {200, 400}),
    "duplicate-keys": (b'{"notificationType": "PING", "notificationType": "ORDER_CREATED"}', {400}),
    "trailing-garbage": (b'{"notificationType": "PING"}]', {400}),
    "offer-lone-surrogate": (
        json.dumps(ym_created()).replace('"MUG"', f'"{LONE_SURROGATE}"').encode(),
        {400},
    ),
}
YM_RAW_CASES["type-lone-surrogate"] = (
    raw({"notificationType": "x"}, notificationType=LONE_SURROGATE),
    {200, 400},
)
YM_SURROGATE_CASES = {
    "status-lone-surrogate": raw(ym_status(), status=LONE_SURROGATE),
    "substatus-lone-surrogate": raw(ym_status(status="CANCELLED"), substatus=LONE_SURROGATE),
}


# -- harness ------------------------------------------------------------------------------------


def engine_settings(sandbox: Sandbox) -> Settings:
    channels = sandbox_channels(sandbox)
    extra: dict[str, Any] = {}
    if "webhooks" in Settings.model_fields:
        # In-process calls come from "testclient", not an address of either marketplace.
        extra["webhooks"] = {"enforce_allowlist": False}
    return Settings(http=HttpSettings(api_token=SecretStr(TOKEN)), channels=channels, **extra)


@pytest.fixture
def engine(real_client, sandbox, monkeypatch) -> Iterator[Engine]:
    app = Engine(engine_settings(sandbox), real_client)
    # The engine the jobs run with.
    monkeypatch.setitem(workers.runtime._engines, app.settings.account, app)
    app.catalog.import_entries(
        [CatalogEntry(sku="MUG", ozon_offer_id="MUG", ozon_sku=OZON_SKU, ym_offer_id="MUG")]
    )
    app.ledger.set_on_hand("MUG", 100)
    yield app
    app.close()


class Api:
    """The engine's app in process; a 5xx comes back as an answer."""

    def __init__(self, engine: Engine) -> None:
        self.app = create_app(engine)

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return await client.post(path, content=body, headers=headers or JSON)

        return anyio.run(go)


@pytest.fixture
def api(engine: Engine) -> Api:
    return Api(engine)


def assert_ozon_answer(answer: httpx.Response, allowed: set[int], case: str) -> None:
    assert answer.status_code in allowed, f"{case}: {answer.status_code} {answer.text[:300]}"
    body = answer.json()
    if answer.status_code == 200:
        assert body == {"result": True} or set(body) == {"version", "name", "time"}, case
        return
    error = body["error"]
    assert set(body) == {"error"}, case
    assert error["code"] == "ERROR_PARAMETER_VALUE_MISSED", case
    assert isinstance(error["message"], str), case
    assert error["message"].strip(), case
    assert error["details"] is None, case


def assert_ym_answer(answer: httpx.Response, allowed: set[int], case: str) -> None:
    assert answer.status_code in allowed, f"{case}: {answer.status_code} {answer.text[:300]}"
    body = answer.json()
    if answer.status_code == 200:
        assert set(body) == {"version", "name", "time"}, case
        return
    assert set(body) == {"error"}, case
    assert body["error"]["type"] == "WRONG_EVENT_FORMAT", case
    assert isinstance(body["error"]["message"], str), case
    assert body["error"]["message"].strip(), case


def run_workers(engine: Engine) -> None:
    burst.run_workers(engine, queues=[engine.events])


def assert_no_failed_jobs(engine: Engine) -> None:
    """No job failed, finally or for now (a failed event job waits for its retry)."""
    assert engine.events.failed_job_registry.count == 0
    assert engine.events.scheduled_job_registry.count == 0
    assert engine.events.count == 0


def assert_engine_keeps_working(engine: Engine, api: Api) -> None:
    """What was queued applies without a failed job; then a good push goes all the way."""
    run_workers(engine)
    assert_no_failed_jobs(engine)
    good = ozon_push(posting_number="after-the-storm", products=[{"sku": OZON_SKU, "quantity": 1}])
    answer = api.post(OZON, json.dumps(good).encode())
    assert answer.json() == {"result": True}
    run_workers(engine)
    order = engine.reader.order("ozon", "after-the-storm")
    assert order is not None
    assert order.state is OrderState.RESERVED
    assert_no_failed_jobs(engine)


# -- the tables ---------------------------------------------------------------------------------


def test_ozon_unicode_numbers_and_types(engine: Engine, api: Api) -> None:
    for case, (payload, allowed) in OZON_CASES.items():
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        assert_ozon_answer(api.post(OZON, body), allowed, case)
    for case, (body, allowed) in OZON_RAW_CASES.items():
        assert_ozon_answer(api.post(OZON, body), allowed, case)
    assert_engine_keeps_working(engine, api)


def test_ym_unicode_numbers_and_types(engine: Engine, api: Api) -> None:
    for case, (payload, allowed) in YM_CASES.items():
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        assert_ym_answer(api.post(YM, body), allowed, case)
    for case, (body, allowed) in YM_RAW_CASES.items():
        assert_ym_answer(api.post(YM, body), allowed, case)
    assert_engine_keeps_working(engine, api)


def test_ozon_text_no_store_can_hold_is_refused(engine: Engine, api: Api) -> None:
    for case, body in OZON_SURROGATE_CASES.items():
        assert_ozon_answer(api.post(OZON, body), {400}, case)
    assert_engine_keeps_working(engine, api)


def test_ym_text_no_store_can_hold_is_refused(engine: Engine, api: Api) -> None:
    for case, body in YM_SURROGATE_CASES.items():
        assert_ym_answer(api.post(YM, body), {400}, case)
    assert_engine_keeps_working(engine, api)


# -- generated mutations ------------------------------------------------------------------------

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.text(alphabet=st.characters(categories=["Cf", "Cc", "Zs", "Mn", "So"]), max_size=10),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document a value sits (the document itself included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths_of(item, (*prefix, index))
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(document))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copy


@st.composite
def mutations(draw: st.DrawFn, documents: list[dict[str, Any]]) -> bytes:
    """A good payload with one to three places replaced by arbitrary JSON, or a field removed."""
    document: Any = draw(st.sampled_from(documents))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(paths_of(document)))
        if path and draw(st.booleans()) and isinstance(document, dict) and len(path) == 1:
            document = {k: v for k, v in document.items() if k != path[0]}
        else:
            document = replaced(document, path, draw(JSON_VALUES))
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
OZON_DOCUMENTS = [
    ozon_push(),
    ozon_state(),
    ozon_state(
        message_type="TYPE_POSTING_CANCELLED",
        new_state="posting_canceled",
        old_state="posting_transferring_to_delivery",
        products=[{"sku": OZON_SKU, "quantity": 1}],
    ),
    {"message_type": "TYPE_PING", "time": "2026-11-22T10:00:00Z"},
]
YM_DOCUMENTS = [
    ym_created(),
    ym_status(),
    ym_status(
        notificationType="ORDER_CANCELLED",
        status="CANCELLED",
        substatus="USER_CHANGED_MIND",
        items=[{"offerId": "MUG", "count": 2}],
    ),
    {"notificationType": "PING", "time": "2026-11-22T10:00:00Z"},
]


def test_mutated_ozon_pushes_never_get_a_5xx(engine: Engine, api: Api) -> None:
    @FUZZ
    @given(body=mutations(OZON_DOCUMENTS))
    def check(body: bytes) -> None:
        assert_ozon_answer(api.post(OZON, body), {200, 400}, body.decode()[:200])

    check()
    assert_engine_keeps_working(engine, api)


def test_mutated_ym_notifications_never_get_a_5xx(engine: Engine, api: Api) -> None:
    @FUZZ
    @given(body=mutations(YM_DOCUMENTS))
    def check(body: bytes) -> None:
        assert_ym_answer(api.post(YM, body), {200, 400}, body.decode()[:200])

    check()
    assert_engine_keeps_working(engine, api)


# -- 10 MB of valid JSON ------------------------------------------------------------------------


@pytest.fixture
def served(engine: Engine) -> Iterator[str]:
    server = serve_in_thread(create_app(engine))  # type: ignore[arg-type]
    yield server.url
    server.stop()


TEN_MB = 10 * 1024 * 1024
BIG = [
    (OZON, ozon_push(posting_number="x" * TEN_MB), assert_ozon_answer),
    (OZON, ozon_push(products=[{"sku": OZON_SKU, "quantity": 1}] * 400_000), assert_ozon_answer),
    (YM, ym_created(items=[{"offerId": "MUG", "count": 1}] * 400_000), assert_ym_answer),
    (YM, ym_status(status="Ж" * (TEN_MB // 2)), assert_ym_answer),
]


@pytest.mark.parametrize(
    ("path", "payload", "check"),
    BIG,
    ids=["ozon-long-text", "ozon-many-products", "ym-many-items", "ym-cyrillic-text"],
)
def test_ten_megabytes_of_valid_json_is_413_in_the_marketplaces_shape(
    engine: Engine, served: str, path: str, payload: dict[str, Any], check: Any
) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    assert len(body) >= TEN_MB
    with httpx.Client(base_url=served, timeout=30) as client:
        answer = client.post(path, content=body, headers=JSON)
        check(answer, {413}, path)
        # And the server answers the next caller at once.
        ping = client.post(OZON, json={"message_type": "TYPE_PING"})
        assert ping.status_code == 200
        assert client.get("/v1/stock/MUG", headers=AUTH).json()["on_hand"] == 100
    assert engine.events.count == 0
