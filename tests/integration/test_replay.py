"""Issue §3, duplicates and reordering: a recorded stream of a few thousand marketplace events,
replayed three times and shuffled within each order's life, gives the same ledger as one clean
pass.

The stream (``tests/fixtures/replay/marketplace_events.json``) is what the intake hands the
workers: per event the channel, the order id, the marketplace's own status and the ledger action
the domain's status rules give it, and the order's lines in the marketplace's item ids (Ozon
``sku``, WB ``chrtId``, YM ``offerId``; a state change that carried none has the lines the worker
reads back). It covers Ozon postings (new → awaiting_deliver → delivering → delivered, cancelled
before or after shipping), Yandex Market orders (created → PROCESSING → DELIVERY/PICKUP →
DELIVERED, cancelled before shipping or never collected) and WB tasks (new → confirm → complete
→ sold, cancelled, refused at the pickup point), with bundles, multi-line orders, item ids the
catalog does not know and a SKU that is sold out (every order of it oversells).

Each event is mapped with the intake's own catalog mapping and recorded with the ledger's
pipelined ``record_orders`` (each event its own atomic script) on a real Valkey. Partial
cancels are not in the stream: no marketplace intake produces them (only ``RedisLedger.release``
with an event id does).

What must be the same after the clean pass and after the shuffled triple replay: on hand and
reserved of every SKU, each order's state, lines and unknown lines, the oversold records and the
unknown-SKU records with their counters. Two things are order-dependent by design and kept out of
the stream rather than compared away: a cancel seen before its order leaves a tombstone that
moves nothing (so it cannot oversell or report unknown lines: orders holding the sold-out SKU or
an unknown id never take the cancel-before-shipping path), and ample stock everywhere else keeps
any interleaving from overselling. The order's ``status`` field (the last marketplace status
*received*) follows arrival order and is not compared.

Regenerate the fixture (deterministic) with::

    python -c "from tests.integration.test_replay import write_fixture; write_fixture()"
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from inventory_engine.channels.base import ChannelLine
from inventory_engine.domain import status_rules
from inventory_engine.domain.models import OrderAction
from inventory_engine.ledger import LedgerReader, RedisLedger
from inventory_engine.ledger.catalog import CatalogEntry, CatalogStore
from inventory_engine.ledger.events import OrderEvent
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.service.mapping import to_order_lines
from tests.conftest import connect_real

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parent.parent / "fixtures" / "replay" / "marketplace_events.json"
SEED = 3
ORDERS = 750
REPLAYS = 3
SHUFFLE_SEEDS = (11, 12)
"""Each shuffled triple replay is checked twice, with different interleavings."""
CHANNELS = ("ozon", "wb", "ym")
ORDER_FIELD = {"ozon": "ozon_sku", "wb": "wb_chrt_id", "ym": "ym_offer_id"}
KEYS = AccountKeys()

# -- the catalog --------------------------------------------------------------------------------

PLAIN = ("MUG", "CUP", "PLATE", "BOWL", "SPOON", "FORK", "KNIFE", "TRAY", "JUG", "VASE")
BUNDLES = {"KIT-TEA": "MUG:2;SPOON:2", "KIT-DINNER": "PLATE:2;BOWL:2;FORK:2;KNIFE:2"}
SOLD_OUT = "LAMP"
"""On hand 0, never restocked: every order of it oversells by its quantity, in any order."""
UNKNOWN_IDS = {"ozon": "990001", "wb": "990002", "ym": "NOT-IN-CATALOG"}
"""Item ids the catalog does not know (the ledger parks such lines as unknown)."""


def catalog_entries() -> list[CatalogEntry]:
    skus = [*PLAIN, SOLD_OUT, *BUNDLES]
    return [
        CatalogEntry(
            sku=sku,
            ozon_offer_id=sku,
            ozon_sku=100_001 + index,
            wb_chrt_id=200_001 + index,
            ym_offer_id=f"ym-{sku}",
            bundle=BUNDLES.get(sku),
        )
        for index, sku in enumerate(skus)
    ]


def item_ids(channel: str) -> dict[str, str]:
    """Seller SKU -> the id the channel's orders name it by."""
    field = ORDER_FIELD[channel]
    return {e.sku: str(getattr(e, field)) for e in catalog_entries()}


# -- generating the stream ----------------------------------------------------------------------


