"""The embedded server: a real Valkey, data kept across restarts, shared between commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
import structlog
from structlog.testing import capture_logs

from inventory_engine import embedded
from inventory_engine.config import EmbeddedSettings
from inventory_engine.embedded import (
    EmbeddedServer,
    allocator_in_use,
    ensure_embedded_server,
    find_mimalloc,
)
from inventory_engine.ledger import LedgerReader, RedisLedger
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def test_embedded_server_keeps_stock_across_a_restart(tmp_path):
    settings = EmbeddedSettings(state_dir=tmp_path)
    server = ensure_embedded_server(settings)
    try:
        assert server.owned
        RedisLedger(redis.Redis.from_url(server.url)).set_on_hand("A", 42)
    finally:
        server.stop()
    assert not (tmp_path / "server.json").exists()

    again = ensure_embedded_server(settings)
    try:
        assert again.owned
        assert LedgerReader(redis.Redis.from_url(again.url)).stock("A").on_hand == 42
        assert (tmp_path / "appendonlydir").is_dir()
    finally:
        again.stop()


def test_embedded_server_is_shared_by_a_second_command(tmp_path):
    settings = EmbeddedSettings(state_dir=tmp_path)
    first = ensure_embedded_server(settings)
    try:
        second = ensure_embedded_server(settings)
        assert second.url == first.url
        assert not second.owned
        second.stop()  # not the owner: must leave the server running
        assert redis.Redis.from_url(first.url).ping()
    finally:
        first.stop()


def test_embedded_server_ignores_a_stale_server_file(tmp_path):
    (tmp_path / "server.json").write_text(json.dumps({"url": "redis://127.0.0.1:1/0", "pid": 1}))
    server = ensure_embedded_server(EmbeddedSettings(state_dir=tmp_path))
    try:
        assert server.owned
        assert server.url != "redis://127.0.0.1:1/0"
    finally:
        server.stop()


def test_embedded_server_listens_on_loopback_with_aof_always(tmp_path):
    server = ensure_embedded_server(EmbeddedSettings(state_dir=tmp_path))
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert server.url.startswith("redis://127.0.0.1:")
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("appendfsync")["appendfsync"] == "always"
        assert client.config_get("bind")["bind"] == "127.0.0.1"
    finally:
        server.stop()


def test_embedded_server_runs_on_mimalloc_and_forks_for_an_aof_rewrite(tmp_path):
    """mimalloc is in the running server's memory map (not only in its environment), and the
    server still forks for an AOF rewrite and keeps its data across a restart."""
    settings = EmbeddedSettings(state_dir=tmp_path)
    server = ensure_embedded_server(settings)
    try:
        client = redis.Redis.from_url(server.url)
        pid = int(client.info("server")["process_id"])
        assert allocator_in_use(pid) == "mimalloc"
        assert str(find_mimalloc()) in Path(f"/proc/{pid}/maps").read_text()
        ledger = RedisLedger(client)
        ledger.import_on_hand([(f"SKU-{i}", i) for i in range(2_000)])
        client.bgrewriteaof()
        assert wait_for(lambda: not int(client.info("persistence")["aof_rewrite_in_progress"]))
        assert client.info("persistence")["aof_last_bgrewrite_status"] == "ok"
    finally:
        server.stop()
    again = ensure_embedded_server(settings)
    try:
        assert LedgerReader(redis.Redis.from_url(again.url)).stock("SKU-1999").on_hand == 1_999
    finally:
        again.stop()


def test_embedded_server_on_the_system_allocator_when_asked(tmp_path):
    server = ensure_embedded_server(EmbeddedSettings(state_dir=tmp_path, allocator="system"))
    try:
        pid = int(redis.Redis.from_url(server.url).info("server")["process_id"])
        assert allocator_in_use(pid) == "built-in"
    finally:
        server.stop()


def _start_capturing_logs(settings: EmbeddedSettings) -> tuple[EmbeddedServer, list[Any]]:
    saved = structlog.get_config()
    structlog.reset_defaults()  # an in-process CLI test may have set WARNING
    try:
        with capture_logs() as logs:
            server = ensure_embedded_server(settings)
    finally:
        structlog.configure(**saved)
    return server, logs


def test_a_mimalloc_that_cannot_load_leaves_a_working_server_and_says_why(tmp_path, monkeypatch):
    """The dynamic loader skips a library it cannot load (a machine without one of mimalloc's
    own dependencies looks the same to it): the server starts on its own allocator, and the
    warning carries the loader's own words, which reach neither the server's log nor ours
    otherwise."""
    broken = tmp_path / "libmimalloc.so"
    broken.write_bytes(b"not a shared library")
    monkeypatch.setattr(embedded, "find_mimalloc", lambda: str(broken))
    server, logs = _start_capturing_logs(EmbeddedSettings(state_dir=tmp_path / "state"))
    try:
        assert redis.Redis.from_url(server.url).ping()
        started = next(e for e in logs if e["event"] == "embedded_server_started")
        assert started["allocator"] == "built-in"
        warning = next(e for e in logs if e["event"] == "embedded_server_without_mimalloc")
        assert "could not be preloaded" in warning["reason"]
        assert str(broken) in warning["reason"]  # ld.so names the object it ignored
    finally:
        server.stop()


def test_an_operators_own_preload_is_left_alone_and_named(tmp_path, monkeypatch):
    monkeypatch.setenv("LD_PRELOAD", str(tmp_path / "missing" / "libsomething.so"))
    server, logs = _start_capturing_logs(EmbeddedSettings(state_dir=tmp_path / "state"))
    try:
        assert redis.Redis.from_url(server.url).ping()
        warning = next(e for e in logs if e["event"] == "embedded_server_without_mimalloc")
        assert "LD_PRELOAD is set by the environment" in warning["reason"]
    finally:
        server.stop()
