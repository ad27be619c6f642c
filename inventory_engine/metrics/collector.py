"""The ``/metrics`` scrape: Redis-held counters and histograms plus gauges read at scrape time.

:class:`EngineCollector` is a prometheus_client custom collector; prometheus_client does the
exposition format. Everything comes from Redis, so the figures are the same whichever ``serve``
is scraped and include every worker process on every host.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import redis
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from inventory_engine.constants import DEFAULT_ACCOUNT
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.results import text
from inventory_engine.metrics import definitions as m
from inventory_engine.metrics.definitions import Kind, MetricSpec
from inventory_engine.metrics.recorder import parse_field

SPECS = {spec.name: spec for spec in m.METRICS}


def _number(value: Any) -> float:
    return float(text(value))


class EngineCollector(Collector):
    """Collects the metrics of a deployment's accounts, each series labelled with its
    ``account`` (accounts are few; never a SKU); the queues and workers, which every account
    shares, are not.

    Args:
        client: the ledger's Redis.
        queues: name -> RQ queue (the label is the name: ``events``, ``push``).
        channels: configured channel names (gauges per channel) of ``account``.
        account: the account (one-account deployments).
        accounts: account -> its channel names (several accounts; replaces the two above).
        worker_processes: returns how many supervised worker processes are alive (serve).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        queues: dict[str, Queue],
        channels: Sequence[str] = (),
        account: str = DEFAULT_ACCOUNT,
        accounts: Mapping[str, Sequence[str]] | None = None,
        worker_processes: Callable[[], int] | None = None,
    ) -> None:
        self.client = client
        self.queues = queues
        self.accounts = {
            name: list(names)
            for name, names in (accounts if accounts is not None else {account: channels}).items()
        }
        self.worker_processes = worker_processes

    def collect(self) -> Iterator[Metric]:
        # Every account's figures in one pipelined round trip (on a cluster: one per shard).
        pipe = self.client.pipeline(transaction=False)
        for account, channels in self.accounts.items():
            keys = AccountKeys(account)
            pipe.hgetall(keys.metrics)
            pipe.hmget(keys.counters, ["oversold_units", "oversold_orders"])
            pipe.hlen(keys.unknown_skus)
            for channel in channels:
                pipe.zcard(keys.dirty(channel))
                pipe.hlen(keys.parked(channel))
        replies = iter(pipe.execute())
        families: dict[str, Metric] = {}
        for account, channels in self.accounts.items():
            raw = next(replies)
            ledger = [next(replies) for _ in range(2 + 2 * len(channels))]
            for family in (*self._recorded(raw), *self._ledger(ledger, channels)):
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    merged.samples.append(
                        sample._replace(labels={"account": account, **sample.labels})
                    )
        yield from families.values()
        yield from self._queues()
        if self.worker_processes is not None:
            gauge = GaugeMetricFamily(m.WORKER_PROCESSES.name, m.WORKER_PROCESSES.help)
            gauge.add_metric([], self.worker_processes())
            yield gauge

    # -- counters and histograms written by every process ---------------------------------------

    def _recorded(self, raw: dict[Any, Any]) -> Iterator[Metric]:
        """The account's metrics hash (``raw``) as counter and histogram families."""
        series: dict[str, dict[tuple[str, ...], dict[str, float]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        for key, value in raw.items():
            name, labels, suffix = parse_field(text(key))
            if name in SPECS:
                series[name][labels][suffix] = _number(value)
        for spec in m.METRICS:
            if spec.kind is Kind.COUNTER and spec not in (m.OVERSOLD, m.OVERSOLD_ORDERS):
                counter = CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
                for labels, values in sorted(series[spec.name].items()):
                    counter.add_metric(list(labels), values.get("c", 0.0))
                yield counter
            elif spec.kind is Kind.HISTOGRAM:
                yield self._histogram(spec, series[spec.name])

    @staticmethod
    def _histogram(
        spec: MetricSpec, series: dict[tuple[str, ...], dict[str, float]]
    ) -> HistogramMetricFamily:
        family = HistogramMetricFamily(spec.name, spec.help, labels=spec.labels)
        for labels, values in sorted(series.items()):
            cumulative = 0.0
            buckets: list[tuple[str, float]] = []
            for index, bound in enumerate(spec.buckets):
                cumulative += values.get(f"b{index}", 0.0)
                buckets.append((repr(float(bound)), cumulative))
            cumulative += values.get(f"b{len(spec.buckets)}", 0.0)
            buckets.append(("+Inf", cumulative))
            family.add_metric(list(labels), buckets, sum_value=values.get("s", 0.0))
        return family

    # -- the ledger's own figures (exact: kept by the Lua scripts) -------------------------------

    def _ledger(self, replies: list[Any], channels: list[str]) -> Iterator[Metric]:
        """The account's counters, unknown-SKU orders, and per channel the pending and parked
        counts (``replies``, in the order :meth:`collect` asked for them)."""
        units, orders = (int(v or 0) for v in replies[0])
        for spec, value in ((m.OVERSOLD, units), (m.OVERSOLD_ORDERS, orders)):
            counter = CounterMetricFamily(spec.name, spec.help)
            counter.add_metric([], value)
            yield counter
        unknown = GaugeMetricFamily(m.UNKNOWN_SKU_ORDERS.name, m.UNKNOWN_SKU_ORDERS.help)
        unknown.add_metric([], replies[1])
        yield unknown
        pending = GaugeMetricFamily(m.PENDING.name, m.PENDING.help, labels=["channel"])
        parked = GaugeMetricFamily(m.PARKED.name, m.PARKED.help, labels=["channel"])
        for index, channel in enumerate(channels):
            pending.add_metric([channel], replies[2 + 2 * index])
            parked.add_metric([channel], replies[3 + 2 * index])
        yield pending
        yield parked

    # -- RQ --------------------------------------------------------------------------------------

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(m.QUEUE_DEPTH.name, m.QUEUE_DEPTH.help, labels=["queue"])
        failed = GaugeMetricFamily(m.FAILED_JOBS.name, m.FAILED_JOBS.help, labels=["queue"])
        workers = GaugeMetricFamily(m.WORKERS.name, m.WORKERS.help, labels=["queue"])
        every = [AccountKeys(account) for account in self.accounts]
        for label, queue in self.queues.items():
            waiting = queue.count
            if label == "events":  # events wait in the inbox streams, drained in batches
                waiting += sum(int(queue.connection.xlen(keys.inbox)) for keys in every)
            depth.add_metric([label], waiting)
            failed.add_metric([label], FailedJobRegistry(queue=queue).count)
            workers.add_metric([label], Worker.count(queue=queue))
            # Retries waiting (events) and Ozon-window wake-ups (push) are work too.
            registry = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
            scheduled = registry.count
            if label == "push":  # channels waiting for a window to open (Engine.schedule_push_at)
                scheduled += sum(int(queue.connection.zcard(k.push_wakeups)) for k in every)
            depth.add_metric([f"{label}_scheduled"], scheduled)
        yield depth
        yield failed
        yield workers


def build_registry(collector: EngineCollector) -> CollectorRegistry:
    """A registry with the engine's figures and this process's CPU and memory."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry
