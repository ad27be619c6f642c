"""The ledger's operations run as one Redis Functions library (issue 15 §3), loaded once and
again when the server lost it, and as scripts where the server has no Functions.

Real Valkey. That both ways give the same results is judged by the ledger tests and the ledger
state machine, which run on each (the ``real`` and ``real-scripts`` variants of ``redis_client``).
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.ledger import LedgerReader, RedisLedger
from inventory_engine.ledger.events import OrderEvent
from inventory_engine.ledger.scripts import function_name, library_name

pytestmark = pytest.mark.integration


def calls(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats").get(f"cmdstat_{command}")
    return int(stats["calls"]) if stats else 0


def libraries(client: redis.Redis) -> set[str]:
    # RESP2: each library is a flat list of field, value, ...
    return {
        dict(zip(lib[::2], lib[1::2], strict=True))[b"library_name"].decode()
        for lib in client.function_list()
    }


def test_operations_run_as_functions_of_one_library(real_client):
    ledger = RedisLedger(real_client, channels=("ozon",))
    ledger.set_on_hand("A", 5)
    real_client.config_resetstat()
    ledger.record_order("ozon", "1", [OrderLine(sku="A", quantity=2)], OrderAction.RESERVE)
    assert LedgerReader(real_client).stock("A").available == 3
    assert library_name() in libraries(real_client)
    assert calls(real_client, "fcall") == 1
    assert calls(real_client, "evalsha") == 0
    assert function_name("apply_order_event").startswith("inv_")


def test_a_server_that_lost_the_library_gets_it_again(real_client):
    """FUNCTION FLUSH (or a restart without persistence) between two calls: the next call, one
    by one or pipelined, loads the library again and runs; nothing is applied twice."""
    ledger = RedisLedger(real_client, channels=("ozon",))
    ledger.set_on_hand("A", 10)
    real_client.function_flush()
    outcome = ledger.record_order("ozon", "1", [OrderLine(sku="A", quantity=1)], OrderAction.HOLD)
    assert outcome.applied
    real_client.function_flush()
    events = [
        OrderEvent("ozon", str(i), OrderAction.RESERVE, (OrderLine(sku="A", quantity=1),))
        for i in range(2, 5)
    ]
    outcomes = ledger.record_orders(events)
    assert [o.applied for o in outcomes] == [True, True, True]
    real_client.function_flush()
    each = ledger.record_orders_each(events)  # replays: no-ops, once each
    assert [getattr(o, "applied", None) for o in each] == [False, False, False]
    assert LedgerReader(real_client).stock("A").reserved == 4


class NoFunctions(redis.Redis):
    """A server (or proxy) that does not know FUNCTION/FCALL."""

    def function_load(self, code: str, replace: bool | None = False) -> Any:
        raise redis.ResponseError("unknown command 'FUNCTION', with args beginning with: 'LOAD'")


def test_without_functions_the_operations_run_as_scripts(real_server):
    client = NoFunctions(host=real_server.host, port=real_server.port)
    try:
        client.flushall()
        client.function_flush()
        ledger = RedisLedger(client, channels=("ozon",))
        ledger.set_on_hand("A", 5)
        client.config_resetstat()
        ledger.record_orders(
            [OrderEvent("ozon", "1", OrderAction.RESERVE, (OrderLine(sku="A", quantity=2),))]
        )
        assert LedgerReader(client).stock("A").available == 3
        assert calls(client, "fcall") == 0
        assert calls(client, "evalsha") == 1
        assert libraries(client) == set()
    finally:
        client.close()


def test_a_cluster_shard_that_lost_the_library_gets_it_again(real_cluster):
    """One primary restarted without the library while the others keep it: the next call of
    an account on that shard loads it there too (a load that stopped at the first primary
    saying "already exists" would never reach the one that lost it)."""
    client = real_cluster.client()
    try:
        client.flushall()
        accounts = [f"acct-{i}" for i in range(12)]
        ledgers = {name: RedisLedger(client, account=name, channels=("ozon",)) for name in accounts}
        for ledger in ledgers.values():
            ledger.set_on_hand("A", 5)
        for node in real_cluster.nodes[1:]:  # every primary but the first loses it
            lost = redis.Redis(port=node.port)
            try:
                lost.function_flush()
            finally:
                lost.close()
        for name, ledger in ledgers.items():
            line = [OrderLine(sku="A", quantity=1)]
            assert ledger.record_order("ozon", "1", line, OrderAction.RESERVE).applied, name
            assert LedgerReader(client, account=name).stock("A").reserved == 1
    finally:
        client.close()
