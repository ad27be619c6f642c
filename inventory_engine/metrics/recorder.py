"""Counters and histograms kept in Redis, so every process adds to the same figures.

Workers run as several processes and may run on other hosts; prometheus_client's in-process
registry (or its multiprocess directory) would only see one host's processes. Each process
instead stages its increments in a :class:`MetricsBatch` and writes them in the pipeline it
already sends (one ``HINCRBY`` per field; no extra round trip on the hot path).
``GET /metrics`` reads the hash back (:mod:`inventory_engine.metrics.collector`).

Fields of ``inv:{a}:metrics``::

    <name>|<label values JSON>|c      counter value
    <name>|<label values JSON>|b<i>   observations in histogram bucket i (not cumulative;
                                      i = len(buckets) is +Inf)
    <name>|<label values JSON>|s      histogram sum (float)
    <name>|<label values JSON>|n      histogram count
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import redis
import structlog

from inventory_engine.constants import DEFAULT_ACCOUNT
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.results import text
from inventory_engine.metrics.definitions import Kind, MetricSpec

log = structlog.get_logger()


def series_field(spec: MetricSpec, labels: Sequence[str], suffix: str) -> str:
    if len(labels) != len(spec.labels):
        raise ValueError(f"{spec.name} takes labels {spec.labels}, got {tuple(labels)}")
    return f"{spec.name}|{json.dumps(list(labels), separators=(',', ':'))}|{suffix}"


def parse_field(field: str) -> tuple[str, tuple[str, ...], str]:
    """``(name, label values, suffix)`` of a metrics hash field."""
    name, rest = field.split("|", 1)
    labels, suffix = rest.rsplit("|", 1)
    return name, tuple(str(v) for v in json.loads(labels)), suffix


class MetricsBatch:
    """Increments staged in memory, written in one go by :meth:`write`."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.sums: dict[str, float] = defaultdict(float)

    def inc(self, spec: MetricSpec, *labels: str, amount: int = 1) -> None:
        if spec.kind is not Kind.COUNTER:
            raise ValueError(f"{spec.name} is not a counter")
        if amount:
            self.counts[series_field(spec, labels, "c")] += amount

    def observe(self, spec: MetricSpec, seconds: float, *labels: str) -> None:
        if spec.kind is not Kind.HISTOGRAM:
            raise ValueError(f"{spec.name} is not a histogram")
        index = bisect.bisect_left(spec.buckets, seconds)  # first bucket with le >= value
        self.counts[series_field(spec, labels, f"b{index}")] += 1
        self.counts[series_field(spec, labels, "n")] += 1
        self.sums[series_field(spec, labels, "s")] += seconds

    def __bool__(self) -> bool:
        return bool(self.counts or self.sums)

    def write(self, pipe: Any, key: str) -> None:
        """Queue the increments on a redis-py pipeline (or client) and forget them."""
        for field, amount in self.counts.items():
            pipe.hincrby(key, field, amount)
        for field, total in self.sums.items():
            pipe.hincrbyfloat(key, field, round(total, 6))
        self.counts.clear()
        self.sums.clear()


class MetricsRecorder:
    """Writes batches to one account's metrics hash."""

    def __init__(self, client: redis.Redis, *, account: str = DEFAULT_ACCOUNT) -> None:
        self.client = client
        self.key = AccountKeys(account).metrics

    def batch(self) -> MetricsBatch:
        return MetricsBatch()

    def capped_label(
        self,
        batch: MetricsBatch,
        spec: MetricSpec,
        labels: Sequence[str],
        *,
        cap: int,
        other: str,
    ) -> str:
        """The last of a counter's ``labels`` (a value fed from outside), or ``other`` when its
        series is new and ``cap`` values already share the labels before it (in Redis or staged
        in ``batch``): such a label cannot grow the series without bound. Reads the hash, so
        for rare events only; if Redis fails, ``other`` (the write fails and is logged too)."""
        field = series_field(spec, labels, "c")
        if field in batch.counts:
            return labels[-1]
        try:
            fields = {text(f) for f in self.client.hkeys(self.key)}
        except redis.RedisError as exc:
            log.warning("metrics_read_failed", error=str(exc))
            return other
        if field in fields:
            return labels[-1]
        used = set()
        for name, values, suffix in map(parse_field, fields | set(batch.counts)):
            if name == spec.name and suffix == "c" and list(values[:-1]) == list(labels[:-1]):
                used.add(values[-1])
        used.discard(other)
        return labels[-1] if len(used) < cap else other

    def write(self, batch: MetricsBatch, pipe: Any | None = None) -> None:
        """With ``pipe``, queue on it (the caller executes); else send now. Metrics never
        break the work they describe: a failed write is logged and dropped."""
        if not batch:
            return
        if pipe is not None:
            batch.write(pipe, self.key)
            return
        try:
            own = self.client.pipeline(transaction=False)
            batch.write(own, self.key)
            own.execute()
        except redis.RedisError as exc:
            log.warning("metrics_write_failed", error=str(exc))
