"""The Ozon simulator's ``/_sim`` admin routes (not Ozon's): products, postings, notifications.

``POST /_sim/products`` registers products, ``POST /_sim/postings`` creates a posting and
``POST /_sim/postings/{number}/status`` moves it (each change pushed as Ozon's notification),
``POST /_sim/notify-ping`` sends ``TYPE_PING`` and waits for the answer, and
``GET /_sim/products|postings|stocks|notifications`` show what the simulator holds. The routes
every simulator shares (state, received values, faults, reset) are in :mod:`.base`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inventory_engine.simulators.ozon_notifier import OzonNotifier
from inventory_engine.simulators.ozon_postings import PostingBook, push_time

AdminHandler = Callable[[dict[str, Any], Request], Awaitable[Response]]
"""An admin route's handler: the JSON object body (``{}`` when empty) and the request."""


def ozon_admin_routes(book: PostingBook, notifier: OzonNotifier, seller_id: int) -> list[Route]:
    """The Ozon-only ``/_sim`` routes over the account's book, pushing through ``notifier``."""

    async def add_products(body: dict[str, Any], _: Request) -> Response:
        for row in body.get("products") or []:
            book.products.add(row)
        return JSONResponse({"products": [p.as_json() for p in book.products.all()]})

    async def create_posting(body: dict[str, Any], _: Request) -> Response:
        posting = book.create(body)
        notifier.notify(posting.new_posting_push(seller_id))
        return JSONResponse(posting.as_json())

    async def move_posting(body: dict[str, Any], request: Request) -> Response:
        posting, push = book.move(request.path_params["number"], body, seller_id)
        notifier.notify(push)
        return JSONResponse(posting.as_json())

    async def view(_: dict[str, Any], request: Request) -> Response:
        what = request.url.path.rsplit("/", 1)[-1]
        if what == "stocks":
            return JSONResponse({"stocks": book.stock_rows()})
        if what == "notifications":
            return JSONResponse({"notifications": list(notifier.notifications)})
        if what == "products":
            return JSONResponse({"products": [p.as_json() for p in book.products.all()]})
        return JSONResponse({"postings": [p.as_json() for p in book.postings.values()]})

    async def ping(_: dict[str, Any], __: Request) -> Response:
        if not notifier.url:
            return JSONResponse({"error": "no notify_url configured"}, status_code=409)
        payload = {"message_type": "TYPE_PING", "time": push_time(book.now())}
        return JSONResponse(await notifier.deliver(payload))

    return [
        Route("/_sim/products", _admin(add_products), methods=["POST"]),
        Route("/_sim/postings", _admin(create_posting), methods=["POST"]),
        Route("/_sim/postings/{number}/status", _admin(move_posting), methods=["POST"]),
        Route("/_sim/notify-ping", _admin(ping), methods=["POST"]),
        *(
            Route(f"/_sim/{what}", _admin(view), methods=["GET"])
            for what in ("products", "postings", "stocks", "notifications")
        ),
    ]


def _admin(handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an admin route: a JSON object body (or none), errors as JSON 400/404."""

    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise TypeError("the body must be a JSON object")
            return await handler(body, request)
        except KeyError as exc:
            return JSONResponse({"error": f"not found: {exc.args[0]}"}, status_code=404)
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return endpoint
