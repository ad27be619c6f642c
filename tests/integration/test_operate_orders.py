"""``explain``, ``order show``, ``orders check`` and ``oversold`` as a user runs them, on a real
Valkey with the marketplace simulators over loopback (harness from ``test_operate_reconcile``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from inventory_engine.channels import ozon_notifications
from inventory_engine.channels.base import ChannelLine, ChannelOrder
from inventory_engine.domain.models import OrderAction
from inventory_engine.intake.pollers import poll_once
from inventory_engine.metrics.collector import EngineCollector, build_registry
from inventory_engine.service import order_to_dict
from tests.integration.test_operate_reconcile import (  # noqa: F401 - fixtures
    OZON_SKU,
    WB_CHRT,
    Harness,
    harness_fixture,
    sims_fixture,
)

pytestmark = pytest.mark.integration


def create_posting(h: Harness, number: str, quantity: int) -> None:
    body = {"posting_number": number, "products": [{"sku": OZON_SKU, "quantity": quantity}]}
    httpx.post(f"{h.url('ozon')}/_sim/postings", json=body).raise_for_status()


def move_posting(h: Harness, number: str, status: str) -> None:
    url = f"{h.url('ozon')}/_sim/postings/{number}/status"
    httpx.post(url, json={"status": status}).raise_for_status()


def ozon_webhook(h: Harness, number: str, quantity: int) -> None:
    """What the engine queues for Ozon's TYPE_NEW_POSTING notification, applied by a worker."""
    line = ChannelLine(str(OZON_SKU), quantity)
    h.engine.queue_order_events(
        "ozon", [ChannelOrder(number, OrderAction.RESERVE, "awaiting_packaging", lines=(line,))]
    )
    h.work()


def by_order(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["order_id"]: c for ch in payload["channels"] for c in ch["checks"]}


# -- explain -------------------------------------------------------------------------------------


def test_explain_shows_the_chain_from_each_change_to_the_pushes_that_followed(harness):
    create_posting(harness, "P-1", 2)
    ozon_webhook(harness, "P-1", 2)
    harness.engine.ledger.adjust_on_hand("MUG", -1, reason="damaged in transit", source="cli")
    harness.engine.schedule_pushes()
    harness.work()

    code, payload = harness.json("explain", "MUG")
    assert code == 0
    steps = [
        (s["entry"]["op"], s["entry"]["channel"], s["entry"]["order_id"]) for s in payload["steps"]
    ]
    assert steps == [
        ("adjust_on_hand", "cli", ""),
        ("reserve", "ozon", "P-1"),
        ("set_on_hand", "api", ""),
    ]
    adjust, reserve, initial = payload["steps"]
    assert (adjust["entry"]["on_hand_before"], adjust["entry"]["on_hand_after"]) == (10, 9)
    assert adjust["entry"]["reason"] == "damaged in transit"
    pushed = {(p["channel"], p["quantity"], p["outcome"]) for p in adjust["pushes"]}
    assert pushed == {("wb", 7, "accepted"), ("ym", 7, "accepted")}
    assert {(p["channel"], p["quantity"]) for p in reserve["pushes"]} == {("wb", 8), ("ym", 8)}
    assert {(p["channel"], p["quantity"]) for p in initial["pushes"]} == {
        ("ozon", 10),
        ("wb", 10),
        ("ym", 10),
    }
    # Ozon took 10 less than 30 s ago: its 7 waits for the item window, in flight.
    now = {c["channel"]: c["marks"] for c in payload["channels"]}
    assert (now["ozon"]["expected"], now["ozon"]["accepted"]) == (7, 10)
    assert now["ozon"]["pending_since_ms"] is not None
    assert now["ozon"]["not_before_ms"] is not None
    assert (now["wb"]["expected"], now["wb"]["accepted"]) == (7, 7)

    table = harness.run("explain", "MUG", "--limit", "2")
    assert table.exit_code == 0, table.output
    assert "damaged in" in table.stdout
    assert "on hand 10 → 9" in table.stdout
    assert "sent 7: accepted" in table.stdout
    assert "set_on_hand" not in table.stdout  # --limit 2

    unknown = harness.run("explain", "NOPE")
    assert unknown.exit_code == 1
    assert "unknown SKU NOPE" in unknown.output


# -- order show ----------------------------------------------------------------------------------


