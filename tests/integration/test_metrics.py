"""``GET /metrics`` of a real ``serve`` with several worker processes: the figures are the sum of
what every process did (they live in Redis), parsed with prometheus_client's own parser."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue
from rq.job import Job
from rq.registry import FinishedJobRegistry

from inventory_engine.service import EVENTS_QUEUE, PUSH_QUEUE
from tests.integration.conftest import AUTH, free_port, shown, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    answer = httpx.get(f"{base}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            labels = dict(sample.labels)
            # Each account's series carry account="default" here; the queues' carry none.
            if family.name.startswith("inventory_") and family.name not in SHARED:
                assert labels.pop("account") == "default", sample
            samples[(sample.name, tuple(sorted(labels.items())))] = sample.value
    return samples


SHARED = {
    "inventory_queue_depth",
    "inventory_failed_jobs",
    "inventory_workers",
    "inventory_worker_processes",
}
"""What every account shares (RQ's queues, the worker processes): no account label."""


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def posting(number: str, quantity: int = 1) -> dict[str, Any]:
    return {
        "message_type": "TYPE_NEW_POSTING",
        "posting_number": number,
        "products": [{"sku": 555, "quantity": quantity}],
        "in_process_at": "2026-11-22T10:00:00Z",
        "seller_id": 15,
    }


def test_metrics_add_up_across_worker_processes(start_engine, real_client):
    engine = start_engine(workers=4)  # two on the events queue, two on the push queue
    base = engine.base
    assert httpx.put(f"{base}/v1/stock/MUG", json={"on_hand": 500}, headers=AUTH).is_success
    before = scrape(base)
    assert (
        value(before, "inventory_events_total", channel="ozon", type="reserve", outcome="applied")
        == 0
    )

    postings = 60
    for i in range(postings):
        assert httpx.post(f"{base}/webhooks/ozon", json=posting(f"M-{i}")).json() == {
            "result": True
        }
    # One delivered twice: a duplicate, counted as such and not applied again.
    assert httpx.post(f"{base}/webhooks/ozon", json=posting("M-0")).json() == {"result": True}
    for i in range(5):
        body = {"reservation_id": f"cart-{i}", "lines": [{"sku": "MUG", "quantity": 2}]}
        assert httpx.post(f"{base}/v1/reservations", json=body, headers=AUTH).status_code == 201

    expected_available = 500 - postings - 10
    assert wait_for(lambda: shown(engine.sandbox, "wb") == {"777": expected_available}, seconds=60)
    assert wait_for(lambda: shown(engine.sandbox, "ym") == {"MUG": expected_available}, seconds=60)

    # The figures below were recorded by several processes: serve's HTTP (storefront calls),
    # events workers (applying) and push workers (pushing), each on its own queue.
    workers = set()
    for name in (EVENTS_QUEUE, PUSH_QUEUE):
        ids = FinishedJobRegistry(queue=Queue(name, connection=real_client)).get_job_ids()
        workers |= {job.worker_name for job in Job.fetch_many(ids, connection=real_client) if job}
    assert len(workers) >= 2, workers

    samples = wait_for(
        lambda: (
            (s := scrape(base))
            and value(
                s, "inventory_events_total", channel="ozon", type="reserve", outcome="duplicate"
            )
            and s
        )
    )
    assert (
        value(samples, "inventory_events_total", channel="ozon", type="reserve", outcome="applied")
        == postings
    )
    assert (
        value(
            samples, "inventory_events_total", channel="ozon", type="reserve", outcome="duplicate"
        )
        == 1
    )
    assert (
        value(
            samples,
            "inventory_events_total",
            channel="storefront",
            type="reserve",
            outcome="applied",
        )
        == 5
    )

    assert value(samples, "inventory_workers", queue="events") == 2
    assert value(samples, "inventory_workers", queue="push") == 2
    assert value(samples, "inventory_worker_processes") == 4
    assert value(samples, "inventory_queue_depth", queue="events") == 0
    assert value(samples, "inventory_pending_changes", channel="wb") == 0
    assert value(samples, "inventory_oversold_total") == 0

    for channel in ("wb", "ym"):
        count = value(samples, "inventory_propagation_seconds_count", channel=channel)
        assert count >= 2  # the initial stock, then at least one coalesced decrease
        assert (
            value(samples, "inventory_propagation_seconds_bucket", channel=channel, le="+Inf")
            == count
        )
        assert value(samples, "inventory_propagation_seconds_sum", channel=channel) > 0
        assert value(samples, "inventory_push_requests_total", channel=channel, status="ok") >= 2
        assert (
            value(samples, "inventory_push_items_total", channel=channel, outcome="accepted")
            == count
        )
        assert value(samples, "inventory_push_request_seconds_count", channel=channel) >= 2
        throttle = value(samples, "inventory_throttle_wait_seconds_count", channel=channel)
        assert throttle == value(
            samples, "inventory_push_items_total", channel=channel, outcome="accepted"
        )
    assert value(samples, "process_resident_memory_bytes") > 0
    # Never a per-SKU or per-order label.
    assert not any(dict(labels).keys() & {"sku", "order", "order_id"} for _, labels in samples)


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(
            {"body": json.loads(body), "authorization": self.headers.get("Authorization")}
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", free_port()), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver.received
    finally:
        server.shutdown()
        server.server_close()


def test_an_oversold_ozon_posting_is_announced_counted_and_logged(start_engine, receiver):
    url, received = receiver
    engine = start_engine(
        extra=f'[alerts]\noversold_url = "{url}"\noversold_token = "alert-secret"\n'
    )
    base = engine.base
    assert httpx.put(f"{base}/v1/stock/MUG", json={"on_hand": 1}, headers=AUTH).is_success
    assert httpx.post(f"{base}/webhooks/ozon", json=posting("OVER-1", 3)).json() == {"result": True}

    assert wait_for(lambda: received, seconds=30)
    announcement = received[0]
    assert announcement["authorization"] == "Bearer alert-secret"
    body = announcement["body"]
    assert (body["event"], body["channel"], body["order_id"], body["units"]) == (
        "order_oversold",
        "ozon",
        "OVER-1",
        2,
    )
    assert body["lines"] == [
        {"sku": "MUG", "shortfall": 2, "location": "main", "ms": body["lines"][0]["ms"]}
    ]
    assert "352" in body["text"]

    samples = scrape(base)
    assert value(samples, "inventory_oversold_total") == 2
    assert value(samples, "inventory_oversold_orders_total") == 1
    assert (
        value(samples, "inventory_events_total", channel="ozon", type="reserve", outcome="oversold")
        == 1
    )
    log = engine.log.read_text()
    assert '"order_oversold"' in log
    assert "OVER-1" in log
    assert "alert-secret" not in log  # the token is a secret: never logged
