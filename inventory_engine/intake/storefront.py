"""The storefront REST API under ``/v1``: reservations, stock counts, adapter-less channels' orders.

Every call needs ``Authorization: Bearer <[http] api_token>``: none -> 401, a wrong one -> 403,
checked before the body is read. Errors are ``{"error": "<code>", "message": ...}`` plus
details; request validation errors are 422 ``{"error": "invalid_request", "message",
"details": [{"loc", "msg", "type"}]}`` everywhere under ``/v1``.

A repeated ``POST /v1/reservations`` with the same id and lines is answered 200 with the
reservation's current state (the first one got 201): the ledger held nothing the second time.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import SecretStr

from inventory_engine.config import OzonSettings, WildberriesSettings, YandexMarketSettings
from inventory_engine.constants import (
    STOREFRONT_CHANNEL,
)
from inventory_engine.domain.allocation import ChannelShare, published_quantity
from inventory_engine.domain.models import OrderLine, check_identifier
from inventory_engine.errors import (
    InsufficientStockError,
    ReservationConflictError,
    ReservationExpiredError,
    ReservationNotFoundError,
    StockLevelError,
)
from inventory_engine.intake.storefront_models import (
    ChannelOut,
    ErrorOut,
    LevelOut,
    Line,
    OnHandIn,
    OrderIn,
    OrderOut,
    ReservationIn,
    ReservationOut,
    ReservationStateOut,
    StockOut,
)
from inventory_engine.ledger.redis_io import redis_errors
from inventory_engine.ledger.results import OrderOutcome
from inventory_engine.service import Engine
from inventory_engine.sync.limits import LIMITS

ADAPTER_KINDS = (OzonSettings, WildberriesSettings, YandexMarketSettings)
"""Channels whose orders come from their marketplace, never from ``POST /v1/orders``."""


class ApiError(Exception):
    """An error answer of the REST API: ``{"error": code, "message": message, **extra}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


def invalid(field: str, message: str, *, where: str = "body") -> ApiError:
    """A 422 in the same shape as FastAPI's own validation errors get here."""
    details = [{"loc": [where, field], "msg": message, "type": "value_error"}]
    return ApiError(422, "invalid_request", message, details=details)


# -- auth ---------------------------------------------------------------------------------------


