"""What an operator runs when something looks wrong: the engine checked against the marketplaces.

One job per module, each usable without the CLI (``cli_operate/`` only prints what they return):

* :mod:`.common` — the Engine an operator command works with, channel selection, durations;
* :mod:`.pacing` — reads from a channel paged and paced within its limits;
* :mod:`.expected` — what the ledger says each channel should show, pending and parked marks;
* :mod:`.reconcile` — read every listed item back and compare (the ``reconcile`` command);
* :mod:`.corrections` — send differences again through the push path and see them land;
* :mod:`.stuck` — failed jobs, parked items, unknown-SKU orders, and ``retry``;
* :mod:`.explain` — a SKU's journal with the pushes that followed each change;
* :mod:`.order_view` — one order: events received, ledger state, lines, pushes it caused;
* :mod:`.orders_check` — the marketplace's own orders against the ledger, with
  :mod:`.marketplace_orders` (listing them, paced like the pollers), :mod:`.order_lines`
  (comparing lines) and :mod:`.event_jobs` (the event jobs of each order);
* :mod:`.oversold` — oversold marketplace orders and whether they still need a person.

Everything here reads Redis and the marketplaces directly, so it works with or without
``serve`` running; the only writes are the corrections and retries, which go through the same
marks and queues as any other change.
"""
