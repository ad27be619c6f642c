"""Issue 14 §3: a retired endpoint met by a poller is not a passing failure either: logged at
error level, counted in ``inventory_api_errors_total`` and waited out with the same growing
pause as the push path (1 min, doubling)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from structlog.testing import capture_logs

from inventory_engine.channels.base import ChannelEndpointRetiredError
from inventory_engine.config import Settings
from inventory_engine.intake.pollers import poll_once
from inventory_engine.metrics import definitions as m
from inventory_engine.metrics.recorder import parse_field
from inventory_engine.service import Engine
from tests.unit.test_pollers import FakeFeed, oz

ENDPOINT = "POST /v3/posting/fbs/list"


@pytest.fixture
def engine() -> Iterator[Engine]:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    yield Engine(Settings(), client, channels=[oz()])
    client.close()


def retired() -> ChannelEndpointRetiredError:
    return ChannelEndpointRetiredError("ozon", 410, "gone", endpoint=ENDPOINT)


def api_errors(engine: Engine) -> dict[tuple[str, ...], int]:
    stored: dict[Any, Any] = engine.client.hgetall(engine.ledger.keys.metrics)  # type: ignore[assignment]
    out: dict[tuple[str, ...], int] = {}
    for field, value in stored.items():
        name, labels, _ = parse_field(field.decode())
        if name == m.API_ERRORS.name:
            out[labels] = int(value)
    return out


def test_a_retired_list_method_pauses_the_poller_growing_and_is_counted(monkeypatch, engine):
    monkeypatch.setattr(engine, "channel", lambda name: FakeFeed({None: retired()}, []))
    with capture_logs() as logs:
        first = poll_once(engine, "ozon")
        second = poll_once(engine, "ozon")
    assert not first.ok
    assert (first.retry_after_s, second.retry_after_s) == (60.0, 120.0)
    said = [e for e in logs if e["event"] == "channel_endpoint_retired"]
    assert [e["log_level"] for e in said] == ["error", "error"]
    assert said[0]["where"] == "poll"
    assert api_errors(engine) == {("ozon", "410", ENDPOINT): 2}