def _ozon_life(rng: random.Random, shippable_only: bool) -> list[tuple[str, OrderAction]]:
    """(status text, action) of each push about one posting, in the order Ozon sends them."""
    new = (
        "TYPE_NEW_POSTING awaiting_packaging",
        status_rules.ozon_push_action("TYPE_NEW_POSTING", None),
    )

    def changed(state: str) -> tuple[str, OrderAction]:
        return f"TYPE_STATE_CHANGED {state}", status_rules.ozon_push_action(
            "TYPE_STATE_CHANGED", state
        )

    def cancelled(old_state: str) -> tuple[str, OrderAction]:
        action = status_rules.ozon_push_action(
            "TYPE_POSTING_CANCELLED", "posting_canceled", old_state=old_state
        )
        return f"TYPE_POSTING_CANCELLED from {old_state}", action

    prepared = changed("posting_transferring_to_delivery")
    roll = rng.random()
    if roll < 0.2 and not shippable_only:
        return [new, cancelled("posting_awaiting_registration")]
    if roll < 0.3:
        return [new, prepared, cancelled("posting_transferring_to_delivery")]
    if roll < 0.4:
        return [new, prepared, changed("posting_on_way_to_city")]  # still travelling
    return [new, prepared, changed("posting_on_way_to_city"), changed("posting_delivered")]


def _ym_life(rng: random.Random, shippable_only: bool) -> list[tuple[str, OrderAction]]:
    def update(status: str, substatus: str) -> tuple[str, OrderAction]:
        action = status_rules.yandex_market_notification_action(
            "ORDER_STATUS_UPDATED", status, substatus
        )
        return f"ORDER_STATUS_UPDATED {status}/{substatus}", action

    def cancel(substatus: str) -> tuple[str, OrderAction]:
        action = status_rules.yandex_market_notification_action("ORDER_CANCELLED", None, substatus)
        return f"ORDER_CANCELLED {substatus}", action

    created = ("ORDER_CREATED", status_rules.yandex_market_notification_action("ORDER_CREATED"))
    started = update("PROCESSING", "STARTED")
    ready = update("PROCESSING", "READY_TO_SHIP")
    roll = rng.random()
    if roll < 0.2 and not shippable_only:
        return [created, started, cancel("USER_CHANGED_MIND")]
    if roll < 0.3:
        collected = update("PICKUP", "PICKUP_SERVICE_RECEIVED")
        return [created, started, ready, collected, cancel("PICKUP_EXPIRED")]  # never collected
    if roll < 0.4:
        return [created, started, ready, update("DELIVERY", "DELIVERY_SERVICE_RECEIVED")]
    shipped = update("DELIVERY", "DELIVERY_SERVICE_RECEIVED")
    return [created, started, ready, shipped, update("DELIVERED", "DELIVERY_SERVICE_DELIVERED")]


def _wb_life(rng: random.Random, shippable_only: bool) -> list[tuple[str, OrderAction]]:
    def task(supplier: str, wb: str) -> tuple[str, OrderAction]:
        return f"{supplier}/{wb}", status_rules.wildberries_action(supplier, wb)

    new, confirmed = task("new", "waiting"), task("confirm", "waiting")
    roll = rng.random()
    if roll < 0.2 and not shippable_only:
        return [new, confirmed, task("cancel", "canceled")]
    if roll < 0.3:
        return [new, confirmed, task("complete", "sorted"), task("complete", "canceled_by_client")]
    if roll < 0.4:
        return [new, confirmed, task("complete", "sorted")]
    return [new, confirmed, task("complete", "sorted"), task("complete", "sold")]


LIVES = {"ozon": _ozon_life, "wb": _wb_life, "ym": _ym_life}
ORDER_IDS = {
    "ozon": lambda n: f"{40_000_000 + n:08d}-{n % 9000 + 1000:04d}-1",
    "wb": lambda n: str(5_000_000_000 + n),
    "ym": lambda n: str(51_000_000 + n),
}


