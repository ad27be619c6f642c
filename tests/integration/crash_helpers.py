"""Helpers of ``test_crashes.py``: a real ``serve`` with its worker processes, a Valkey server
started from ``deploy/redis.conf``, the processes to kill, and an audit of the ledger that replays
the journal against the counters."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis
from rq import Queue, SimpleWorker, Worker
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry

from inventory_engine.ledger.catalog import CatalogEntry, CatalogStore
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.service import EVENTS_QUEUE
from inventory_engine.simulators import ozon, wildberries, yandex_market
from inventory_engine.simulators.sandbox import Sandbox
from tests.integration.conftest import TOKEN, free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
REDIS_CONF = REPO / "deploy" / "redis.conf"
CHANNELS = ("ozon", "wb", "ym")
ITEMS = {
    # sku: (ozon sku, wb chrt id); the offer ids (Ozon, YM) are the SKU itself.
    "MUG": (555, 777),
    "CUP": (556, 778),
}
POLL_INTERVAL_S = 3600
"""The pollers read the marketplaces once at start and then not again during a test: every
event of a test is one the test sent, so it can tell which were acknowledged."""


def catalog(client: redis.Redis) -> None:
    """List MUG and CUP on every channel."""
    CatalogStore(client, channels=list(CHANNELS)).import_entries(
        [
            CatalogEntry(sku=sku, ozon_offer_id=sku, ozon_sku=oz, wb_chrt_id=wb, ym_offer_id=sku)
            for sku, (oz, wb) in ITEMS.items()
        ]
    )


def config_text(
    redis_url: str,
    sandbox: Sandbox,
    http_port: int,
    *,
    workers: int = 2,
    queue_url: str | None = None,
) -> str:
    poll = f"poll_interval_s = {POLL_INTERVAL_S}"
    queues = "" if queue_url is None else f'queue_url = "{queue_url}"'
    return f"""
[redis]
url = "{redis_url}"
{queues}
[http]
host = "127.0.0.1"
port = {http_port}
api_token = "{TOKEN}"
[workers]
count = {workers}
[[channels]]
name = "ozon"
kind = "ozon"
base_url = "{sandbox.url("ozon")}"
client_id = "{ozon.SANDBOX_CLIENT_ID}"
api_key = "{ozon.SANDBOX_API_KEY}"
warehouse_id = {ozon.SANDBOX_WAREHOUSE_ID}
{poll}
[[channels]]
name = "wb"
kind = "wildberries"
base_url = "{sandbox.url("wb")}"
token = "{wildberries.SANDBOX_TOKEN}"
warehouse_id = {wildberries.SANDBOX_WAREHOUSE_ID}
{poll}
[[channels]]
name = "ym"
kind = "yandex_market"
base_url = "{sandbox.url("ym")}"
api_key = "{yandex_market.SANDBOX_API_KEY}"
campaign_id = {yandex_market.SANDBOX_CAMPAIGN_ID}
business_id = {yandex_market.SANDBOX_BUSINESS_ID}
{poll}
"""


# -- processes ------------------------------------------------------------------------------------


@dataclass
class Serve:
    """A running ``inventory-engine serve``."""

    base: str
    process: subprocess.Popen[bytes]
    log: Path
    config: Path

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def start_serve(
    tmp: Path,
    redis_url: str,
    sandbox: Sandbox,
    *,
    workers: int = 2,
    queue_url: str | None = None,
) -> Serve:
    port = free_port()
    config = tmp / "config.toml"
    config.write_text(config_text(redis_url, sandbox, port, workers=workers, queue_url=queue_url))
    log = tmp / "serve.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "inventory_engine", "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    serve = Serve(f"http://127.0.0.1:{port}", process, log, config)
    ready = wait_for(lambda: httpx.get(f"{serve.base}/readyz").status_code == 200)
    assert ready, "serve did not become ready:\n" + serve.tail()
    return serve


def polled(client: redis.Redis, channel: str) -> bool:
    """Whether serve's poller has read ``channel`` once (its next poll is an hour away)."""
    return client.hget(AccountKeys().poll(channel).state, "polled_ms") is not None


def stop_serve(serve: Serve, *, timeout_s: float = 40) -> int | None:
    """SIGTERM and wait; SIGKILL if it does not stop. Returns the exit code."""
    if serve.process.poll() is None:
        serve.process.send_signal(signal.SIGTERM)
        try:
            serve.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            serve.process.kill()
            serve.process.wait(timeout=10)
    return serve.process.returncode


