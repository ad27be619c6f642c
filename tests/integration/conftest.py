"""A real ``inventory-engine serve`` process for integration tests: Valkey from the session
fixture, simulators on loopback, configured channels, RQ worker processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from inventory_engine.ledger.catalog import CatalogEntry, CatalogStore
from inventory_engine.simulators import ozon, wildberries, yandex_market
from inventory_engine.simulators.sandbox import Sandbox, start_sandbox

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The three marketplace simulators on free loopback ports, for one test."""
    running = start_sandbox(ports={"ozon": 0, "wb": 0, "ym": 0})
    try:
        yield running
    finally:
        running.stop()


def wait_for(check: Callable[[], Any], *, seconds: float = 30.0) -> Any:
    """Poll ``check`` until it returns a truthy value (bounded; no timing is asserted)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    return None


@dataclass
class EngineProcess:
    base: str
    sandbox: Sandbox
    process: subprocess.Popen[bytes]
    config: Path
    log: Path


def engine_config(
    server: Any, sandbox: Sandbox, port: int, *, workers: int, extra: str = ""
) -> str:
    return f"""
[redis]
url = "redis://{server.host}:{server.port}/0"
[http]
host = "127.0.0.1"
port = {port}
api_token = "{TOKEN}"
[workers]
count = {workers}
{extra}
[[channels]]
name = "ozon"
kind = "ozon"
base_url = "{sandbox.url("ozon")}"
client_id = "{ozon.SANDBOX_CLIENT_ID}"
api_key = "{ozon.SANDBOX_API_KEY}"
warehouse_id = {ozon.SANDBOX_WAREHOUSE_ID}
[[channels]]
name = "wb"
kind = "wildberries"
base_url = "{sandbox.url("wb")}"
token = "{wildberries.SANDBOX_TOKEN}"
warehouse_id = {wildberries.SANDBOX_WAREHOUSE_ID}
[[channels]]
name = "ym"
kind = "yandex_market"
base_url = "{sandbox.url("ym")}"
api_key = "{yandex_market.SANDBOX_API_KEY}"
campaign_id = {yandex_market.SANDBOX_CAMPAIGN_ID}
business_id = {yandex_market.SANDBOX_BUSINESS_ID}
"""


@pytest.fixture
def start_engine(
    tmp_path: Path, real_server: Any, real_client: Any
) -> Iterator[Callable[..., EngineProcess]]:
    """Start ``serve`` (``workers`` processes, optional extra TOML) with the MUG item listed on
    every channel; stopped with SIGTERM at the end."""
    started: list[EngineProcess] = []
    logs: list[Any] = []

    def start(*, workers: int = 2, extra: str = "") -> EngineProcess:
        sandbox = start_sandbox(ports={"ozon": 0, "wb": 0, "ym": 0})
        port = free_port()
        config = tmp_path / "config.toml"
        config.write_text(engine_config(real_server, sandbox, port, workers=workers, extra=extra))
        CatalogStore(real_client, channels=["ozon", "wb", "ym"]).import_entries(
            [
                CatalogEntry(
                    sku="MUG",
                    ozon_offer_id="MUG",
                    ozon_sku=555,
                    wb_chrt_id=777,
                    ym_offer_id="MUG",
                )
            ]
        )
        log_path = tmp_path / "serve.log"
        log_file = log_path.open("w")
        logs.append(log_file)
        process = subprocess.Popen(
            [sys.executable, "-m", "inventory_engine", "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        engine = EngineProcess(f"http://127.0.0.1:{port}", sandbox, process, config, log_path)
        started.append(engine)
        ready = wait_for(lambda: httpx.get(f"{engine.base}/readyz").status_code == 200)
        assert ready, "serve did not become ready:\n" + log_path.read_text()[-3000:]
        return engine

    try:
        yield start
    finally:
        for engine in started:
            if engine.process.poll() is None:
                engine.process.send_signal(signal.SIGTERM)
                try:
                    engine.process.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    engine.process.kill()
            engine.sandbox.stop()
        for log_file in logs:
            log_file.close()


def shown(sandbox: Sandbox, name: str) -> dict[str, int]:
    """What a simulator shows buyers now: item id -> value."""
    state = httpx.get(f"{sandbox.url(name)}/_sim/state").json()
    return {row["item_id"]: row["value"] for row in state["stock"]}
