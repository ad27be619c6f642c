"""Issue 14 §2/§3 without Redis: the ``limits`` table and its checks against the documented
limits, WB's token types, ``channels show``, retired endpoints told apart from missing items,
and WB's bill of 10 requests for every 4xx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from inventory_engine.channels.base import (
    ChannelEndpointRetiredError,
    ChannelRateLimitedError,
    ChannelRejectedError,
    StockUpdate,
)
from inventory_engine.channels.http import is_retired_answer, send
from inventory_engine.channels.wildberries import WildberriesClient
from inventory_engine.cli import app
from inventory_engine.config import load_settings
from inventory_engine.errors import ConfigError
from inventory_engine.limit_settings import SHARED_BUDGETS
from inventory_engine.operate.pacing import READ_LIMITS, read_limits
from inventory_engine.sync.limits import LIMITS, WB_BASIC_LIMITS, YM_V3_LIMITS, effective_limits

WB = {"kind": "wildberries", "name": "wb", "base_url": "http://x", "token": "t", "warehouse_id": 1}
OZON = {
    "kind": "ozon",
    "name": "oz",
    "base_url": "http://x",
    "client_id": "1",
    "api_key": "k",
    "warehouse_id": 1,
}
YM = {
    "kind": "yandex_market",
    "name": "ym",
    "base_url": "http://x",
    "api_key": "k",
    "campaign_id": 1,
    "business_id": 2,
}


def channel(**entry: Any) -> Any:
    return load_settings(channels=[entry]).channels[0]


# -- settings ----------------------------------------------------------------------------------


def test_no_limits_table_means_the_kinds_defaults() -> None:
    for entry in (WB, OZON, YM):
        settings = channel(**entry)
        assert effective_limits(settings) == LIMITS[settings.kind]


def test_a_limits_table_overrides_only_what_it_sets() -> None:
    limits = effective_limits(
        channel(**OZON, limits={"rate_per_minute": 40, "item_window_s": 120, "concurrency": 1})
    )
    assert limits.bucket_rate_per_s == pytest.approx(40 / 60)
    assert limits.item_window_s == 120  # older docs' 2 min: allowed, it is slower
    assert limits.concurrency == 1
    assert limits.max_batch == LIMITS["ozon"].max_batch
    assert limits.bucket_capacity == LIMITS["ozon"].bucket_capacity


@pytest.mark.parametrize(
    ("entry", "limits", "documented"),
    [
        (OZON, {"rate_per_minute": 100}, "documented 80"),
        (OZON, {"items_per_request": 101}, "documented 100"),
        (OZON, {"item_window_s": 10}, "documented 30 s"),
        (WB, {"burst": 25}, "documented 20"),
        (WB, {"rate_per_minute": 301}, "documented 300"),
        ({**WB, "token_type": "basic"}, {"rate_per_minute": 200}, "documented 150"),
        ({**WB, "token_type": "basic"}, {"burst": 11}, "documented 10"),
        (YM, {"concurrency": 5}, "documented 4"),
        (YM, {"items_per_request": 2_001}, "documented 2000"),
    ],
)
def test_a_value_beyond_the_documented_limit_is_refused_naming_it(
    entry: dict[str, Any], limits: dict[str, Any], documented: str
) -> None:
    with pytest.raises(ConfigError) as error:
        channel(**entry, limits=limits)
    assert documented in str(error.value)
    assert "force = true" in str(error.value)
    # ...unless the table says force = true.
    forced = channel(**entry, limits={**limits, "force": True})
    assert forced.limits.force


def test_wb_reads_and_pushes_are_checked_together_against_the_shared_limit() -> None:
    # The defaults split WB's 300/min: 288 pushes + 6 reads (basic token: 144 + 3 of 150).
    for token_type, documented in (("personal", 300), ("basic", 150)):
        budget = SHARED_BUDGETS[f"wildberries:{token_type}"]
        assert budget.push_per_minute + budget.read_per_minute <= documented
    assert channel(**WB, limits={"read_per_minute": 12}).limits.read_per_minute == 12
    with pytest.raises(ConfigError, match=r"288 \+ 20 is above the documented 300"):
        channel(**WB, limits={"read_per_minute": 20})
    with pytest.raises(ConfigError, match=r"296 \+ 6 is above the documented 300"):
        channel(**WB, limits={"rate_per_minute": 296})
    with pytest.raises(ConfigError, match=r"144 \+ 10 is above the documented 150"):
        channel(**WB, token_type="basic", limits={"read_per_minute": 10})
    assert channel(**WB, limits={"rate_per_minute": 290, "read_per_minute": 10})
    assert channel(**WB, limits={"read_per_minute": 100, "force": True}).limits.force


def test_unknown_limit_names_and_token_types_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"limits\.rate"):
        channel(**WB, limits={"rate": 10})
    with pytest.raises(ConfigError, match="token_type"):
        channel(**WB, token_type="premium")


def test_wb_token_type_chooses_the_default_limits() -> None:
    assert effective_limits(channel(**WB)) == LIMITS["wildberries"]
    assert effective_limits(channel(**WB, token_type="service")) == LIMITS["wildberries"]
    basic = effective_limits(channel(**WB, token_type="basic"))
    assert basic == WB_BASIC_LIMITS
    # Same margin under WB's own bucket as the personal token's defaults.
    assert basic.bucket_capacity + basic.bucket_rate_per_s * 60 <= 150 + 10


def test_read_back_pacing_takes_the_overrides() -> None:
    assert read_limits("ozon") == READ_LIMITS["ozon"]
    ozon = read_limits("ozon", channel(**OZON, limits={"read_per_minute": 120}))
    assert ozon.rate_per_s == 2
    wb = read_limits("wildberries", channel(**WB, token_type="basic"))
    assert (wb.capacity, wb.rate_per_s) == (8, 2.4)  # the push bucket WB reads share
    assert wb.own_rate_per_s == 3 / 60  # and the read-back's own share beside it
    wb = read_limits("wildberries", channel(**WB, limits={"read_per_minute": 12}))
    assert wb.own_rate_per_s == 12 / 60


# -- channels show -----------------------------------------------------------------------------


def test_channels_show_marks_defaults_and_overrides(tmp_path: Path, monkeypatch) -> None:
    for name in ("INVENTORY_CONFIG", "INVENTORY_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "c.toml"
    config.write_text(
        "[[channels]]\n"
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in WB.items())
        + 'token_type = "basic"\nlimits = { rate_per_minute = 100 }\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["channels", "show", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    (wb,) = json.loads(result.output)
    assert wb["name"] == "wb"
    assert wb["token_type"] == "basic"
    assert wb["limits"]["rate_per_minute"] == {
        "value": 100.0,
        "source": "setting",
        "documented": 150,
    }
    assert wb["limits"]["burst"] == {"value": 8, "source": "default", "documented": 10}
    assert wb["limits"]["read_per_minute"] == {
        "value": 3.0,
        "source": "default",
        "documented": "shared with push: 150 together",
    }
    assert wb["api"]["endpoints"]["stocks"] == "/api/v3/stocks/{warehouse_id}"

    table = CliRunner().invoke(
        app, ["channels", "show", "--config", str(config)], terminal_width=200
    )
    assert table.exit_code == 0
    assert "basic token" in table.output
    assert "setting" in table.output
    assert "default" in table.output


def test_channels_show_refuses_limits_beyond_the_documented(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        "[[channels]]\n"
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in WB.items())
        + "limits = { burst = 50 }\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["channels", "show", "--config", str(config)])
    assert result.exit_code == 2
    assert "documented 20" in " ".join(result.output.split())


# -- retired endpoints -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "retired"),
    [
        (410, {"message": "Gone"}, True),
        (404, "404 page not found", True),  # a router: no such path
        (404, "", True),
        (404, "<html><body>Not Found</body></html>", True),
        (400, {"code": 12, "message": "method is deprecated, use /v2"}, True),
        (404, {"code": 5, "message": "Method not found"}, True),
        (501, {"code": 12, "message": "unimplemented"}, True),
        # A missing item, order or warehouse inside a marketplace's own error object:
        (404, {"code": 5, "message": "posting not found", "details": []}, False),  # Ozon
        (404, {"code": "NotFound", "message": "Not found"}, False),  # WB warehouse
        (404, {"status": "ERROR", "errors": [{"code": "NOT_FOUND"}]}, False),  # YM
        (400, {"code": "IncorrectRequestBody", "message": "bad"}, False),
        (409, [{"code": "NotFound", "data": [{"chrtId": 1}]}], False),
    ],
)
def test_retired_answers_are_told_apart_from_missing_items(
    status: int, body: Any, retired: bool
) -> None:
    if isinstance(body, str):
        response = httpx.Response(status, text=body)
    else:
        response = httpx.Response(status, json=body)
    assert is_retired_answer(response) is retired


def mock_client(status: int, body: Any) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    return httpx.Client(base_url="http://x", transport=httpx.MockTransport(answer))


def test_send_raises_the_retired_error_with_a_bounded_endpoint_label() -> None:
    with (
        mock_client(410, {"message": "Gone"}) as http,
        pytest.raises(ChannelEndpointRetiredError) as error,
    ):
        send(http, "ym", "PUT", "/v2/campaigns/21000000/offers/stocks")
    assert error.value.endpoint == "PUT /v2/campaigns/{id}/offers/stocks"
    assert error.value.status_code == 410
    assert "retired API version" in str(error.value)
    # Still a refusal: callers that map a 404 to "not known" keep doing so.
    assert isinstance(error.value, ChannelRejectedError)


def test_a_missing_posting_stays_an_ordinary_refusal() -> None:
    with (
        mock_client(404, {"code": 5, "message": "posting not found"}) as http,
        pytest.raises(ChannelRejectedError) as error,
    ):
        send(http, "ozon", "POST", "/v3/posting/fbs/get")
    assert not isinstance(error.value, ChannelEndpointRetiredError)


# -- WB: every 4xx is billed as 10, only chrtId is sent ---------------------------------------


def wb_client(status: int, body: Any, seen: list[httpx.Request] | None = None) -> WildberriesClient:
    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body)

    http = httpx.Client(base_url="http://x", transport=httpx.MockTransport(answer))
    return WildberriesClient(http, name="wb", token=SecretStr("t"), warehouse_id=7)


UPDATE = [StockUpdate("A", "2001", 5)]


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_wb_4xx_carries_the_bill_of_ten(status: int) -> None:
    client = wb_client(status, {"code": "X", "message": "no"})
    with pytest.raises(ChannelRejectedError) as error:
        client.push_stock(UPDATE)
    assert error.value.billed_extra == 9
    with pytest.raises(ChannelRejectedError) as read_error:
        client.read_stock(["2001"])
    assert read_error.value.billed_extra == 9


def test_a_wb_409_and_a_temporary_406_are_billed_as_ten() -> None:
    conflict = wb_client(409, [{"code": "NotFound", "data": [{"chrtId": 2001, "amount": 5}]}])
    assert conflict.push_stock(UPDATE).billed_extra == 9
    blocked = wb_client(406, {"code": "WarehouseStocksUpdateBlock", "message": "wait"})
    assert blocked.push_stock(UPDATE).billed_extra == 9


def test_a_wb_429_is_not_billed_beyond_itself() -> None:
    client = wb_client(429, {"title": "too many requests"})
    with pytest.raises(ChannelRateLimitedError):
        client.push_stock(UPDATE)


def test_wb_stock_items_carry_only_chrt_id_and_amount() -> None:
    seen: list[httpx.Request] = []
    wb_client(204, None, seen).push_stock(UPDATE)
    (request,) = seen
    assert json.loads(request.content) == {"stocks": [{"chrtId": 2001, "amount": 5}]}


def test_ym_v3_stock_api_picks_its_own_per_request_limits() -> None:
    v3 = effective_limits(channel(**YM, stock_api="v3", warehouse_id=5))
    assert v3 == YM_V3_LIMITS
    assert not v3.cost_per_item  # 50 requests per minute, counted per request
    assert v3.bucket_capacity + v3.bucket_rate_per_s * 60 <= 50
    with pytest.raises(ConfigError, match="documented 50"):
        channel(**YM, stock_api="v3", warehouse_id=5, limits={"rate_per_minute": 60})
    assert effective_limits(channel(**YM)) == LIMITS["yandex_market"]


def test_channels_show_in_sandbox_mode_lists_the_simulators_channels(
    tmp_path: Path, monkeypatch
) -> None:
    """No [[channels]]: serve publishes to the simulators, so those channels and their default
    limits are what is in use (it printed nothing before)."""
    for name in ("INVENTORY_CONFIG", "INVENTORY_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "c.toml"
    config.write_text("[http]\nport = 8080\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["channels", "show", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)
    assert [(c["name"], c["kind"], c["sandbox"]) for c in described] == [
        ("ozon", "ozon", True),
        ("wb", "wildberries", True),
        ("ym", "yandex_market", True),
    ]
    assert described[1]["limits"]["rate_per_minute"]["source"] == "default"
    table = CliRunner().invoke(
        app, ["channels", "show", "--config", str(config)], terminal_width=200
    )
    assert table.exit_code == 0
    assert "sandbox mode" in table.output
