"""The demo's order desk: places orders on every channel, reads back what the simulators
accepted and what the ledger holds, and renders the live table."""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Group
from rich.table import Table

from inventory_engine.constants import STOREFRONT_CHANNEL
from inventory_engine.demo.report import ChannelStats, DemoSummary, channel_table
from inventory_engine.demo.sample import (
    BUNDLES,
    MARKETPLACES,
    OZON_SKU,
    SAMPLE_STOCK,
    SKUS,
    SOURCES,
    WB_CHRT_ID,
)
from inventory_engine.ledger import LedgerReader


@dataclass
class PlacedOrder:
    channel: str
    order_id: str
    sku: str
    quantity: int
    at_ns: int
    waiting: set[str]


class OrderDesk:
    """Places orders, reads what the simulators accepted and the ledger, renders the tables."""

    def __init__(
        self, http: httpx.Client, api: str, token: str, sims: dict[str, str], reader: LedgerReader
    ) -> None:
        self.http, self.api, self.sims, self.reader = http, api, sims, reader
        self.auth = {"Authorization": f"Bearer {token}"}
        self.stats = {name: ChannelStats() for name in SOURCES}
        self.orders: list[PlacedOrder] = []
        self.recorded: set[tuple[str, str]] = set()
        self.cursor = dict.fromkeys(MARKETPLACES, 0)
        self.shown: dict[tuple[str, str], tuple[int, int]] = {}
        """(channel, sku) -> (last value the simulator accepted, when in epoch ns)."""
        self.stock: dict[str, dict[str, Any]] = {}
        self.item_sku = {("ozon", s): s for s in SKUS} | {("ym", s): s for s in SKUS}
        self.item_sku |= {("wb", str(WB_CHRT_ID[s])): s for s in SKUS}
        self.turn = itertools.cycle(SOURCES)
        self.reservations = itertools.count(1)
        self.random = random.Random()  # noqa: S311 - sample orders, not security
        self.started = time.monotonic()
        self.phase = "starting"

    # -- orders ------------------------------------------------------------------------------

    def place_order(self) -> None:
        channel = next(self.turn)
        quantity = 1 if channel == "wb" else self.random.choice((1, 1, 2))
        skus = [
            s for s in SKUS if channel == STOREFRONT_CHANNEL or self._can_sell(channel, s, quantity)
        ]
        if not skus:
            return
        sku, at_ns = self.random.choice(skus), time.time_ns()
        order_id = self._send(channel, sku, quantity)
        if order_id is None:
            self.stats[channel].refused += 1
            return
        self.stats[channel].orders += 1
        waiting = set(MARKETPLACES) - {channel}
        self.orders.append(PlacedOrder(channel, order_id, sku, quantity, at_ns, waiting))

    def _can_sell(self, channel: str, sku: str, quantity: int) -> bool:
        """Whether the marketplace shows ``quantity``: its last value less what it sold since."""
        value, at_ns = self.shown.get((channel, sku), (0, 0))
        mine = (o for o in self.orders if (o.channel, o.sku) == (channel, sku))
        return value - sum(o.quantity for o in mine if o.at_ns > at_ns) >= quantity

    def _send(self, channel: str, sku: str, quantity: int) -> str | None:
        """Place one order; its id, or None when the storefront's reservation was refused."""
        bodies: dict[str, tuple[str, dict[str, Any], str]] = {
            "ozon": ("postings", {"products": [{"sku": OZON_SKU[sku], "quantity": quantity}]},
                     "posting_number"),
            "wb": ("orders", {"chrtId": WB_CHRT_ID[sku]}, "id"),
            "ym": ("orders", {"items": [{"offerId": sku, "count": quantity}]}, "orderId"),
        }  # fmt: skip
        if channel in bodies:
            route, body, key = bodies[channel]
            answer = self.http.post(f"{self.sims[channel]}/_sim/{route}", json=body)
            return str(answer.raise_for_status().json()[key])
        reservation = f"demo-{next(self.reservations)}"
        lines = [{"sku": sku, "quantity": quantity}]
        answer = self.http.post(
            f"{self.api}/v1/reservations",
            json={"reservation_id": reservation, "lines": lines},
            headers=self.auth,
        )
        if answer.status_code == 409:
            return None
        answer.raise_for_status()
        return reservation

    # -- observing ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the values the simulators accepted since last time, and the ledger's view."""
        pending = [o for o in self.orders if o.waiting]
        for channel, url in self.sims.items():
            body = self.http.get(f"{url}/_sim/received", params={"since": self.cursor[channel]})
            received = body.raise_for_status().json()
            self.cursor[channel] = received["next"]
            for row in received["received"]:
                sku = self.item_sku.get((channel, row["item_id"]))
                if sku is None:
                    continue
                self.stats[channel].pushes += 1
                self.shown[channel, sku] = (row["value"], row["at_ns"])
                for order in pending:
                    if order.sku == sku and channel in order.waiting and order.at_ns < row["at_ns"]:
                        order.waiting.discard(channel)
                        self.stats[channel].latencies_ms.append((row["at_ns"] - order.at_ns) / 1e6)
        for sku in SKUS:
            answer = self.http.get(f"{self.api}/v1/stock/{sku}", headers=self.auth)
            if answer.status_code == 200:
                self.stock[sku] = answer.json()

    def behind(self) -> int:
        """(SKU, marketplace) pairs whose shown value is not the engine's target (or unknown)."""
        return sum(1 for sku in SKUS for name in MARKETPLACES if not self._at_target(name, sku))

    def unrecorded(self) -> int:
        """Placed orders the ledger does not know yet."""
        for order in self.orders:
            key = (order.channel, order.order_id)
            if key not in self.recorded and self.reader.order(*key) is not None:
                self.recorded.add(key)
        return len(self.orders) - len(self.recorded)

    # -- rendering ---------------------------------------------------------------------------

    def render(self, *, channels: bool = True) -> Group:
        """The stock table (and, while running, the channel table)."""
        elapsed = time.monotonic() - self.started
        title = f"{self.phase} · {elapsed:.0f} s · {len(self.orders)} orders"
        table = Table(title=title, caption="marketplace cells: value shown → engine's target")
        for column in ("SKU", "on hand", "reserved", "available", *MARKETPLACES):
            table.add_column(column, justify="left" if column == "SKU" else "right")
        for sku in SKUS:
            body = self.stock.get(sku)
            if body is None:
                continue
            cells = []
            for name in MARKETPLACES:
                view, shown = body["channels"][name], self.shown.get((name, sku))
                value = "–" if shown is None else str(shown[0])
                if shown is not None and shown[0] == view["target"] and not view["pending"]:
                    cells.append(f"[green]{value}[/]")
                else:
                    cells.append(f"[yellow]{value} → {view['target']}[/]")
            counters = ("—", "—") if sku in BUNDLES else (body["on_hand"], body["reserved"])
            label = f"{sku} (bundle)" if sku in BUNDLES else sku
            table.add_row(label, *map(str, counters), str(body["available"]), *cells)
        return Group(table, *([channel_table(self.stats)] if channels else []))

    def summary(self, seconds: float) -> DemoSummary:
        """The summary, read while the engine still runs."""
        counters = self.reader.counters()
        violations = {
            name: self.http.get(f"{url}/_sim/state").raise_for_status().json()["violations"]
            for name, url in self.sims.items()
        }
        negative = [
            sku
            for sku in SAMPLE_STOCK
            if any(
                lv.on_hand < 0 or lv.reserved < 0 for lv in self.reader.stock(sku).levels.values()
            )
        ]
        return DemoSummary(
            seconds=seconds,
            channels=self.stats,
            orders_recorded=len(self.orders) - self.unrecorded(),
            oversold_units=counters.oversold_units,
            oversold_orders=counters.oversold_orders,
            violations=violations,
            negative=negative,
            behind=self.behind(),
            unmatched=sum(len(o.waiting) for o in self.orders),
            unmatched_unchanged=sum(
                1 for o in self.orders for name in o.waiting if self._at_target(name, o.sku)
            ),
        )

    def _at_target(self, channel: str, sku: str) -> bool:
        """The marketplace shows the engine's target for the SKU, with nothing pending."""
        view = self.stock.get(sku, {}).get("channels", {}).get(channel)
        shown = self.shown.get((channel, sku))
        return (
            view is not None
            and shown is not None
            and not view["pending"]
            and (shown[0] == view["target"])
        )
