"""The queues' Redis behind Sentinel (issue 15 §2: "a plain Redis (or Sentinel)"): ``[redis]
queue_url = "redis+sentinel://host:port/service/db"``. A real Valkey primary watched by a real
Valkey sentinel (the same binary in sentinel mode), ``serve`` with its RQ workers finding the
queues' primary through the sentinel, and a stock change reaching the marketplace simulators.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
import redis

from inventory_engine.embedded import find_server_binary
from inventory_engine.errors import ConfigError
from inventory_engine.runtime import connect
from inventory_engine.simulators.sandbox import Sandbox
from tests.cluster_helpers import ValkeyProcess
from tests.integration import crash_helpers as h
from tests.integration.conftest import AUTH, shown

pytestmark = pytest.mark.integration


class Sentinel:
    """One sentinel process watching ``service`` at a primary's port."""

    def __init__(self, directory: Path, primary_port: int, service: str = "queues") -> None:
        self.directory = directory
        self.port = h.free_port()
        self.service = service
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "sentinel.conf"
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {service} 127.0.0.1 {primary_port} 1\n",
            encoding="utf-8",
        )
        with (directory / "sentinel.log").open("ab") as sink:
            self.process = subprocess.Popen(
                [find_server_binary(), str(config), "--sentinel", "--daemonize", "no"],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        probe = redis.Redis(port=self.port, socket_timeout=1)
        try:
            assert h.wait_for(lambda: _knows_primary(probe, service), seconds=15)
        finally:
            probe.close()

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.service}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def _knows_primary(client: redis.Redis, service: str) -> bool:
    try:
        return client.sentinel_get_master_addr_by_name(service) is not None
    except redis.RedisError:
        return False


def test_sentinel_urls_name_their_sentinels_and_service() -> None:
    with pytest.raises(ConfigError, match="name the service"):
        connect("redis+sentinel://127.0.0.1:26379")
    with pytest.raises(ConfigError, match="host:port"):
        connect("redis+sentinel://:secret@127.0.0.1/queues")
    with pytest.raises(ConfigError) as error:
        connect("redis+sentinel://:secret@127.0.0.1:1,nowhere/queues")
    assert "secret" not in str(error.value)


@pytest.mark.slow
def test_the_queues_behind_sentinel_carry_serves_work(
    tmp_path: Path, real_client: redis.Redis, real_server: object, sandbox: Sandbox
) -> None:
    primary = ValkeyProcess(tmp_path / "queues", h.free_port())
    primary.start()
    sentinel = Sentinel(tmp_path / "sentinel", primary.port)
    queues = redis.Redis.from_url(primary.url)
    serve = None
    http = httpx.Client(timeout=30)
    try:
        h.catalog(real_client)
        ledger_url = f"redis://{real_server.host}:{real_server.port}/0"  # type: ignore[attr-defined]
        serve = h.start_serve(tmp_path, ledger_url, sandbox, queue_url=sentinel.url)
        answer = http.put(f"{serve.base}/v1/stock/MUG", json={"on_hand": 7}, headers=AUTH)
        assert answer.status_code == 200, answer.text
        h.wait_until(
            lambda: shown(sandbox, "wb") == {str(h.ITEMS["MUG"][1]): 7},
            seconds=60,
            what="the push, queued through the sentinel's primary",
            log=serve,
        )
        # The workers and the push jobs lived on the primary the sentinel named, not the ledger's.
        assert any(key.startswith(b"rq:") for key in queues.keys("rq:*"))
        assert not real_client.keys("rq:*")
    finally:
        http.close()
        if serve is not None:
            h.stop_serve(serve)
        queues.close()
        sentinel.stop()
        primary.stop()