def check_token(request: Request) -> None:
    """401 without a bearer token (or when no token is configured), 403 for a wrong one; a
    valid token names its account (``request.state.account``): the call sees that account
    only."""
    tokens: dict[str, list[SecretStr]] = request.app.state.api_tokens
    if not any(tokens.values()):
        raise ApiError(
            401,
            "unauthorized",
            "no API token is configured: set [http] api_token (or INVENTORY_HTTP__API_TOKEN; "
            "with [[accounts]], each account's api_tokens) and restart; /v1 is closed until then",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(
            401,
            "unauthorized",
            "send Authorization: Bearer <api_token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    offered = given.strip().encode()
    # Every token is compared (constant time each), so the time taken says nothing about
    # which account's token came closest.
    matches = [
        account
        for account, secrets in tokens.items()
        for secret in secrets
        if hmac.compare_digest(offered, secret.get_secret_value().encode())
    ]
    if not matches:
        raise ApiError(403, "forbidden", "the API token is not valid")
    request.state.account = matches[0]


class AuthenticatedRoute(APIRoute):
    """Checks the token before FastAPI reads or validates the body, so an unauthenticated
    caller learns nothing from validation errors."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            check_token(request)
            return await handler(request)

        return guarded


# HTTPBearer only declares the scheme in the OpenAPI document; AuthenticatedRoute enforces it.
router = APIRouter(
    prefix="/v1",
    tags=["storefront"],
    route_class=AuthenticatedRoute,
    dependencies=[Depends(HTTPBearer(auto_error=False))],
)


def get_engine(request: Request) -> Engine:
    """The engine of the account the caller's token opens."""
    engines: dict[str, Engine] = request.app.state.engines
    return engines[request.state.account]


EngineDep = Annotated[Engine, Depends(get_engine)]


def _lines(lines: list[Line]) -> list[OrderLine]:
    return [OrderLine(sku=line.sku, quantity=line.quantity) for line in lines]


def _path_sku(sku: str) -> str:
    try:
        return check_identifier(sku, "sku")
    except ValueError as exc:
        raise invalid("sku", str(exc), where="path") from None


# -- routes ---------------------------------------------------------------------------------------

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    422: {"model": ErrorOut},
    503: {"model": ErrorOut},
}


@router.post(
    "/reservations",
    status_code=201,
    responses={**ERRORS, 200: {"model": ReservationOut}, 409: {"model": ErrorOut}},
)
def reserve(body: ReservationIn, response: Response, engine: EngineDep) -> ReservationOut:
    """Hold stock for a checkout, all lines or none (201; a repeat of the same request: 200)."""
    try:
        outcome = engine.reserve(body.reservation_id, _lines(body.lines), ttl_s=body.ttl_seconds)
    except InsufficientStockError as exc:
        unknown = sorted(
            {i.sku for i in exc.items if not i.available and not engine.reader.stock(i.sku).known}
        )
        if unknown:
            raise ApiError(
                409,
                "unknown_sku",
                f"unknown SKU(s): {', '.join(unknown)} (not in the catalog, never counted)",
                skus=unknown,
            ) from None
        items = [
            {"sku": item.sku, "requested": item.requested, "available": item.available}
            for item in exc.items
        ]
        raise ApiError(409, "insufficient_stock", str(exc), items=items) from None
    except ReservationConflictError as exc:
        raise ApiError(
            409,
            "reservation_conflict",
            str(exc),
            reservation_id=exc.reservation_id,
            state=exc.state,
        ) from None
    except ValueError as exc:
        raise invalid("lines", str(exc)) from None
    if not outcome.created:
        response.status_code = 200
    return ReservationOut(
        reservation_id=outcome.reservation_id,
        state=outcome.state.value,
        expires_at=iso_ms(outcome.expires_at_ms) if outcome.expires_at_ms else None,
    )


@router.post(
    "/reservations/{reservation_id}/commit",
    responses={**ERRORS, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
def commit(reservation_id: str, engine: EngineDep) -> ReservationStateOut:
    """The goods left: on hand and reserved drop. Committed before: 200, applied false.

    A hold whose TTL ran out is held again and committed at once if all its stock is still
    available (200, applied true); if not, 409 ``reservation_expired`` with the short lines
    and nothing changes.
    """
    reservation_id = _reservation_id(reservation_id)
    try:
        outcome = engine.commit_reservation(reservation_id)
    except ReservationNotFoundError:
        raise _not_found(reservation_id) from None
    except ReservationExpiredError as exc:
        items = [
            {"sku": item.sku, "requested": item.requested, "available": item.available}
            for item in exc.items
        ]
        raise ApiError(
            409,
            "reservation_expired",
            str(exc),
            reservation_id=reservation_id,
            items=items,
        ) from None
    return _state_out(reservation_id, outcome)


@router.post(
    "/reservations/{reservation_id}/release", responses={**ERRORS, 404: {"model": ErrorOut}}
)
def release(reservation_id: str, engine: EngineDep) -> ReservationStateOut:
    """Give the held units back. A finished reservation: 200, applied false."""
    reservation_id = _reservation_id(reservation_id)
    # Checked first: the ledger would leave a tombstone for an unknown id, refusing its reserve.
    if engine.reader.order(STOREFRONT_CHANNEL, reservation_id) is None:
        raise _not_found(reservation_id)
    outcome = engine.release_reservation(reservation_id)
    return _state_out(reservation_id, outcome)


def _state_out(reservation_id: str, outcome: OrderOutcome) -> ReservationStateOut:
    state = outcome.state.value if outcome.state else "unknown"
    return ReservationStateOut(reservation_id=reservation_id, state=state, applied=outcome.applied)


def _not_found(reservation_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no reservation {reservation_id!r}")


def _reservation_id(raw: str) -> str:
    """A path id; one the ledger could never have stored is simply not found."""
    try:
        return check_identifier(raw, "reservation_id")
    except ValueError:
        raise _not_found(raw) from None


@router.get("/stock/{sku:path}", responses={**ERRORS, 404: {"model": ErrorOut}})
def get_stock(sku: str, engine: EngineDep) -> StockOut:
    """Counters of a SKU per location and what each channel should show / last accepted."""
    body = stock_body(engine, _path_sku(sku))
    if body is None:
        raise ApiError(404, "not_found", f"unknown sku {sku!r}")
    return body


@router.put("/stock/{sku:path}", responses={**ERRORS, 409: {"model": ErrorOut}})
def put_stock(sku: str, body: OnHandIn, engine: EngineDep) -> StockOut:
    """Set the units physically at the main location (a stock count); answers the new counters."""
    sku = _path_sku(sku)
    try:
        engine.set_on_hand(sku, body.on_hand)
    except StockLevelError as exc:
        raise ApiError(409, "stock_level", str(exc)) from None
    stock = stock_body(engine, sku)
    if stock is None:  # only a concurrent catalog wipe could do this
        raise ApiError(404, "not_found", f"unknown sku {sku!r}")
    return stock


@router.post("/orders", responses={**ERRORS, 409: {"model": ErrorOut}})
def record_order(body: OrderIn, engine: EngineDep) -> OrderOut:
    """An order of a channel without an adapter (e.g. a ``webhook`` shop), in seller SKUs."""
    configured = engine.channel_settings.get(body.channel)
    if isinstance(configured, ADAPTER_KINDS) or body.channel == STOREFRONT_CHANNEL:
        raise invalid(
            "channel",
            f"channel {body.channel!r} gets its orders from its adapter or /v1/reservations",
        )
    try:
        outcome = engine.record_external_order(
            body.channel, body.order_id, body.status, _lines(body.lines)
        )
    except ValueError as exc:
        raise invalid("lines", str(exc)) from None
    return OrderOut(
        channel=body.channel,
        order_id=body.order_id,
        state=outcome.state.value if outcome.state else None,
        applied=outcome.applied,
        oversold_units=outcome.oversold_units,
        unknown_lines=outcome.unknown_lines,
    )


# -- the stock view -------------------------------------------------------------------------------


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC (``2025-01-16T10:09:49.123Z``)."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stock_body(engine: Engine, sku: str) -> StockOut | None:
    """The ``/v1/stock/{sku}`` body, None for a SKU the ledger does not know.

    A channel's ``target`` is what its push would send now: its share (percent, buffer, max,
    the marketplace's ceiling) of the available units at the channel's location.
    """
    stock = engine.reader.stock(sku)
    if not stock.known:
        return None
    names = list(engine.channel_settings)
    keys = engine.ledger.keys
    with redis_errors():
        pipe = engine.client.pipeline(transaction=False)
        for name in names:
            pipe.hget(keys.accepted(name), sku)
            pipe.zscore(keys.dirty(name), sku)
            pipe.zscore(keys.inflight(name), sku)  # claimed: its value is on the way
        pipe.hget(keys.catalog, sku)
        *replies, entry = pipe.execute()
    channels: dict[str, ChannelOut] = {}
    for index, name in enumerate(names):
        settings = engine.channel_settings[name]
        level = stock.levels.get(settings.location)
        if level is not None:
            available = level.available
        else:  # a location with no stock of anything yet
            available = engine.reader.available_many([sku], settings.location)[sku]
        share = ChannelShare(
            percent=settings.percent,
            buffer=settings.buffer,
            max=settings.max,
            ceiling=LIMITS[settings.kind].ceiling,
        )
        accepted, marked, in_flight = replies[3 * index : 3 * index + 3]
        listed = engine.publisher(name).targets.item_id(sku, entry) is not None
        channels[name] = ChannelOut(
            listed=listed,
            target=published_quantity(available, share) if listed else None,
            accepted=int(accepted) if accepted is not None else None,
            pending=marked is not None or in_flight is not None,
        )
    return StockOut(
        sku=sku,
        on_hand=stock.on_hand,
        reserved=stock.reserved,
        available=stock.available,
        locations={
            loc: LevelOut(on_hand=lv.on_hand, reserved=lv.reserved, available=lv.available)
            for loc, lv in stock.levels.items()
        },
        channels=channels,
    )
