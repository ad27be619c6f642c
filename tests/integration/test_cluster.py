"""The engine with its ledger on a Redis Cluster (issue 15 §2): ``serve`` configured with
``[redis] url = "redis+cluster://…"`` and ``queue_url`` (RQ's queues, the inbox and the job guards
on a plain Valkey), real RQ workers, the marketplace simulators, webhooks over HTTP; the shard
that holds the account's slot is killed (-9) and started again on its AOF (``appendfsync
always``, the shipped config) while acknowledged events wait: nothing acknowledged is lost, each
is applied once, and the channels end at the ledger's numbers.

The ledger suites themselves run on a cluster too (``redis_client``'s ``cluster`` variant).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import redis

from inventory_engine.config import load_settings
from inventory_engine.errors import ConfigError
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.simulators.sandbox import Sandbox
from tests.cluster_helpers import LocalCluster, ValkeyProcess
from tests.conftest import all_keys
from tests.integration import crash_helpers as h
from tests.integration.test_crashes import (
    SLOW_POSTING,
    STOCK,
    acknowledge_with_one_in_flight,
    assert_channels_converge,
    assert_every_acknowledged_event_applied_once,
    batch,
    set_stock,
    slow_posting_on_ozon,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_cluster_needs_a_plain_redis_for_the_queues() -> None:
    with pytest.raises(ConfigError, match="needs queue_url"):
        load_settings(redis={"url": "redis+cluster://127.0.0.1:7000"})
    with pytest.raises(ConfigError, match="needs queue_url"):
        load_settings(redis={"url": "redis://127.0.0.1:7000", "cluster": True})
    with pytest.raises(ConfigError, match="not a cluster"):
        load_settings(
            redis={
                "url": "redis+cluster://127.0.0.1:7000",
                "queue_url": "redis+cluster://127.0.0.1:7001",
            }
        )
    settings = load_settings(
        redis={"url": "redis+cluster://127.0.0.1:7000", "queue_url": "redis://127.0.0.1:6379"}
    )
    assert settings.redis.is_cluster


def test_a_shard_killed_and_restarted_loses_no_acknowledged_event(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    cluster = LocalCluster(tmp_path / "cluster")
    cluster.start()
    queue = ValkeyProcess(tmp_path / "queue", h.free_port())
    queue.start()
    ledger = cluster.client()
    queues = redis.Redis.from_url(queue.url)
    serve = None
    http = httpx.Client(timeout=30)
    try:
        h.catalog(ledger)
        serve = h.start_serve(tmp_path, cluster.url, sandbox, queue_url=queue.url)
        h.wait_until(lambda: h.polled(ledger, "ozon"), seconds=30, what="the first Ozon poll")
        slow_posting_on_ozon(sandbox)
        set_stock(http, serve.base, dict.fromkeys(h.ITEMS, STOCK))
        orders = batch(100)
        numbers = list(orders)
        # A worker is held inside one event (a slow Ozon read) while more are acknowledged:
        # events in flight and waiting in the inbox when the shard dies.
        acknowledged = acknowledge_with_one_in_flight(
            http, serve, sandbox, queues, {n: orders[n] for n in numbers[:60]}
        )
        assert len(acknowledged) == 61
        assert SLOW_POSTING not in h.applied_orders(ledger)

        # The account's keys share one slot: one shard holds all of its ledger.
        shard = cluster.node_of(AccountKeys().on_hand)
        shard.kill()
        # The webhook reads the ledger before it acknowledges: while the shard is down it
        # answers an error (the marketplace sends the event again), never a false 200.
        down = h.post_postings(http, serve.base, {n: orders[n] for n in numbers[60:64]})
        assert down == {}
        shard.start()
        cluster.wait_ok()
        h.set_faults(sandbox, "ozon")
        acknowledged.update(h.post_postings(http, serve.base, {n: orders[n] for n in numbers[64:]}))
        assert len(acknowledged) == 61 + 36

        assert_every_acknowledged_event_applied_once(
            ledger, queues, serve, acknowledged, settle_s=60
        )
        assert_channels_converge(ledger, sandbox, seconds=60, channels=("wb", "ym"))
        # Nothing of the ledger went to the queues' Redis, nor RQ's keys to the cluster.
        assert not queues.exists(AccountKeys().on_hand)
        assert not all_keys(ledger, "rq:*")
    finally:
        http.close()
        if serve is not None:
            h.stop_serve(serve)
        ledger.close()
        queues.close()
        queue.stop()
        cluster.stop()
