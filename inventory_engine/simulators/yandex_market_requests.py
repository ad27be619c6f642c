"""Yandex Market's error answer and the checks of a request's body, query and page token.

Every error is YM's wrapper ``{"status": "ERROR", "errors": [{"code", "message"}]}``; a request
YM would refuse is :class:`BadRequestError`, answered HTTP 400 ``BAD_REQUEST`` and counted as
a violation of its kind.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class BadRequestError(Exception):
    """A request YM would refuse with HTTP 400; ``violation`` is the counter it goes to."""

    def __init__(self, message: str, violation: str = "bad_request") -> None:
        self.message = message
        self.violation = violation
        super().__init__(message)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """YM's error wrapper with one error, at ``status``."""
    body = {"status": "ERROR", "errors": [{"code": code, "message": message}]}
    return JSONResponse(body, status_code=status, headers=headers)


def page_token_at(offset: int) -> str:
    """The ``nextPageToken`` of the page that starts at ``offset``."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def page_start(token: str | None) -> int:
    """Where the page of ``token`` starts (0 without one)."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        return int(text.removeprefix("offset:"))
    except ValueError:
        raise BadRequestError(f"Invalid page token: '{token}'") from None


async def json_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON object body; ``{}`` for an empty one unless it is ``required``."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise BadRequestError("Missing field: request body")
        return {}
    try:
        body = await request.json()
    except ValueError as exc:
        raise BadRequestError(f"JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequestError("JSON: the body must be an object")
    return body


def bounded_list(body: dict[str, Any], name: str, maximum: int) -> list[Any] | None:
    """The body's list ``name`` of 1..``maximum`` items, or None when left out."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= maximum:
        raise BadRequestError(f"Value / length of field ({name}) must be between 1 and {maximum}")
    return value


def query_limit(request: Request, maximum: int, default: int, *, truncate: bool) -> int:
    """The ``limit`` query parameter; above ``maximum`` it is cut down if ``truncate``, else
    refused."""
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1 or (int(raw) > maximum and not truncate):
        raise BadRequestError(f"Value of field (limit) must be between 1 and {maximum}")
    return min(int(raw), maximum)


def query_page_token(request: Request) -> str | None:
    """The page token, under either of the names YM's methods give it."""
    params = request.query_params
    return params.get("pageToken") or params.get("page_token")


def parse_time(value: Any, name: str) -> datetime:
    """An ISO 8601 date-time with an offset, else :class:`BadRequestError` naming the field."""
    if not isinstance(value, str):
        raise BadRequestError(f"Value of field ({name}) must be a date-time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequestError(f"Value of field ({name}) must be a date-time") from None
    if moment.tzinfo is None:
        raise BadRequestError(f"Value of field ({name}) must have an offset")
    return moment
