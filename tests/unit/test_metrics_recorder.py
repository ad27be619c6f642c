"""Metrics kept in Redis: what a batch writes and what the collector makes of it."""

from __future__ import annotations

import fakeredis
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue

from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.metrics import definitions as m
from inventory_engine.metrics.collector import EngineCollector, build_registry
from inventory_engine.metrics.recorder import (
    MetricsBatch,
    MetricsRecorder,
    parse_field,
    series_field,
)


@pytest.fixture
def client():
    return fakeredis.FakeRedis()


def samples(client) -> dict:
    collector = EngineCollector(
        client,
        queues={"events": Queue("e", connection=client), "push": Queue("p", connection=client)},
        channels=["ozon", "wb"],
    )
    text = generate_latest(build_registry(collector)).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            # Every series of the account carries account="default"; the queues' do not.
            if family.name.startswith("inventory_") and family.name not in SHARED:
                assert labels.pop("account") == "default", sample
            out[(sample.name, tuple(sorted(labels.items())))] = sample.value
    return out


SHARED = {
    "inventory_queue_depth",
    "inventory_failed_jobs",
    "inventory_workers",
    "inventory_worker_processes",
}
"""Series of what every account shares (RQ's queues): no account label."""


def test_field_names_round_trip_and_refuse_wrong_labels():
    field = series_field(m.EVENTS, ("ozon", "reserve", "applied"), "c")
    assert parse_field(field) == ("inventory_events", ("ozon", "reserve", "applied"), "c")
    with pytest.raises(ValueError, match="takes labels"):
        series_field(m.EVENTS, ("ozon",), "c")


def test_batches_from_two_processes_add_up(client):
    for _ in range(2):  # two processes, each with its own recorder
        recorder = MetricsRecorder(client)
        batch = MetricsBatch()
        batch.inc(m.EVENTS, "ozon", "reserve", "applied", amount=3)
        batch.observe(m.PROPAGATION, 0.009, "wb")  # <= 10 ms bucket
        batch.observe(m.PROPAGATION, 1.9, "wb")  # <= 2 s bucket
        batch.observe(m.PROPAGATION, 400.0, "wb")  # beyond the last bucket: +Inf only
        recorder.write(batch)
        assert not batch  # written and forgotten
    got = samples(client)
    assert (
        got[
            (
                "inventory_events_total",
                (("channel", "ozon"), ("outcome", "applied"), ("type", "reserve")),
            )
        ]
        == 6
    )
    wb = (("channel", "wb"),)
    assert got[("inventory_propagation_seconds_bucket", (*wb, ("le", "0.005")))] == 0
    assert got[("inventory_propagation_seconds_bucket", (*wb, ("le", "0.01")))] == 2
    assert got[("inventory_propagation_seconds_bucket", (*wb, ("le", "1.5")))] == 2
    assert got[("inventory_propagation_seconds_bucket", (*wb, ("le", "2.0")))] == 4
    assert got[("inventory_propagation_seconds_bucket", (*wb, ("le", "300.0")))] == 4
    assert got[("inventory_propagation_seconds_bucket", (*wb, ("le", "+Inf")))] == 6
    assert got[("inventory_propagation_seconds_count", wb)] == 6
    assert got[("inventory_propagation_seconds_sum", wb)] == pytest.approx(2 * (0.009 + 1.9 + 400))


def test_an_observation_on_a_bucket_bound_counts_in_that_bucket(client):
    batch = MetricsBatch()
    batch.observe(m.PROPAGATION, 2.0, "wb")
    MetricsRecorder(client).write(batch)
    got = samples(client)
    assert got[("inventory_propagation_seconds_bucket", (("channel", "wb"), ("le", "1.5")))] == 0
    assert got[("inventory_propagation_seconds_bucket", (("channel", "wb"), ("le", "2.0")))] == 1


def test_gauges_come_from_the_ledger_and_the_queues(client):
    keys = AccountKeys()
    client.zadd(keys.dirty("ozon"), {"A": 1, "B": 2})
    client.hset(keys.parked("wb"), "C", "{}")
    client.hset(keys.counters, mapping={"oversold_units": 4, "oversold_orders": 2})
    client.hset(keys.unknown_skus, "ozon|1", "{}")
    Queue("e", connection=client).enqueue("workers.jobs.apply_order_event", "ozon", {})
    got = samples(client)
    assert got[("inventory_pending_changes", (("channel", "ozon"),))] == 2
    assert got[("inventory_pending_changes", (("channel", "wb"),))] == 0
    assert got[("inventory_parked_items", (("channel", "wb"),))] == 1
    assert got[("inventory_oversold_total", ())] == 4
    assert got[("inventory_oversold_orders_total", ())] == 2
    assert got[("inventory_unknown_sku_orders", ())] == 1
    assert got[("inventory_queue_depth", (("queue", "events"),))] == 1
    assert got[("inventory_workers", (("queue", "events"),))] == 0


def test_every_exported_series_is_declared(client):
    batch = MetricsBatch()
    for spec in m.METRICS:
        if spec.kind is m.Kind.COUNTER and spec not in (m.OVERSOLD, m.OVERSOLD_ORDERS):
            batch.inc(spec, *["x"] * len(spec.labels))
        elif spec.kind is m.Kind.HISTOGRAM:
            batch.observe(spec, 0.1, *["x"] * len(spec.labels))
    MetricsRecorder(client).write(batch)
    names = {name for name, _ in samples(client)}
    assert names - m.exported_series() == set()


def test_a_counter_is_not_a_histogram():
    with pytest.raises(ValueError, match="not a histogram"):
        MetricsBatch().observe(m.EVENTS, 1.0, "a", "b", "c")
    with pytest.raises(ValueError, match="not a counter"):
        MetricsBatch().inc(m.PROPAGATION, "wb")