def children(pid: int) -> list[tuple[int, str]]:
    """Live child processes of ``pid``: (pid, command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # The command name in parentheses may hold spaces: split after its closing ")".
            fields = stat[stat.rindex(")") + 2 :].split()
            state, ppid = fields[0], int(fields[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, ValueError):
            continue
        if ppid == pid and state != "Z":
            found.append((int(entry.name), cmdline))
    return found


def worker_pid(serve: Serve, queue: str) -> int | None:
    """The pid of serve's worker process on ``queue`` (``events`` or ``push``)."""
    for pid, cmdline in children(serve.process.pid):
        if "worker" in cmdline and f"--queues {queue}" in cmdline:
            return pid
    return None


def kill_all(pids: list[int]) -> None:
    """SIGKILL these processes (ones the test started or orphaned), ignoring gone ones."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# -- webhooks -------------------------------------------------------------------------------------


def new_posting(number: str, lines: dict[str, int]) -> dict[str, Any]:
    """Ozon's TYPE_NEW_POSTING push for ``lines`` (sku -> quantity)."""
    return {
        "message_type": "TYPE_NEW_POSTING",
        "posting_number": number,
        "products": [{"sku": ITEMS[sku][0], "quantity": q} for sku, q in lines.items()],
        "in_process_at": "2026-11-22T10:00:00Z",
        "warehouse_id": ozon.SANDBOX_WAREHOUSE_ID,
        "seller_id": 15,
    }


def state_changed(number: str, new_state: str = "posting_created") -> dict[str, Any]:
    """Ozon's TYPE_STATE_CHANGED push: no products, so the worker reads the posting back."""
    return {
        "message_type": "TYPE_STATE_CHANGED",
        "posting_number": number,
        "new_state": new_state,
        "changed_state_date": "2026-11-22T10:00:01Z",
        "warehouse_id": ozon.SANDBOX_WAREHOUSE_ID,
        "seller_id": 15,
    }


def post_webhook(http: httpx.Client, base: str, payload: dict[str, Any]) -> bool:
    """POST an Ozon push; True only for Ozon's acknowledgement (200 ``{"result": true}``)."""
    try:
        answer = http.post(f"{base}/webhooks/ozon", json=payload)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200 and answer.json() == {"result": True}


def post_postings(
    http: httpx.Client, base: str, postings: dict[str, dict[str, int]], *, threads: int = 8
) -> dict[str, dict[str, int]]:
    """POST a TYPE_NEW_POSTING for each posting, several at a time; returns the acknowledged."""
    with ThreadPoolExecutor(threads) as pool:
        answers = pool.map(
            lambda number: post_webhook(http, base, new_posting(number, postings[number])),
            list(postings),
        )
        return {n: postings[n] for n, ok in zip(list(postings), answers, strict=True) if ok}


def set_faults(sandbox: Sandbox, name: str, **faults: Any) -> None:
    httpx.put(f"{sandbox.url(name)}/_sim/faults", json=faults).raise_for_status()


# -- queues ---------------------------------------------------------------------------------------


def job_ids(client: redis.Redis, queue_name: str) -> dict[str, list[str]]:
    """Job ids per place: queued, intermediate (taken by a worker, not started yet), started,
    finished, failed, scheduled."""
    queue = Queue(queue_name, connection=client)
    return {
        "queued": queue.get_job_ids(),
        "intermediate": queue.intermediate_queue.get_job_ids(),
        "started": StartedJobRegistry(queue=queue).get_job_ids(cleanup=False),
        "finished": FinishedJobRegistry(queue=queue).get_job_ids(),
        "failed": FailedJobRegistry(queue=queue).get_job_ids(),
        "scheduled": queue.scheduled_job_registry.get_job_ids(),
    }


def started_jobs(client: redis.Redis, queue_name: str) -> list[Job]:
    ids = job_ids(client, queue_name)["started"]
    return [job for job in Job.fetch_many(ids, connection=client) if job is not None]


def worker_of(client: redis.Redis, job: Job) -> int | None:
    """The pid of the worker process a started job is registered to, if it is registered."""
    if not job.worker_name:
        return None
    worker = Worker.find_by_key(
        Worker.redis_worker_namespace_prefix + job.worker_name, connection=client
    )
    return worker.pid if worker is not None else None


