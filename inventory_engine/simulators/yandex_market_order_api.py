"""The Yandex Market simulator's order method: ``POST /v1/businesses/{businessId}/orders``.

Orders by id, campaign, status and update date (a window of at most ``max_period_days``),
in pages of at most 50, and ``orders_requests_per_window`` requests per ``orders_window_s``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from inventory_engine.simulators.yandex_market_requests import (
    BadRequestError,
    bounded_list,
    error_response,
    json_body,
    page_start,
    page_token_at,
    parse_time,
    query_limit,
    query_page_token,
)
from inventory_engine.simulators.yandex_market_store import Market


async def list_orders(request: Request, market: Market) -> Response:
    """The store's orders matching the body's filters, one page of them."""
    c = market.config
    business = request.path_params["businessId"]
    if business != str(c.business_id):
        return error_response(404, "NOT_FOUND", f"Business not found: '{business}'")
    body = await json_body(request)
    limit = query_limit(request, 50, 50, truncate=True)  # spec: a larger limit is truncated to 50
    order_ids = bounded_list(body, "orderIds", c.max_order_ids)
    campaign_ids = bounded_list(body, "campaignIds", 50)
    statuses = body.get("statuses")
    low, high = date_window(body.get("dates"), market)
    wait = market.orders_bucket.take()
    if wait > 0:
        market.state.violation("rate_limit")
        return market.limited(
            f"Hit rate limit of {c.orders_requests_per_window} requests per hour for resource "
            "/v1/businesses/{businessId}/orders",
            c.orders_requests_per_window,
            wait,
        )
    chosen = market.book.select(
        order_ids=order_ids, campaign_ids=campaign_ids, statuses=statuses, low=low, high=high
    )
    start = page_start(query_page_token(request))
    answer: dict[str, Any] = {"orders": [o.as_json() for o in chosen[start : start + limit]]}
    if start + limit < len(chosen):
        answer["paging"] = {"nextPageToken": page_token_at(start + limit)}
    return JSONResponse(answer)


def date_window(dates: Any, market: Market) -> tuple[datetime | None, datetime | None]:
    """The body's ``dates`` as (from, to) of the update date, each None when left out."""
    if dates is None:
        return None, None
    if not isinstance(dates, dict):
        raise BadRequestError("Value of field (dates) must be an object")
    start = dates.get("updateDateFrom")
    end = dates.get("updateDateTo")
    low = parse_time(start, "updateDateFrom") if start is not None else None
    high = parse_time(end, "updateDateTo") if end is not None else None
    days = market.config.max_period_days
    if low is not None and (high or market.now()) - low > timedelta(days=days):
        raise BadRequestError(f"Too long time period. Maximum is '{days}' days", "period")
    return low, high
