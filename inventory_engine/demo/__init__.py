"""``inventory-engine demo``: the whole engine at work on a laptop, in one command.

Everything ``serve`` runs (embedded Redis, HTTP API, RQ worker processes, order pollers) plus
the three marketplace simulators, in a fresh temporary state directory that is deleted at the
end: the user's own state directory, Redis and ``INVENTORY_*`` settings are never used (those
variables are set aside for the run, so worker processes cannot pick them up either).

A sample catalog (8 SKUs and a bundle, listed on every marketplace) is seeded, then orders are
placed on every channel in turn: Ozon postings and Yandex Market orders (the simulators notify
the engine's webhooks), Wildberries assembly tasks (found by the WB poller, every 2 s) and
storefront reservations (``POST /v1/reservations``). A marketplace only sells what it shows.

Propagation latency of an order to a channel: from placing the order to the first stock value
that channel accepted for the item afterwards. It includes the WB poll interval for WB orders,
and Ozon accepts one update per item every 30 s, so a busy item waits for Ozon's window.
"""

from inventory_engine.demo.report import ChannelStats, DemoSummary, render_summary
from inventory_engine.demo.run import DemoError, run_demo
from inventory_engine.demo.sample import MARKETPLACES, SAMPLE_STOCK, SKUS, SOURCES, catalog

__all__ = [
    "MARKETPLACES",
    "SAMPLE_STOCK",
    "SKUS",
    "SOURCES",
    "ChannelStats",
    "DemoError",
    "DemoSummary",
    "catalog",
    "render_summary",
    "run_demo",
]