def abandoned_when_idle(client: redis.Redis, queue_name: str, serve: Serve) -> list[str] | None:
    """Once nothing is queued or waiting for a retry and no live worker holds a job: the ids of
    jobs a dead worker left behind, registered as started or only taken off the queue (RQ's
    intermediate list). None while there is work in progress."""
    queue = Queue(queue_name, connection=client)
    taken = queue.intermediate_queue.get_job_ids()  # read first: a job moves queue -> taken
    ids = job_ids(client, queue_name)
    if ids["queued"] or ids["scheduled"]:
        return None
    live = {pid for pid, _ in children(serve.process.pid)}
    started = started_jobs(client, queue_name)
    if any(worker_of(client, job) in live for job in started):
        return None
    started_ids = [job.id for job in started]
    return started_ids + [job_id for job_id in taken if job_id not in started_ids]


def expire_abandoned(client: redis.Redis, queue_name: str, *, after_s: float) -> list[str]:
    """What the workers' maintenance does to a dead worker's jobs, ``after_s`` from now.

    A SimpleWorker registers a job as started until ``job_timeout + 60`` s from its start (it
    does not heartbeat during a job); a job only taken off the queue (the worker died between
    RQ's BLMOVE and registering it) is handled once it has been seen there for a minute.
    Maintenance, every ``MAINTENANCE_INTERVAL_S`` in each worker, then retries such a job (or
    moves it to the failed registry when it has no retries). Waiting minutes has no place in a
    test, so this runs the same RQ cleanups as if ``after_s`` had passed. Returns the job ids.
    """
    queue = Queue(queue_name, connection=client)
    registry = StartedJobRegistry(queue=queue)
    later = time.time() + after_s
    expired = [str(job_id) for job_id in registry.get_expired_job_ids(later)]
    registry.cleanup(timestamp=later)
    taken = queue.intermediate_queue
    stuck = [job_id for job_id in taken.get_job_ids() if job_id not in registry]
    for job_id in stuck:  # first seen there ``after_s`` ago
        client.set(taken.get_first_seen_key(job_id), time.time() - after_s, ex=3600)
    if stuck:
        taken.cleanup(SimpleWorker([queue], connection=client), queue)
    return expired + stuck


def expire_push_leases(client: redis.Redis, channel: str) -> list[str]:
    """Let the leases on ``channel``'s claimed SKUs and request slots run out now (minutes
    early): what the clock does to a dead push worker's claims. The next claim marks them
    again."""
    keys = AccountKeys()
    skus = [text(sku) for sku in client.zrange(keys.inflight(channel), 0, -1)]
    if skus:
        client.zadd(keys.inflight(channel), dict.fromkeys(skus, 0), xx=True)
    tokens = [text(t) for t in client.zrange(keys.senders(channel), 0, -1)]
    if tokens:
        client.zadd(keys.senders(channel), dict.fromkeys(tokens, 0), xx=True)
    return skus


def claim_holder(client: redis.Redis, channel: str, sku: str) -> int | None:
    """The pid of the process whose sender holds ``sku``'s claim on ``channel`` (the owner
    token is ``<host>/<pid>/<random>``), None when it is not claimed."""
    raw = client.hget(AccountKeys().claims(channel), sku)
    if raw is None:
        return None
    return int(text(raw).split()[0].split("/")[1])


# -- events, whichever way the engine queues them ---------------------------------------------
#
# An acknowledged event waits either as its own RQ job on the events queue, or as an entry of
# the inbox stream that guarded drain jobs apply in batches (a dead worker's entries stay
# pending and are claimed by a later drain). These helpers look at both.

try:
    from inventory_engine.inbox import GROUP as INBOX_GROUP
except ImportError:  # an engine without an inbox: one RQ job per event
    INBOX_GROUP = None


def inbox_pending(client: redis.Redis) -> dict[str, str]:
    """Inbox entries delivered to a worker and not acknowledged: entry id -> order id."""
    if INBOX_GROUP is None:
        return {}
    key = f"{AccountKeys().base}:inbox"
    try:
        rows = client.xpending_range(key, INBOX_GROUP, min="-", max="+", count=100_000)
    except redis.ResponseError:  # no stream or no group yet
        return {}
    pending = {}
    for row in rows:
        entry_id = text(row["message_id"])
        for _, fields in client.xrange(key, min=entry_id, max=entry_id):
            event = json.loads(text(dict(fields)[b"e"]))
            pending[entry_id] = str(event["order_id"])
    return pending


def events_idle(client: redis.Redis, serve: Serve) -> bool:
    """No event job queued, waiting for a retry or held by a live worker, no inbox entry left
    (jobs of dead workers are left to :func:`recover`)."""
    inbox = f"{AccountKeys().base}:inbox"
    return abandoned_when_idle(client, EVENTS_QUEUE, serve) is not None and not client.xlen(inbox)