def test_order_show_gives_events_state_lines_and_the_pushes_it_caused(harness):
    create_posting(harness, "P-1", 2)
    ozon_webhook(harness, "P-1", 2)

    code, payload = harness.json("order", "show", "ozon", "P-1")
    assert code == 0
    assert [(e["stage"], e["source"], e["action"]) for e in payload["events"]] == [
        ("received", "webhook", "reserve"),
        ("applied", "worker", "reserve"),
    ]
    assert payload["ledger"]["state"] == "reserved"
    assert payload["ledger"]["lines"] == [{"sku": "MUG", "quantity": 2}]
    assert {(p["channel"], p["sku"], p["quantity"], p["outcome"]) for p in payload["pushes"]} == {
        ("wb", "MUG", 8, "accepted"),
        ("ym", "MUG", 8, "accepted"),
    }

    table = harness.run("order", "show", "ozon", "P-1")
    assert table.exit_code == 0
    assert "reserved" in table.stdout
    assert "2×MUG" in table.stdout

    never = harness.run("order", "show", "ozon", "P-404")
    assert never.exit_code == 1
    assert "never received" in never.output
    assert "configured" not in never.output

    # Issue 12: a channel name that is not configured says so, not just "never received".
    stranger = harness.run("order", "show", "amazon", "123")
    assert stranger.exit_code == 1
    assert "no channel named 'amazon' is configured" in " ".join(stranger.output.split())


def test_order_show_lists_the_marketplace_states_the_engine_does_not_recognise(harness):
    """Issue 12 item 9: a state no status rule knows was ignored silently."""
    create_posting(harness, "P-1", 1)
    ozon_webhook(harness, "P-1", 1)
    push = {
        "message_type": "TYPE_STATE_CHANGED",
        "posting_number": "P-1",
        "new_state": "posting_teleported",
        "changed_state_date": "2025-01-16T10:00:00Z",
        "warehouse_id": 1,
    }
    with capture_logs() as logs:
        queued = harness.engine.queue_order_events(
            "ozon", ozon_notifications.parse_notification(push).orders
        )
    assert queued == 0  # ignored, as before: a new state must not break intake
    [warning] = [e for e in logs if e["event"] == "order_state_unrecognised"]
    assert (warning["log_level"], warning["states"]) == ("warning", ["posting_teleported"])

    code, payload = harness.json("order", "show", "ozon", "P-1")
    assert code == 0
    assert payload["unrecognised_states"] == ["posting_teleported"]
    assert payload["ledger"]["state"] == "reserved"
    table = harness.run("order", "show", "ozon", "P-1")
    said = " ".join(table.stdout.split())
    assert "states the engine does not recognise: posting_teleported" in said

    collector = EngineCollector(
        harness.engine.client,
        queues={"events": harness.engine.events, "push": harness.engine.pushes},
        channels=list(harness.engine.channel_settings),
    )
    scraped = generate_latest(build_registry(collector)).decode()
    assert (
        'inventory_unrecognised_states_total{account="default",channel="ozon",'
        'state="posting_teleported"} 1.0' in scraped
    )


# -- orders check --------------------------------------------------------------------------------


def test_orders_check_names_orders_the_engine_never_heard_of(harness):
    create_posting(harness, "P-1", 1)
    ozon_webhook(harness, "P-1", 1)  # known and in the same state: ok
    create_posting(harness, "P-2", 1)  # the notification never came, no poll ran
    httpx.post(f"{harness.url('wb')}/_sim/orders", json={"chrtId": WB_CHRT}).raise_for_status()
    ym_order = {"items": [{"offerId": "MUG", "count": 1}]}
    httpx.post(f"{harness.url('ym')}/_sim/orders", json=ym_order).raise_for_status()

    code, payload = harness.json("orders", "check", "--since", "1h")
    assert code == 1
    assert payload["ok"] is False
    checks = by_order(payload)
    assert "P-1" not in checks  # fine orders are not listed without --all
    assert checks["P-2"]["verdict"] == "missing"
    assert checks["P-2"]["reason"].startswith("never received (webhook not configured?")
    wb = [c for c in checks.values() if c["channel"] == "wb"]
    ym = [c for c in checks.values() if c["channel"] == "ym"]
    assert [c["verdict"] for c in wb] == ["missing"]
    assert "poller" in wb[0]["reason"]
    assert [c["verdict"] for c in ym] == ["missing"]

    table = harness.run("orders", "check", "--channel", "ozon")
    assert table.exit_code == 1
    assert "P-2" in table.stdout
    assert "never received" in table.stdout

    # A poll picks them up: nothing is missing any more.
    for channel in ("ozon", "wb", "ym"):
        assert poll_once(harness.engine, channel).ok
    harness.work()
    code, payload = harness.json("orders", "check", "--since", "1h", "--all")
    assert code == 0, payload
    assert {c["verdict"] for c in by_order(payload).values()} == {"ok"}


