"""Facts about the code that are not deployment settings: limits, key prefixes, retention.

Each constant is documented where it is defined (the rq ``defaults.py`` way).
"""

from __future__ import annotations

DEFAULT_ACCOUNT = "default"
"""Seller account used when none is named; every Redis key of an account shares ``{account}``."""

DEFAULT_LOCATION = "main"
"""Physical warehouse used when none is named."""

KEY_PREFIX = "inv"
"""First segment of every Redis key: ``inv:{<account>}:<thing>[:<id>]``."""

MAX_LINE_QUANTITY = 999_999
"""Largest quantity accepted on one order line."""

MAX_STOCK_LEVEL = 1_000_000_000
"""Largest absolute stock level. Lua numbers are doubles: this keeps every sum far below 2**53."""

MAX_ID_LENGTH = 200
"""Longest SKU, order, channel or location identifier accepted."""

MAX_ORDER_LINES = 1_000
"""Most distinct lines one order may carry; keeps each Lua call short and bounded."""

JOURNAL_MAX_ENTRIES = 1_000_000
"""Approximate cap of the per-account audit stream (``XADD MAXLEN ~``)."""

FINISHED_ORDER_RETENTION_MS = 90 * 24 * 3600 * 1000
"""How long a finished order (and a cancel tombstone) is kept, so late duplicates stay no-ops.

Marketplaces retry notifications for days (YM up to 14 days); 90 days covers any replay.
"""

EXPIRE_SWEEP_BATCH = 500
"""Most due storefront reservations released by one ``expire_due`` Lua call."""

STOCK_IMPORT_CHUNK = 1_000
"""Rows sent to Redis per call during ``stock import``: short Lua calls, a live progress bar."""

STOREFRONT_CHANNEL = "storefront"
"""Channel under which the seller's own storefront reservations are recorded."""

PUSH_LOG_MAX_ENTRIES = 500_000
"""Approximate cap of the per-account stream of items sent to channels (``explain``, ``order
show``); about a day of a busy shop's pushes."""

ORDER_LOG_MAX_ENTRIES = 50
"""Most events kept per order in its log (``order show``); an order rarely has ten."""
