"""Every metric the engine exports: name, type, help and labels, in one place.

The dashboard and the alert rules in ``deploy/`` may only query names listed here (a test checks
it). Labels are channel names and small enums; never a SKU or an order id (unbounded series).

Counters and histograms are recorded into Redis by whichever process saw the thing happen
(:mod:`inventory_engine.metrics.recorder`), so ``GET /metrics`` on ``serve`` shows the sum of
every worker process, on any host. Gauges are read at scrape time
(:mod:`inventory_engine.metrics.collector`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


PROPAGATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    30.0,
    35.0,
    60.0,
    120.0,
    300.0,
)
"""Seconds. Fine around 10 ms and around 2 s (the seller's target); 30-35 s holds Ozon's
per-item window."""

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds, for single HTTP requests to a channel."""


PROPAGATION = MetricSpec(
    "inventory_propagation_seconds",
    Kind.HISTOGRAM,
    "Event received (webhook, poll, API call) until the channel's stock API accepted the new "
    "value, per accepted item.",
    ("channel",),
    PROPAGATION_BUCKETS,
)
PROPAGATION_ALLOWED = MetricSpec(
    "inventory_propagation_allowed_seconds",
    Kind.HISTOGRAM,
    "From the moment the channel's own limits allowed sending a change (the event itself, or "
    "the end of the item window or rate wait that held it) until the channel accepted it, per "
    "accepted item: the part of the propagation the engine controls.",
    ("channel",),
    PROPAGATION_BUCKETS,
)
THROTTLE_WAIT = MetricSpec(
    "inventory_throttle_wait_seconds",
    Kind.HISTOGRAM,
    "Time a change was held back by the channel's own limits (Ozon's per-item window, a "
    "rate-limit pause) before it could be sent, per sent item.",
    ("channel",),
    PROPAGATION_BUCKETS,
)
PUSH_DURATION = MetricSpec(
    "inventory_push_request_seconds",
    Kind.HISTOGRAM,
    "Duration of one stock push request to a channel.",
    ("channel",),
    DURATION_BUCKETS,
)
EVENTS = MetricSpec(
    "inventory_events",
    Kind.COUNTER,
    "Order events applied to the ledger, by channel, ledger action (reserve, commit, release, "
    "...) and outcome (applied, duplicate, oversold, unknown_sku, not_found).",
    ("channel", "type", "outcome"),
)
PUSH_REQUESTS = MetricSpec(
    "inventory_push_requests",
    Kind.COUNTER,
    "Stock push requests sent to a channel, by status (ok, rate_limited, unavailable, rejected).",
    ("channel", "status"),
)
PUSH_ITEMS = MetricSpec(
    "inventory_push_items",
    Kind.COUNTER,
    "Items in stock push requests, by the channel's answer (accepted, throttled, retry, rejected).",
    ("channel", "outcome"),
)
OVERSOLD = MetricSpec(
    "inventory_oversold",
    Kind.COUNTER,
    "Units sold on a marketplace beyond available stock (each needs a cancel before the "
    "marketplace's point of no return).",
)
OVERSOLD_ORDERS = MetricSpec(
    "inventory_oversold_orders",
    Kind.COUNTER,
    "Marketplace orders that took available stock below zero.",
)
UNRECOGNISED_STATES = MetricSpec(
    "inventory_unrecognised_states",
    Kind.COUNTER,
    "Marketplace order states received that no status rule knows (the engine ignored them: a "
    "state the marketplace added?), by channel and state. The state is the value as sent if it "
    "looks like one (letters, digits, _ and -, up to 40 characters), at most 20 per channel; "
    'any other counts as "other". `inventory-engine order show` lists an order\'s raw values.',
    ("channel", "state"),
)
STATE_LABEL_MAX = 40
"""Characters of a state label at most (longer ones count as ``other``)."""
MAX_STATE_LABELS = 20
"""Distinct state labels per channel at most: a marketplace (or whoever posts to the webhook)
sends the values, and every new one would be a new series for ever."""
OTHER_STATE = "other"
_STATE_LABEL = re.compile(r"[A-Za-z0-9_-]+")


def state_label(raw: str) -> str:
    """A marketplace state as a label value: as sent (trimmed) if it looks like a state name,
    else ``other`` (the cap on distinct values is applied where it is counted)."""
    label = raw.strip()
    if len(label) > STATE_LABEL_MAX or not _STATE_LABEL.fullmatch(label):
        return OTHER_STATE
    return label


DRIFT = MetricSpec(
    "inventory_drift",
    Kind.COUNTER,
    "Items the continuous read-back found showing another value than the ledger's while no "
    "change of theirs was pending (edited in the marketplace's cabinet, an update it dropped), "
    "by channel and outcome: found, repaired (sent again through the push path), "
    "still_different (different again on the next pass after a repair: persistent).",
    ("channel", "outcome"),
)
API_ERRORS = MetricSpec(
    "inventory_api_errors",
    Kind.COUNTER,
    "Marketplace answers that say a method no longer exists (410, a 404 naming no missing "
    "item, a 'method deprecated/not found' error): the marketplace most likely retired this API "
    "version. By channel, endpoint (the method and path template, at most 20 per channel) and "
    "HTTP status. The channel's use of the endpoint pauses with a growing back-off.",
    ("channel", "status", "endpoint"),
)
MAX_ENDPOINT_LABELS = 20
"""Distinct endpoint labels per channel and status at most (paths are templates: a few each)."""
QUEUE_DEPTH = MetricSpec(
    "inventory_queue_depth",
    Kind.GAUGE,
    "Jobs waiting in an RQ queue (events, push) or scheduled for later (events_scheduled: "
    "retries waiting; push_scheduled: channels waiting for Ozon's item window).",
    ("queue",),
)
FAILED_JOBS = MetricSpec(
    "inventory_failed_jobs",
    Kind.GAUGE,
    "Jobs in RQ's failed registry (see `inventory-engine reconcile`, `retry`).",
    ("queue",),
)
PENDING = MetricSpec(
    "inventory_pending_changes",
    Kind.GAUGE,
    "SKUs changed but not yet accepted by the channel.",
    ("channel",),
)
PARKED = MetricSpec(
    "inventory_parked_items",
    Kind.GAUGE,
    "SKUs the channel rejected and that wait for an operator (`inventory-engine retry`).",
    ("channel",),
)
UNKNOWN_SKU_ORDERS = MetricSpec(
    "inventory_unknown_sku_orders",
    Kind.GAUGE,
    "Orders holding lines whose SKU is not in the catalog.",
)
WORKERS = MetricSpec(
    "inventory_workers",
    Kind.GAUGE,
    "RQ worker processes registered on a queue (any host).",
    ("queue",),
)
WORKER_PROCESSES = MetricSpec(
    "inventory_worker_processes",
    Kind.GAUGE,
    "Worker processes this serve supervises that are alive.",
)

METRICS: tuple[MetricSpec, ...] = (
    PROPAGATION,
    PROPAGATION_ALLOWED,
    THROTTLE_WAIT,
    PUSH_DURATION,
    EVENTS,
    PUSH_REQUESTS,
    PUSH_ITEMS,
    OVERSOLD,
    OVERSOLD_ORDERS,
    UNRECOGNISED_STATES,
    DRIFT,
    API_ERRORS,
    QUEUE_DEPTH,
    FAILED_JOBS,
    PENDING,
    PARKED,
    UNKNOWN_SKU_ORDERS,
    WORKERS,
    WORKER_PROCESSES,
)


def exported_series() -> set[str]:
    """Every series name a scrape may contain (``_total``, ``_bucket``... included), plus the
    process metrics prometheus_client adds."""
    names: set[str] = set()
    for spec in METRICS:
        if spec.kind is Kind.COUNTER:
            names.add(f"{spec.name}_total")
        elif spec.kind is Kind.HISTOGRAM:
            names |= {f"{spec.name}_bucket", f"{spec.name}_sum", f"{spec.name}_count"}
        else:
            names.add(spec.name)
    names |= {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "python_info",
        "up",  # Prometheus' own per-target series
    }
    return names