def test_orders_check_names_a_state_difference_and_an_event_in_flight(harness):
    create_posting(harness, "P-1", 1)
    ozon_webhook(harness, "P-1", 1)
    move_posting(harness, "P-1", "cancelled")  # Ozon's cancel notification is lost
    create_posting(harness, "P-3", 1)
    create_posting(harness, "P-9", 1)  # its event's job failed: Ozon was failing then
    httpx.put(f"{harness.url('ozon')}/_sim/faults", json={"error_rate": 1.0}).raise_for_status()
    lost = ChannelOrder("P-9", OrderAction.RESERVE, "awaiting_packaging", needs_lines=True)
    harness.engine.events.enqueue("workers.jobs.apply_order_event", "ozon", order_to_dict(lost))
    harness.work()
    httpx.put(f"{harness.url('ozon')}/_sim/faults", json={}).raise_for_status()
    harness.engine.queue_order_events(  # received, but no worker has applied it yet
        "ozon",
        [ChannelOrder("P-3", OrderAction.RESERVE, "awaiting_packaging", needs_lines=True)],
    )

    code, payload = harness.json("orders", "check", "--channel", "ozon")
    assert code == 1
    checks = by_order(payload)
    assert checks["P-9"]["verdict"] == "missing"
    assert "its job failed" in checks["P-9"]["reason"]
    assert checks["P-1"]["verdict"] == "differs"
    assert checks["P-1"]["ledger_state"] == "reserved"
    assert "never received" in checks["P-1"]["reason"]
    assert checks["P-3"]["verdict"] == "in_flight"
    assert checks["P-3"]["reason"] == "received, queued"

    bad = harness.run("orders", "check", "--since", "yesterday")
    assert bad.exit_code == 2
    assert "not a duration" in bad.output


def test_orders_check_compares_lines_not_only_states(harness):
    """Issue 12 item 7: a posting whose lines were all unknown showed ``ok``, exit 0."""
    create_posting(harness, "P-1", 1)
    ozon_webhook(harness, "P-1", 1)  # same state, same lines: ok
    # Sold on Ozon, but missing from the engine's catalog.
    saucer = {"products": [{"offer_id": "SAUCER", "sku": 999}]}
    httpx.post(f"{harness.url('ozon')}/_sim/products", json=saucer).raise_for_status()
    body = {"posting_number": "P-U", "products": [{"sku": 999, "quantity": 2}]}
    httpx.post(f"{harness.url('ozon')}/_sim/postings", json=body).raise_for_status()
    unknown = ChannelOrder(
        "P-U", OrderAction.RESERVE, "awaiting_packaging", lines=(ChannelLine("999", 2),)
    )
    harness.engine.queue_order_events("ozon", [unknown])
    harness.work()  # recorded as reserved, its one line parked: the catalog has no sku 999
    create_posting(harness, "P-Q", 2)
    ozon_webhook(harness, "P-Q", 1)  # the event said 1, the posting holds 2

    code, payload = harness.json("orders", "check", "--channel", "ozon")
    assert code == 1
    assert payload["ok"] is False
    checks = by_order(payload)
    assert set(checks) == {"P-U", "P-Q"}
    assert (checks["P-U"]["verdict"], checks["P-U"]["ledger_state"]) == ("differs", "reserved")
    assert checks["P-U"]["lines"] == ["line unknown to the catalog: ozon sku 999 ×2"]
    assert checks["P-Q"]["lines"] == ["quantity differs for MUG: ledger 1, marketplace 2"]
    assert checks["P-Q"]["reason"] == f"lines differ: {checks['P-Q']['lines'][0]}"

    table = harness.run("orders", "check", "--channel", "ozon")
    assert table.exit_code == 1
    assert "P-U" in table.stdout
    assert "differs" in table.stdout


# -- oversold ------------------------------------------------------------------------------------


def test_an_oversold_ozon_posting_is_listed_until_it_is_cancelled(harness):
    create_posting(harness, "P-7", 12)  # 12 ordered, 10 on hand
    assert poll_once(harness.engine, "ozon").ok  # the unfulfilled list finds it
    harness.work()

    code, payload = harness.json("oversold")
    assert code == 1  # it still needs a person
    [line] = payload
    assert (line["channel"], line["order_id"], line["sku"], line["shortfall"]) == (
        "ozon",
        "P-7",
        "MUG",
        2,
    )
    assert line["state"] == "reserved"
    assert line["needs_action"] is True
    assert "reason 352" in line["advice"]
    table = harness.run("oversold")
    assert "P-7" in table.stdout
    assert "reason 352" in table.stdout

    move_posting(harness, "P-7", "cancelled")
    assert poll_once(harness.engine, "ozon").ok
    harness.work()
    code, payload = harness.json("oversold")
    assert code == 0
    assert [(x["order_id"], x["state"], x["needs_action"]) for x in payload] == [
        ("P-7", "released", False)
    ]
    assert harness.json("oversold", "--open") == (0, [])
