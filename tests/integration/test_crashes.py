"""Crashes: a worker killed mid-batch, Redis killed with events in flight, ``serve`` stopped
with a job in hand. Real processes throughout: ``inventory-engine serve`` with its RQ worker
processes, a Valkey server, the marketplace simulators, webhooks over HTTP.

The promises (issue, section 1):

* SIGKILL a worker in the middle of a batch, workers start again: every acknowledged event is
  applied exactly once (journal and counters agree), every change reaches every channel.
* Restart Redis (AOF ``appendfsync always``, the shipped config) with events in flight: no event
  answered 200 is lost.
* SIGTERM to ``serve``: the job in hand finishes, nothing is half-applied.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from rq.job import Job, JobStatus

from inventory_engine.config import EmbeddedSettings
from inventory_engine.daemon import WORKER_STOP_TIMEOUT_S
from inventory_engine.domain.models import OrderState
from inventory_engine.embedded import ensure_embedded_server
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.reads import LedgerReader
from inventory_engine.service import EVENTS_QUEUE, PUSH_QUEUE
from inventory_engine.simulators.sandbox import Sandbox
from tests.cluster_helpers import ValkeyProcess
from tests.integration import crash_helpers as h
from tests.integration.conftest import AUTH, shown

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STOCK = 5000
SLOW_POSTING = "SLOW-1"
SLOW_LINES = {"MUG": 2, "CUP": 1}


@pytest.fixture
def orphans() -> Iterator[list[int]]:
    """Processes a test leaves behind on purpose (a killed worker's scheduler), killed after."""
    pids: list[int] = []
    try:
        yield pids
    finally:
        h.kill_all(pids)


def batch(count: int) -> dict[str, dict[str, int]]:
    """``count`` postings of one or two lines, by posting number."""
    return {f"B-{i:04d}": {"MUG": 1 + i % 3} | ({"CUP": 1} if i % 2 else {}) for i in range(count)}


def set_stock(http: httpx.Client, base: str, skus: dict[str, int]) -> None:
    for sku, units in skus.items():
        answer = http.put(f"{base}/v1/stock/{sku}", json={"on_hand": units}, headers=AUTH)
        assert answer.status_code == 200, answer.text


def slow_posting_on_ozon(sandbox: Sandbox) -> None:
    """A posting that exists only on the Ozon simulator: its TYPE_STATE_CHANGED push carries no
    lines, so the worker reads it back with ``get_order``, which latency makes slow."""
    url = sandbox.url("ozon")
    products = [{"offer_id": sku, "sku": oz} for sku, (oz, _) in h.ITEMS.items()]
    httpx.post(f"{url}/_sim/products", json={"products": products}).raise_for_status()
    lines = [{"sku": h.ITEMS[sku][0], "quantity": q} for sku, q in SLOW_LINES.items()]
    body = {"posting_number": SLOW_POSTING, "products": lines}
    httpx.post(f"{url}/_sim/postings", json=body).raise_for_status()


def assert_applied_exactly_once(
    client: redis.Redis, acknowledged: dict[str, dict[str, int]]
) -> h.Audit:
    """Every acknowledged order reserved each line once; nothing else reserved; the journal
    replays to the counters."""
    audit = h.audit(client)
    audit.assert_consistent()
    expected = {("ozon", order, sku): 1 for order, lines in acknowledged.items() for sku in lines}
    assert dict(audit.reserve_rows) == expected
    reserved = {sku: 0 for sku in h.ITEMS}
    for lines in acknowledged.values():
        for sku, quantity in lines.items():
            reserved[sku] += quantity
    reader = LedgerReader(client)
    for sku, units in reserved.items():
        stock = reader.stock(sku)
        assert (stock.on_hand, stock.reserved) == (STOCK, units), sku
    return audit


def acknowledge_with_one_in_flight(
    http: httpx.Client,
    serve: h.Serve,
    sandbox: Sandbox,
    queues: redis.Redis,
    orders: dict[str, dict[str, int]],
) -> dict[str, dict[str, int]]:
    """Acknowledge the first half of ``orders``, then hold a worker inside one event (a slow
    Ozon read of ``SLOW_POSTING``) while the second half is acknowledged: events in flight and
    waiting. Returns what was acknowledged (the slow posting included)."""
    numbers = list(orders)
    half = len(numbers) // 2
    acknowledged = h.post_postings(http, serve.base, {n: orders[n] for n in numbers[:half]})
    h.set_faults(sandbox, "ozon", latency_ms=[8000, 8000])
    assert h.post_webhook(http, serve.base, h.state_changed(SLOW_POSTING))
    acknowledged[SLOW_POSTING] = SLOW_LINES
    h.wait_until(
        lambda: h.event_in_hand(queues, SLOW_POSTING),
        seconds=30,
        what="the worker to take the slow event",
        log=serve,
    )
    acknowledged.update(h.post_postings(http, serve.base, {n: orders[n] for n in numbers[half:]}))
    return acknowledged


def assert_every_acknowledged_event_applied_once(
    ledger: redis.Redis,
    queues: redis.Redis,
    serve: h.Serve,
    acknowledged: dict[str, dict[str, int]],
    *,
    settle_s: float = 30,
) -> None:
    """What a worker held when Redis died comes back (RQ's maintenance, or the inbox's claim
    of entries left pending) and is applied once, with all the rest."""
    h.recover(
        queues,
        serve,
        lambda: set(acknowledged) <= h.applied_orders(ledger),
        seconds=120,
        what="every acknowledged event",
        state=lambda: sorted(set(acknowledged) - h.applied_orders(ledger)),
    )
    h.wait_until(
        lambda: h.events_idle(queues, serve), seconds=settle_s, what="the events to settle"
    )
    assert_applied_exactly_once(ledger, acknowledged)


def assert_channels_converge(
    client: redis.Redis, sandbox: Sandbox, *, seconds: float, channels: tuple[str, ...] = h.CHANNELS
) -> None:
    """Every channel ends at the ledger's available (Ozon may hold a change 30 s per item)."""
    want = {
        name: {h.item_ids(sku)[name]: h.available(client, sku) for sku in h.ITEMS}
        for name in channels
    }

    def converged() -> bool:
        return all(shown(sandbox, name) == want[name] for name in channels)

    seen = h.wait_for(converged, seconds=seconds)
    assert seen, {name: (shown(sandbox, name), want[name]) for name in channels}


# -- 1. SIGKILL of a worker in the middle of a batch -----------------------------------------


def test_sigkill_of_events_worker_mid_batch_loses_nothing_and_applies_once(
    tmp_path: Path, real_server: Any, real_client: redis.Redis, sandbox: Sandbox, orphans: list
) -> None:
    """301 acknowledged Ozon pushes. After the first 100 are applied the events worker is killed
    inside the 101st (answered, not applied) with 100 more acknowledged behind it; the last 100
    arrive while serve starts a new worker. The dead worker's event comes back (RQ's
    maintenance, or the inbox's claim of entries left pending) and is applied once.
    Redelivered pushes change nothing, the journal replays to the counters, and Ozon,
    Wildberries and Yandex Market end at the ledger's numbers."""
    h.catalog(real_client)
    serve = h.start_serve(tmp_path, f"redis://{real_server.host}:{real_server.port}/0", sandbox)
    http = httpx.Client(timeout=15)
    try:
        h.wait_until(lambda: h.polled(real_client, "ozon"), seconds=30, what="the first Ozon poll")
        slow_posting_on_ozon(sandbox)  # after the poll: only the push below tells of it
        set_stock(http, serve.base, dict.fromkeys(h.ITEMS, STOCK))
        orders = batch(300)
        numbers = list(orders)
        acknowledged = h.post_postings(http, serve.base, {n: orders[n] for n in numbers[:100]})
        assert len(acknowledged) == 100
        h.wait_until(
            lambda: h.applied_orders(real_client) == set(acknowledged),
            seconds=60,
            what="the first 100 events",
            log=serve,
        )
        # Reading the slow posting back takes 8 s (the channel's timeout is 10 s): the worker is
        # surely inside that event (acknowledged, not applied) when it is killed, with more
        # acknowledged behind it.
        h.set_faults(sandbox, "ozon", latency_ms=[8000, 8000])
        assert h.post_webhook(http, serve.base, h.state_changed(SLOW_POSTING))
        acknowledged[SLOW_POSTING] = SLOW_LINES
        h.wait_until(
            lambda: h.event_in_hand(real_client, SLOW_POSTING),
            seconds=30,
            what="the worker to take the slow event",
            log=serve,
        )
        acknowledged.update(
            h.post_postings(http, serve.base, {n: orders[n] for n in numbers[100:200]})
        )
        victim = h.worker_pid(serve, "events")
        assert victim is not None
        # Its scheduler (a forked child) outlives it, as it would in production: kill it later.
        orphans.extend(pid for pid, _ in h.children(victim))
        os.kill(victim, signal.SIGKILL)
        h.set_faults(sandbox, "ozon")  # the marketplace answers promptly again
        reader = LedgerReader(real_client)
        assert reader.order("ozon", SLOW_POSTING) is None
        assert len(h.applied_orders(real_client)) < len(acknowledged)
        # The rest of the batch arrives while serve starts a new worker.
        acknowledged.update(
            h.post_postings(http, serve.base, {n: orders[n] for n in numbers[200:]})
        )
        assert len(acknowledged) == len(orders) + 1

        # serve starts a new worker, which applies what was queued; the dead worker's event
        # comes back later and is applied once.
        h.wait_until(
            lambda: h.worker_pid(serve, "events") not in (None, victim),
            seconds=30,
            what="a new events worker",
            log=serve,
        )
        h.recover(
            real_client,
            serve,
            lambda: h.applied_orders(real_client) == set(acknowledged),
            seconds=120,
            what="every acknowledged event",
            state=lambda: sorted(set(acknowledged) - h.applied_orders(real_client)),
        )
        audit = assert_applied_exactly_once(real_client, acknowledged)

        # The marketplace delivers pushes again (every tenth, and the slow one): nothing changes.
        again = {n: orders[n] for n in numbers[::10]}
        assert len(h.post_postings(http, serve.base, again)) == len(again)
        assert h.post_webhook(http, serve.base, h.state_changed(SLOW_POSTING))
        h.wait_until(lambda: h.events_idle(real_client, serve), seconds=60, what="the redelivery")
        assert_applied_exactly_once(real_client, acknowledged)
        assert h.audit(real_client).rows == audit.rows

        assert_channels_converge(real_client, sandbox, seconds=75)
    finally:
        http.close()
        h.stop_serve(serve)


def test_sigkill_of_push_worker_mid_request_still_reaches_the_channel(
    tmp_path: Path, real_server: Any, real_client: redis.Redis, sandbox: Sandbox, orphans: list
) -> None:
    """The push worker is killed while its request to Wildberries is on the wire (the SKU
    claimed, the marketplace not answered yet): the change still reaches Wildberries once the
    dead worker's claim has run out (its lease) and serve's kick has queued the next push."""
    h.catalog(real_client)
    serve = h.start_serve(tmp_path, f"redis://{real_server.host}:{real_server.port}/0", sandbox)
    http = httpx.Client(timeout=15)
    try:
        set_stock(http, serve.base, {"MUG": 100})
        h.wait_until(
            lambda: shown(sandbox, "wb").get("777") == 100, seconds=30, what="wb at 100", log=serve
        )
        # The next push to Wildberries takes seconds: the worker is killed while it waits.
        h.set_faults(sandbox, "wb", latency_ms=[3000, 3000])
        set_stock(http, serve.base, {"MUG": 90})
        dirty = AccountKeys().dirty("wb")
        # The sender holding MUG's claim runs in one of the push workers: that one dies.
        victim = h.wait_for(lambda: h.claim_holder(real_client, "wb", "MUG"), seconds=30)
        assert victim is not None, ("the wb push never went in flight", serve.tail())
        assert victim in [pid for pid, _ in h.children(serve.process.pid)]
        orphans.extend(pid for pid, _ in h.children(victim))
        os.kill(victim, signal.SIGKILL)
        h.set_faults(sandbox, "wb")
        h.wait_until(
            lambda: h.worker_pid(serve, "push") not in (None, victim),
            seconds=30,
            what="restart",
            state=lambda: h.children(serve.process.pid),
        )
        # The dead sender's claim and request slot run out (4 x the request timeout + 10 s):
        # the test moves them on instead of waiting; serve's safety net queues the next push.
        h.expire_push_leases(real_client, "wb")
        reached = h.wait_for(lambda: shown(sandbox, "wb").get("777") == 90, seconds=15)
        assert reached, (shown(sandbox, "wb"), real_client.zrange(dirty, 0, -1))
    finally:
        http.close()
        h.stop_serve(serve)


# -- 2. Redis killed with events in flight ---------------------------------------------------


def test_shipped_servers_fsync_every_write(tmp_path: Path) -> None:
    """A kill -9 of the server cannot show what ``everysec`` risks (the OS keeps the written
    pages; only a power cut or kernel crash loses them), so the setting itself is checked: the
    shipped ``deploy/redis.conf`` and the embedded server both fsync every write."""
    conf = {}
    for line in h.REDIS_CONF.read_text().splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            conf[words[0]] = words[1:]
    assert conf["appendonly"] == ["yes"]
    assert conf["appendfsync"] == ["always"]

    server = ensure_embedded_server(EmbeddedSettings(state_dir=tmp_path / "state"))
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        client.close()
    finally:
        server.stop()


def test_redis_killed_with_events_in_flight_loses_no_acknowledged_event(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """A Valkey server run with the shipped ``deploy/redis.conf`` is killed (-9) while acknowledged
    events wait in the queue and the worker holds one; it restarts on the same directory. Every
    event answered 200, before or after, is applied exactly once; those answered while the server
    was down were answered with an error (the marketplace sends them again).

    A process kill leaves the written AOF in the OS page cache, so this passes with ``everysec``
    too (``test_shipped_servers_fsync_every_write`` guards that setting) and fails without AOF."""
    data = tmp_path / "valkey"
    data.mkdir()
    valkey = ValkeyProcess(data, h.free_port())
    valkey.start()
    client = redis.Redis.from_url(valkey.url)
    serve = None
    http = httpx.Client(timeout=30)
    try:
        config = {h.text(k): h.text(v) for k, v in client.config_get("append*").items()}
        assert (config["appendonly"], config["appendfsync"]) == ("yes", "always")
        h.catalog(client)
        serve = h.start_serve(tmp_path, valkey.url, sandbox)
        h.wait_until(lambda: h.polled(client, "ozon"), seconds=30, what="the first Ozon poll")
        slow_posting_on_ozon(sandbox)
        set_stock(http, serve.base, dict.fromkeys(h.ITEMS, STOCK))
        orders = batch(120)
        numbers = list(orders)
        # The worker is held inside one event while more are acknowledged: events in flight.
        acknowledged = acknowledge_with_one_in_flight(
            http, serve, sandbox, client, {n: orders[n] for n in numbers[:80]}
        )
        assert len(acknowledged) == 81
        applied = h.applied_orders(client)
        assert SLOW_POSTING not in applied
        assert len(applied) < len(acknowledged)

        valkey.kill()
        # While the server is down the webhook answers an error: not acknowledged.
        down = h.post_postings(http, serve.base, {n: orders[n] for n in numbers[80:84]})
        assert down == {}
        valkey.start()
        h.set_faults(sandbox, "ozon")
        acknowledged.update(h.post_postings(http, serve.base, {n: orders[n] for n in numbers[84:]}))
        assert len(acknowledged) == 81 + 36

        assert_every_acknowledged_event_applied_once(client, client, serve, acknowledged)
        # Wildberries and YM follow at once (Ozon's 30 s item window is covered by the first test).
        assert_channels_converge(client, sandbox, seconds=30, channels=("wb", "ym"))
    finally:
        http.close()
        if serve is not None:
            h.stop_serve(serve)
        client.close()
        valkey.stop()


# -- 3. SIGTERM to serve with jobs in hand ---------------------------------------------------


def test_sigterm_to_serve_finishes_the_jobs_in_hand(
    tmp_path: Path, real_server: Any, real_client: redis.Redis, sandbox: Sandbox
) -> None:
    """SIGTERM while an events job waits for Ozon and a push waits for a marketplace: serve
    exits 0, the jobs finished (none failed or left started), the push in flight was settled
    (nothing left claimed), the order was applied whole and every change not pushed yet is
    still marked for the next run."""
    h.catalog(real_client)
    serve = h.start_serve(tmp_path, f"redis://{real_server.host}:{real_server.port}/0", sandbox)
    http = httpx.Client(timeout=15)
    try:
        h.wait_until(lambda: h.polled(real_client, "ozon"), seconds=30, what="the first Ozon poll")
        slow_posting_on_ozon(sandbox)
        # Ozon's and Wildberries' answers take seconds: reading the posting back (an events job)
        # and a stock push (a push job) are both in hand when serve is told to stop.
        h.set_faults(sandbox, "ozon", latency_ms=[5000, 5000])
        h.set_faults(sandbox, "wb", latency_ms=[5000, 5000])
        set_stock(http, serve.base, dict.fromkeys(h.ITEMS, STOCK))
        assert h.post_webhook(http, serve.base, h.state_changed(SLOW_POSTING))

        def both_in_hand() -> bool:
            # A push in flight: a sender (a thread of a push worker) holds a claim.
            slow_push = any(real_client.hlen(AccountKeys().claims(name)) for name in ("ozon", "wb"))
            return slow_push and h.event_in_hand(real_client, SLOW_POSTING)

        h.wait_until(both_in_hand, seconds=30, what="both jobs in hand", log=serve)
        in_hand = [
            job.id
            for queue in (EVENTS_QUEUE, PUSH_QUEUE)
            for job in h.started_jobs(real_client, queue)
        ]
        serve.process.send_signal(signal.SIGTERM)
        assert serve.process.wait(timeout=WORKER_STOP_TIMEOUT_S + 15) == 0, serve.tail()
        # The shutdown said what it waited for, and no worker had to be killed (issue 12: a
        # worker's RQ pub/sub once held every stop for 30 s without a word).
        shutdown = serve.log.read_text(errors="replace")
        assert '"workers_stopping"' in shutdown, serve.tail()
        assert '"workers_stopped"' in shutdown, serve.tail()
        assert '"worker_killed"' not in shutdown, serve.tail()

        for queue in (EVENTS_QUEUE, PUSH_QUEUE):
            ids = h.job_ids(real_client, queue)
            assert (ids["started"], ids["failed"]) == ([], []), (queue, ids)
        assert h.inbox_pending(real_client) == {}
        for job in Job.fetch_many(in_hand, connection=real_client):
            assert job is not None
            assert job.get_status() == JobStatus.FINISHED, (job.func_name, job.args)
        # The posting was applied whole (both lines), and the ledger replays.
        record = LedgerReader(real_client).order("ozon", SLOW_POSTING)
        assert record is not None
        assert record.state is OrderState.RESERVED
        assert {line.sku: line.quantity for line in record.lines} == SLOW_LINES
        assert_applied_exactly_once(real_client, {SLOW_POSTING: SLOW_LINES})
        # The push in flight was settled: nothing is left claimed or holding a request slot.
        for name in h.CHANNELS:
            assert real_client.hlen(AccountKeys().claims(name)) == 0, name
            assert real_client.zcard(AccountKeys().senders(name)) == 0, name
        # Whatever a channel was not sent is still marked for the next run.
        for name in h.CHANNELS:
            for sku in h.ITEMS:
                value = shown(sandbox, name).get(h.item_ids(sku)[name])
                marked = real_client.zscore(AccountKeys().dirty(name), sku) is not None
                assert value == h.available(real_client, sku) or marked, (name, sku, value)
    finally:
        http.close()
        h.stop_serve(serve)
