"""Marketplace push notifications: ``POST /webhooks/ozon`` and ``POST /webhooks/yandex-market``.

Each handler reads the raw body (the size limit is applied before, in :mod:`inventory_engine.api`),
decodes it, parses it with the channel's notification parser, picks the configured channel the
push is about and queues its events with :meth:`Engine.queue_order_events`. It answers only after
that call returns, so a 200 means the events are durably queued; the ledger work happens in the
workers. Every answer, error or not, is in the shape the marketplace expects (reference §1.6,
§3.4):

* Ozon: ``TYPE_PING`` -> ``{"version", "name", "time"}``, anything else -> ``{"result": true}``;
  errors ``{"error": {"code", "message", "details": null}}``.
* Yandex Market: every type -> ``{"version", "name", "time"}``; a payload that cannot be read ->
  400 ``{"error": {"type": "WRONG_EVENT_FORMAT", "message"}}`` (YM does not retry a 400); our own
  failure -> 500 with type ``UNKNOWN`` (YM retries).

Neither marketplace signs its requests, so each handler first checks the client address against
that marketplace's networks (:mod:`inventory_engine.intake.sources`, ``[webhooks]`` settings):
another source is answered 403 in the marketplace's error shape, logged with its address, and
nothing is parsed or queued.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import redis
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from inventory_engine.channels import ozon_notifications as ozon
from inventory_engine.channels import yandex_market_notifications as ym
from inventory_engine.channels.base import ChannelOrder, PayloadError, check_order
from inventory_engine.config import OzonSettings, YandexMarketSettings
from inventory_engine.constants import DEFAULT_ACCOUNT
from inventory_engine.errors import InventoryError
from inventory_engine.intake.sources import Marketplace, Sources, refusal_details
from inventory_engine.service import Engine

log = structlog.get_logger()

OZON_PATH = "/webhooks/ozon"
YANDEX_MARKET_PATH = "/webhooks/yandex-market"
ACCOUNT_OZON_PATH = "/webhooks/{account}/ozon"
ACCOUNT_YANDEX_MARKET_PATH = "/webhooks/{account}/yandex-market"
"""Each account's own webhook paths; the unprefixed ones are the ``default`` account's."""
OZON_UNKNOWN = "ERROR_UNKNOWN"

router = APIRouter(tags=["webhooks"])


# -- error shapes (also used by the app for 404/405/413/500 on these paths) -------------------


def ozon_error(status: int, code: str, message: str) -> JSONResponse:
    """An Ozon error answer: ``{"error": {"code", "message", "details": null}}``."""
    return JSONResponse(ozon.error_answer(code, message), status_code=status)


def ym_error(status: int, error_type: str, message: str) -> JSONResponse:
    """A Yandex Market error answer: ``{"error": {"type", "message"}}``."""
    return JSONResponse(ym.error_body(error_type, message), status_code=status)


def _marketplace_of(path: str) -> str | None:
    """``ozon`` or ``yandex-market`` for a webhook path (unprefixed or an account's)."""
    parts = path.strip("/").split("/")
    if len(parts) < 2 or parts[0] != "webhooks":
        return None
    for name in ("ozon", "yandex-market"):
        if parts[1] == name or (len(parts) >= 3 and parts[2] == name):
            return name
    return None


def is_webhook(path: str) -> bool:
    return _marketplace_of(path) is not None


def webhook_error(path: str, status: int, message: str) -> JSONResponse | None:
    """The error answer for ``path`` in its marketplace's shape; None if it is not a webhook.

    A 4xx means the request was wrong (Ozon ``ERROR_PARAMETER_VALUE_MISSED``, YM
    ``WRONG_EVENT_FORMAT``) except 404/405 (no such endpoint here: ``ERROR_UNKNOWN``/``UNKNOWN``).
    """
    caller_error = 400 <= status < 500 and status not in (404, 405)
    marketplace = _marketplace_of(path)
    if marketplace == "ozon":
        return ozon_error(status, ozon.ERROR_CODE if caller_error else OZON_UNKNOWN, message)
    if marketplace == "yandex-market":
        kind = ym.WRONG_EVENT_FORMAT if caller_error else ym.UNKNOWN_ERROR
        return ym_error(status, kind, message)
    return None


# -- helpers ----------------------------------------------------------------------------------


def _refusal(request: Request, status: int, message: str) -> JSONResponse:
    """``webhook_error`` for the request's own path (a webhook route: never None)."""
    answer = webhook_error(request.url.path, status, message)
    assert answer is not None  # noqa: S101 - only called on webhook paths
    return answer


def _engine(request: Request) -> Engine | None:
    """The engine of the account the path names (unprefixed: ``default``); None if there is
    no such account here."""
    engines: dict[str, Engine] = request.app.state.engines
    return engines.get(request.path_params.get("account", DEFAULT_ACCOUNT))


def _no_account(request: Request) -> JSONResponse:
    account = request.path_params.get("account", DEFAULT_ACCOUNT)
    where = (
        f"no account named {account!r} here"
        if "account" in request.path_params
        else "this deployment has no 'default' account: use /webhooks/<account>/..."
    )
    return _refusal(request, 404, where)


def _foreign(request: Request, what: str, value: int, known: set[int]) -> JSONResponse | None:
    """In a multi-account deployment, the refusal of a notification that names a seller/store
    this account does not have (sent to the wrong account's URL); None when it is this
    account's, or when the account declares no such ids, or with one account."""
    if not request.app.state.multi_account or not known or value in known:
        return None
    account = request.path_params.get("account", DEFAULT_ACCOUNT)
    log.warning("webhook_wrong_account", account=account, field=what, value=value)
    return _refusal(
        request, 400, f"{what} {value} is not one of account {account!r}'s; not applied"
    )


def refuse_source(request: Request, marketplace: Marketplace) -> JSONResponse | None:
    """403 in the marketplace's shape if the client may not send its notifications, else None.

    The app's :class:`~inventory_engine.intake.sources.Sources` (``app.state.sources``) decides;
    an app without one refuses everything (fail closed).
    """
    sources: Sources | None = getattr(request.app.state, "sources", None)
    address = sources.client(request.scope) if sources is not None else None
    if sources is not None and sources.allows(marketplace, address):
        return None
    where = str(address) if address is not None else "an unknown address"
    log.warning(
        "webhook_source_refused",
        marketplace=marketplace,
        path=request.url.path,
        **refusal_details(request.scope, address),
    )
    message = f"notifications from {where} are not accepted: not an allowed {marketplace} network"
    return _refusal(request, 403, message)


def decode_json(body: bytes) -> Any:
    """Decode a JSON body; ValueError for anything that is not one JSON document.

    Refuses ``NaN``/``Infinity`` (not JSON) and turns the decoder's own limits (a number with
    thousands of digits, nesting deep enough to exhaust the stack) into ValueError too.
    """
    if not body.strip():
        raise ValueError("the body is empty")

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        document = json.loads(body, parse_constant=no_constants)
        # A lone surrogate escape ("\ud800") decodes to text no store can hold (UTF-8 cannot
        # encode it): refuse it now as bad input, not later as a 500 while queueing.
        json.dumps(document, ensure_ascii=False).encode()
    except RecursionError:
        raise ValueError("the JSON document is nested too deeply") from None
    except UnicodeEncodeError:
        raise ValueError("the JSON document holds an invalid unicode escape") from None
    return document


async def _queue(engine: Engine, channel: str, orders: Sequence[ChannelOrder]) -> int:
    """Queue the events off the event loop (redis-py blocks); 0 when there is nothing to do."""
    if not orders:
        return 0
    return await run_in_threadpool(engine.queue_order_events, channel, orders)


def _ozon_channels(engine: Engine) -> list[OzonSettings]:
    return [s for s in engine.channel_settings.values() if isinstance(s, OzonSettings)]


def _ym_channels(engine: Engine) -> list[YandexMarketSettings]:
    return [s for s in engine.channel_settings.values() if isinstance(s, YandexMarketSettings)]


def _ozon_channel(
    engine: Engine, channels: list[OzonSettings], warehouse_id: int | None, posting: str | None
) -> str:
    """The configured Ozon channel (``channels``: at least one) a push is for.

    One Ozon channel: that one. Several: the one whose ``warehouse_id`` matches the push; when
    the push names no warehouse (``TYPE_STATE_CHANGED`` often sends 0), the one that already
    holds the posting; else the first one (its worker reads the posting back with its client).
    """
    if len(channels) == 1:
        return channels[0].name
    for settings in channels:
        if warehouse_id is not None and settings.warehouse_id == warehouse_id:
            return settings.name
    if posting:
        for settings in channels:
            if engine.reader.order(settings.name, posting) is not None:
                return settings.name
    log.warning("ozon_push_unrouted", warehouse_id=warehouse_id, posting=posting)
    return channels[0].name


def _ym_channel(
    channels: list[YandexMarketSettings], campaign_id: int | None
) -> YandexMarketSettings:
    """The YM channel (``channels``: at least one) whose ``campaign_id`` matches, else the first
    one (its parser then IGNOREs a notification about another store)."""
    return next((s for s in channels if s.campaign_id == campaign_id), channels[0])


# -- Ozon -------------------------------------------------------------------------------------


@router.post(OZON_PATH, summary="Ozon push notifications", response_model=None)
@router.post(
    ACCOUNT_OZON_PATH, summary="Ozon push notifications of one account", response_model=None
)
async def ozon_push(request: Request) -> JSONResponse:
    """Answer ``TYPE_PING``; queue the events of every other type, then ``{"result": true}``."""
    engine = _engine(request)
    if engine is None:
        return _no_account(request)
    channels = _ozon_channels(engine)
    if not channels:
        return ozon_error(404, OZON_UNKNOWN, "no Ozon channel is configured")
    refused = refuse_source(request, "ozon")
    if refused is not None:
        return refused
    try:
        notification = ozon.parse_notification(decode_json(await request.body()))
        for order in notification.orders:
            check_order("ozon", order, code=ozon.ERROR_CODE)
    except PayloadError as exc:
        log.warning("ozon_push_refused", reason=str(exc))
        return ozon_error(400, exc.code, str(exc))
    except ValueError as exc:
        log.warning("ozon_push_refused", reason=str(exc))
        return ozon_error(400, ozon.ERROR_CODE, f"the body is not valid JSON: {exc}")
    if notification.is_ping:
        return JSONResponse(notification.answer())
    if notification.seller_id is not None:
        sellers = {c.push_seller_id for c in channels if c.push_seller_id is not None}
        foreign = _foreign(request, "seller_id", notification.seller_id, sellers)
        if foreign is not None:
            return foreign
    posting = notification.orders[0].order_id if notification.orders else None
    try:
        name = await run_in_threadpool(
            _ozon_channel, engine, channels, notification.warehouse_id, posting
        )
        queued = await _queue(engine, name, notification.orders)
    except (InventoryError, redis.RedisError) as exc:
        log.error("ozon_push_not_queued", error=str(exc), message_type=notification.message_type)
        return ozon_error(500, OZON_UNKNOWN, "the notification could not be queued; retry")
    log.info(
        "ozon_push_queued", channel=name, message_type=notification.message_type, queued=queued
    )
    return JSONResponse(notification.answer())


# -- Yandex Market ----------------------------------------------------------------------------


@router.post(YANDEX_MARKET_PATH, summary="Yandex Market notifications", response_model=None)
@router.post(
    YANDEX_MARKET_PATH + "/notification",
    summary="Yandex Market notifications (the path YM appends)",
    response_model=None,
)
@router.post(
    ACCOUNT_YANDEX_MARKET_PATH,
    summary="Yandex Market notifications of one account",
    response_model=None,
)
@router.post(
    ACCOUNT_YANDEX_MARKET_PATH + "/notification",
    summary="Yandex Market notifications of one account (the path YM appends)",
    response_model=None,
)
async def yandex_market_notification(request: Request) -> JSONResponse:
    """Queue the events of any notification type, then ``{"version", "name", "time"}``."""
    started = datetime.now(UTC)
    engine = _engine(request)
    if engine is None:
        return _no_account(request)
    channels = _ym_channels(engine)
    if not channels:
        return ym_error(404, ym.UNKNOWN_ERROR, "no Yandex Market channel is configured")
    refused = refuse_source(request, "yandex_market")
    if refused is not None:
        return refused
    try:
        payload = decode_json(await request.body())
        # Parsed once to learn the store, then for the channel of that store (cheap, pure).
        first = ym.parse_notification(payload)
        if first.campaign_id is not None:
            stores = {c.campaign_id for c in channels}
            foreign = _foreign(request, "campaignId", first.campaign_id, stores)
            if foreign is not None:
                return foreign
        settings = _ym_channel(channels, first.campaign_id)
        notification = ym.parse_notification(
            payload, channel=settings.name, campaign_id=settings.campaign_id
        )
        for order in notification.orders:
            check_order(settings.name, order, code=ym.WRONG_EVENT_FORMAT)
    except (PayloadError, ValueError) as exc:
        log.warning("ym_notification_refused", reason=str(exc))
        return ym_error(400, ym.WRONG_EVENT_FORMAT, str(exc))
    try:
        queued = await _queue(engine, settings.name, notification.orders)
    except (InventoryError, redis.RedisError) as exc:
        log.error("ym_notification_not_queued", error=str(exc))
        return ym_error(500, ym.UNKNOWN_ERROR, "the notification could not be queued; retry")
    log.info(
        "ym_notification_queued",
        channel=settings.name,
        notification_type=notification.notification_type,
        queued=queued,
    )
    return JSONResponse(ym.answer_body(started_at=started))
