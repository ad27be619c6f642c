"""``inventory-engine serve`` as a user runs it: a real process with its RQ worker processes,
configured channels pointing at the simulators, webhooks over HTTP, SIGTERM to stop."""

from __future__ import annotations

import signal

import httpx
import pytest

from tests.integration.conftest import AUTH, shown, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_serve_ozon_posting_reaches_wb_and_ym_then_stops_cleanly(start_engine):
    engine = start_engine()
    base, sandbox, process = engine.base, engine.sandbox, engine.process
    assert httpx.put(f"{base}/v1/stock/MUG", json={"on_hand": 10}, headers=AUTH).status_code == 200
    assert wait_for(lambda: shown(sandbox, "wb") == {"777": 10})

    posting = {
        "message_type": "TYPE_NEW_POSTING",
        "posting_number": "P-9",
        "products": [{"sku": 555, "quantity": 2}],
        "in_process_at": "2026-11-22T10:00:00Z",
        "seller_id": 15,
    }
    answer = httpx.post(f"{base}/webhooks/ozon", json=posting)
    assert answer.json() == {"result": True}
    assert wait_for(lambda: shown(sandbox, "wb") == {"777": 8})
    assert shown(sandbox, "ym") == {"MUG": 8}
    stock = httpx.get(f"{base}/v1/stock/MUG", headers=AUTH).json()
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (10, 2, 8)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=40) == 0
