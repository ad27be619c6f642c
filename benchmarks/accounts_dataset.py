"""The accounts benchmark's data: 100 accounts × 1,000 SKUs imported into a setup (with the
memory it took, :func:`load_accounts`), and checked against the events recorded once the runs
are over (:func:`check_accounts`)."""

from __future__ import annotations

import time

import redis

from benchmarks.accounts_figures import ACCOUNTS, SKUS, STOCK, Result, account_name, sku_name
from benchmarks.accounts_servers import NodeClients
from benchmarks.ledger_figures import CHANNELS
from inventory_engine.ledger import RedisLedger
from inventory_engine.ledger.keys import AccountKeys


def load_accounts(
    client: redis.Redis, nodes: NodeClients, result: Result
) -> dict[str, RedisLedger]:
    ledgers = {
        account_name(i): RedisLedger(client, account=account_name(i), channels=CHANNELS)
        for i in range(ACCOUNTS)
    }
    nodes.load_library()
    result.memory_before = nodes.used_memory()
    rows = [(sku_name(i), STOCK) for i in range(SKUS)]
    t0 = time.perf_counter()
    for ledger in ledgers.values():
        if ledger.import_on_hand(rows) != SKUS:
            raise AssertionError(f"{ledger.keys.account}: import_on_hand did not set every SKU")
    result.import_s = time.perf_counter() - t0
    result.memory_loaded = nodes.used_memory()
    result.keys_loaded = nodes.dbsize()
    return ledgers


def check_accounts(client: redis.Redis, result: Result) -> None:
    """Per account: sum of reserved == events recorded; no oversold or unknown lines; on_hand
    as imported."""
    wrong: list[str] = []
    for i in range(ACCOUNTS):
        account = account_name(i)
        keys = AccountKeys(account)
        reserved = sum(int(v) for v in client.hvals(keys.reserved))
        on_hand = [int(v) for v in client.hvals(keys.on_hand)]
        counters = client.hgetall(keys.counters)
        expected = result.recorded[account]
        if reserved != expected or counters or on_hand != [STOCK] * SKUS:
            wrong.append(f"{account}: reserved {reserved} vs {expected} recorded, {counters}")
    total = sum(result.recorded.values())
    result.check_ok = not wrong
    if wrong:
        result.check = f"MISMATCH on {len(wrong)} accounts: " + "; ".join(wrong[:3])
    else:
        result.check = (
            f"OK: for each of the {ACCOUNTS} accounts, sum of reserved = order events recorded "
            f"for it (from {min(result.recorded.values()):,} to "
            f"{max(result.recorded.values()):,}; {total:,} in all), no oversold or unknown-SKU "
            f"counters, on_hand as imported"
        )