def generate_stream(seed: int = SEED, orders: int = ORDERS) -> dict[str, Any]:
    """Orders on the three marketplaces, their events interleaved as they would arrive (each
    order's events in their own order, orders overlapping in time)."""
    rng = random.Random(seed)
    timeline: list[tuple[float, int, dict[str, Any]]] = []
    demand: dict[str, int] = defaultdict(int)
    recipes = {
        b: [(p.split(":")[0], int(p.split(":")[1])) for p in r.split(";")]
        for b, r in BUNDLES.items()
    }
    for number in range(orders):
        channel = rng.choice(CHANNELS)
        ids = item_ids(channel)
        skus = rng.sample([*PLAIN, *BUNDLES], k=rng.choice((1, 1, 1, 2, 3)))
        lines = [[ids[sku], rng.choice((1, 1, 1, 2, 3))] for sku in skus]
        risky = False  # an order whose first event decides a counter: never cancelled unseen
        if rng.random() < 0.04:
            lines.append([ids[SOLD_OUT], rng.randint(1, 2)])
            risky = True
        if rng.random() < 0.03:
            lines.append([UNKNOWN_IDS[channel], 1])
            risky = True
        for sku, (_, quantity) in zip(skus, lines, strict=False):
            for part, per_unit in recipes.get(sku, [(sku, 1)]):
                demand[part] += quantity * per_unit
        order_id = ORDER_IDS[channel](number)
        at = rng.uniform(0, 1_000)
        life = LIVES[channel](rng, risky)
        if rng.random() < 0.1:  # placed shortly before the recording ended: still open
            life = [step for step in life if step[1] is OrderAction.RESERVE]
        for step, (status, action) in enumerate(life):
            at += rng.expovariate(1 / 20)
            event = {"ch": channel, "id": order_id, "st": status, "act": action.value}
            event["lines"] = lines
            timeline.append((at, step, event))
    timeline.sort(key=lambda row: (row[0], row[1]))
    # Enough of everything but the sold-out SKU that no interleaving can oversell it.
    stock = {sku: demand[sku] + rng.randint(0, 50) for sku in PLAIN}
    stock[SOLD_OUT] = 0
    return {"seed": seed, "stock": stock, "events": [event for _, _, event in timeline]}


def write_fixture(path: Path = FIXTURE) -> None:
    """Write the stream as JSON, one event per line (diffable, < 1 MB)."""
    stream = generate_stream()
    events = ",\n".join(json.dumps(e, separators=(",", ":")) for e in stream["events"])
    head = json.dumps({"seed": stream["seed"], "stock": stream["stock"]})[:-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'{head}, "events": [\n{events}\n]}}\n', encoding="utf-8")


# -- replaying it -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    channel: str
    order_id: str
    status: str
    action: OrderAction
    lines: tuple[ChannelLine, ...]


def load_stream() -> tuple[dict[str, int], list[Event]]:
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    events = [
        Event(
            e["ch"],
            e["id"],
            e["st"],
            OrderAction(e["act"]),
            tuple(ChannelLine(str(item), int(qty)) for item, qty in e["lines"]),
        )
        for e in data["events"]
    ]
    return data["stock"], events


def shuffled_replays(events: list[Event], seed: int, copies: int = REPLAYS) -> list[Event]:
    """``copies`` deliveries of every event; each order's deliveries in a random order, and the
    orders interleaved at random (an order's own events keep no order at all)."""
    rng = random.Random(seed)
    lives: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for event in events:
        lives[event.channel, event.order_id].extend([event] * copies)
    queues = []
    for life in lives.values():
        rng.shuffle(life)
        queues.append(life)
    # A random merge: each next event comes from an order chosen in proportion to what it has left.
    slots = [index for index, life in enumerate(queues) for _ in life]
    rng.shuffle(slots)
    positions = [0] * len(queues)
    merged = []
    for index in slots:
        merged.append(queues[index][positions[index]])
        positions[index] += 1
    return merged