def event_in_hand(client: redis.Redis, order_id: str) -> bool:
    """A worker has taken the event of ``order_id`` and not finished it."""
    for job in started_jobs(client, EVENTS_QUEUE):
        if len(job.args) == 2 and job.args[1].get("order_id") == order_id:
            return True
    return order_id in inbox_pending(client).values()


def recover(
    client: redis.Redis, serve: Serve, done: Any, *, seconds: float, what: str, state: Any = None
) -> None:
    """Wait until ``done()``, letting time pass for a dead worker's events as it would: jobs it
    left registered in RQ are expired (:func:`expire_abandoned`) once the events queue is idle;
    inbox entries it left pending are claimed by a drain after ``CLAIM_IDLE_MS`` (serve's kick
    queues one while the inbox is not empty), for real."""

    def check() -> bool:
        if done():
            return True
        if abandoned_when_idle(client, EVENTS_QUEUE, serve):
            expire_abandoned(client, EVENTS_QUEUE, after_s=EVENT_JOB_EXPIRY_S)
        return False

    wait_until(check, seconds=seconds, what=what, log=serve, state=state)


EVENT_JOB_EXPIRY_S = 60 + 60 + 5
"""An event job (``job_timeout`` 60 s) stays registered as started this long after its worker
died (job_timeout + 60 s), plus a margin."""


# -- the ledger's own consistency -----------------------------------------------------------------


@dataclass
class Audit:
    """The journal replayed: per (location, sku) the chain of before -> after must be unbroken
    from zero and end at the counters; reserve rows are counted per (channel, order, sku)."""

    counters: dict[str, tuple[int, int]]
    replayed: dict[str, tuple[int, int]]
    breaks: list[str]
    reserve_rows: Counter[tuple[str, str, str]]
    rows: int

    def assert_consistent(self) -> None:
        assert not self.breaks, self.breaks[:5]
        assert self.replayed == self.counters


def audit(client: redis.Redis, account: str = "default") -> Audit:
    keys = AccountKeys(account)
    on_hand = {text(k): int(v) for k, v in client.hgetall(keys.on_hand).items()}
    reserved = {text(k): int(v) for k, v in client.hgetall(keys.reserved).items()}
    counters = {f: (on_hand.get(f, 0), reserved.get(f, 0)) for f in set(on_hand) | set(reserved)}
    replayed: dict[str, tuple[int, int]] = {}
    breaks: list[str] = []
    reserve_rows: Counter[tuple[str, str, str]] = Counter()
    rows = client.xrange(keys.journal)
    for entry_id, raw in rows:
        row = {text(k): text(v) for k, v in raw.items()}
        key = AccountKeys.stock_field(row["location"], row["sku"])
        before = (int(row["on_hand_before"]), int(row["reserved_before"]))
        if replayed.get(key, (0, 0)) != before:
            breaks.append(f"{text(entry_id)} {key}: {replayed.get(key, (0, 0))} then {before}")
        replayed[key] = (int(row["on_hand_after"]), int(row["reserved_after"]))
        if row["op"] == "reserve":
            reserve_rows[(row["channel"], row["order"], row["sku"])] += 1
    return Audit(counters, replayed, breaks, reserve_rows, len(rows))


def applied_orders(client: redis.Redis) -> set[str]:
    """Orders with a reserve row in the journal."""
    return {order for _, order, _ in audit(client).reserve_rows}


def available(client: redis.Redis, sku: str, location: str = "main") -> int:
    keys = AccountKeys()
    field_ = AccountKeys.stock_field(location, sku)
    return int(client.hget(keys.on_hand, field_) or 0) - int(
        client.hget(keys.reserved, field_) or 0
    )


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def item_ids(sku: str) -> dict[str, str]:
    """What each simulator calls ``sku`` in its state."""
    return {"ozon": sku, "wb": str(ITEMS[sku][1]), "ym": sku}


def wait_until(
    check: Any, *, seconds: float, what: str, log: Serve | None = None, state: Any = None
) -> Any:
    """``wait_for`` that fails with what it waited for, ``state()`` and the end of serve's log."""
    value = wait_for(check, seconds=seconds)
    if not value:
        detail = f"\nstate: {state()}" if state is not None else ""
        detail += f"\n{log.tail()}" if log is not None else ""
        raise AssertionError(f"timed out waiting for {what}{detail}")
    return value