class CachedCatalog(CatalogStore):
    """The catalog, its id lookups remembered (it does not change during a replay)."""

    def __init__(self, client: redis.Redis, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self._known: dict[tuple[str, str], str | None] = {}

    def sku_for(self, field: str, marketplace_id: str | int) -> str | None:
        key = (field, str(marketplace_id))
        if key not in self._known:
            self._known[key] = super().sku_for(field, marketplace_id)
        return self._known[key]


def fresh_ledger(client: redis.Redis, stock: dict[str, int]) -> tuple[RedisLedger, CatalogStore]:
    client.flushall()
    catalog = CachedCatalog(client, channels=CHANNELS)
    catalog.import_entries(catalog_entries())
    ledger = RedisLedger(client, channels=CHANNELS)
    ledger.import_on_hand(sorted(stock.items()))
    return ledger, catalog


def apply(ledger: RedisLedger, catalog: CatalogStore, events: list[Event]) -> None:
    """Map each event's lines as the worker does, record them in pipelined batches."""
    batch: list[OrderEvent] = []
    for event in events:
        lines = to_order_lines(event.lines, catalog, ORDER_FIELD[event.channel])
        batch.append(OrderEvent(event.channel, event.order_id, event.action, lines, event.status))
        if len(batch) == 500:
            ledger.record_orders(batch)
            batch = []
    ledger.record_orders(batch)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def snapshot(client: redis.Redis, events: list[Event]) -> dict[str, Any]:
    """Everything that must not depend on how often or in which order events arrived."""
    reader = LedgerReader(client)
    skus = sorted({*PLAIN, SOLD_OUT, *BUNDLES})
    stock = {}
    for sku in skus:
        levels = reader.stock(sku)
        stock[sku] = (levels.on_hand, levels.reserved)
    orders = {}
    for channel, order_id in sorted({(e.channel, e.order_id) for e in events}):
        record = reader.order(channel, order_id)
        orders[f"{channel}|{order_id}"] = (
            None
            if record is None
            else (
                record.state.value,
                sorted((line.sku, line.quantity) for line in record.lines),
                sorted(record.unknown_lines),
            )
        )

    def hash_of(key: str, pick: str | None = None) -> dict[str, Any]:
        raw = {_text(k): _text(v) for k, v in client.hgetall(key).items()}
        if pick is None:
            return raw
        return {k: json.loads(v)[pick] for k, v in raw.items()}

    return {
        "stock": stock,
        # Raw counters too (a zero may be stored or absent: both mean 0).
        "on_hand": {k: v for k, v in hash_of(KEYS.on_hand).items() if v != "0"},
        "reserved": {k: v for k, v in hash_of(KEYS.reserved).items() if v != "0"},
        "orders": orders,
        "counters": hash_of(KEYS.counters),
        "oversold": hash_of(KEYS.oversold, "shortfall"),
        "unknown": hash_of(KEYS.unknown_skus, "lines"),
    }


@pytest.fixture(scope="module")
def stream() -> tuple[dict[str, int], list[Event]]:
    return load_stream()


@pytest.fixture(scope="module")
def clean(real_server, stream) -> Iterator[dict[str, Any]]:
    """The ledger after one clean pass, in arrival order, each event once."""
    stock, events = stream
    client = connect_real(real_server)
    try:
        ledger, catalog = fresh_ledger(client, stock)
        apply(ledger, catalog, events)
        yield snapshot(client, events)
    finally:
        client.close()


def test_the_recorded_stream_is_what_the_generator_makes():
    assert json.loads(FIXTURE.read_text(encoding="utf-8")) == generate_stream()
    assert FIXTURE.stat().st_size < 1_000_000


def test_the_stream_covers_every_path(stream, clean):
    _, events = stream
    assert len(events) > 2_500
    states = {state for state, _, _ in filter(None, clean["orders"].values())}
    assert states == {"reserved", "committed", "final", "released", "cancelled_after_ship"}
    assert {e.channel for e in events} == set(CHANNELS)
    assert {e.action for e in events} == set(OrderAction) - {OrderAction.HOLD, OrderAction.IGNORE}
    bundle_ids = {item_ids(channel)[bundle] for channel in CHANNELS for bundle in BUNDLES}
    assert any(line.item_id in bundle_ids for e in events for line in e.lines)
    assert any(len(e.lines) > 1 for e in events)
    assert int(clean["counters"]["oversold_orders"]) > 0
    assert int(clean["counters"]["unknown_sku_orders"]) > 0


@pytest.mark.parametrize("seed", SHUFFLE_SEEDS)
def test_three_shuffled_replays_give_the_ledger_of_one_clean_pass(real_client, stream, clean, seed):
    stock, events = stream
    ledger, catalog = fresh_ledger(real_client, stock)
    replay = shuffled_replays(events, seed)
    assert len(replay) == REPLAYS * len(events)
    assert [e.order_id for e in replay[:50]] != [e.order_id for e in events[:50]]
    apply(ledger, catalog, replay)
    assert snapshot(real_client, events) == clean


def test_the_comparison_sees_a_lost_shipment(real_client, stream, clean):
    """The check can fail: the same replay without the shipping of one order (still travelling:
    no later event commits it) gives another ledger."""
    stock, events = stream
    actions: dict[tuple[str, str], set[OrderAction]] = defaultdict(set)
    for event in events:
        actions[event.channel, event.order_id].add(event.action)
    travelling = next(
        k for k, a in actions.items() if a == {OrderAction.RESERVE, OrderAction.COMMIT}
    )
    kept = [
        e
        for e in events
        if (e.channel, e.order_id) != travelling or e.action is not OrderAction.COMMIT
    ]
    ledger, catalog = fresh_ledger(real_client, stock)
    apply(ledger, catalog, shuffled_replays(kept, SHUFFLE_SEEDS[0]))
    different = snapshot(real_client, events)
    assert different != clean
    assert different["orders"][f"{travelling[0]}|{travelling[1]}"][0] == "reserved"
