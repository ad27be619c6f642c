"""Ozon's error answers and the checks of a marketplace request's body fields.

Error bodies have Ozon's generic shape ``{"code", "message", "details"}`` with a gRPC status
code; a request Ozon would refuse is :class:`BadRequestError`, answered HTTP 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse

RATE_LIMIT_MESSAGE = "You have reached request rate limit per second"
INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, RESOURCE_EXHAUSTED, INTERNAL = 3, 5, 7, 8, 13
"""gRPC status codes, which Ozon's error body carries in ``code``."""
MAX_PAGE_LIMIT = 1_000
"""``limit`` of the list methods (1..1000)."""


class BadRequestError(ValueError):
    """A request Ozon would refuse with HTTP 400 (INVALID_ARGUMENT)."""


def error(status: int, code: int, message: str) -> JSONResponse:
    """Ozon's generic error body ``{"code", "message", "details"}`` with an HTTP status."""
    return JSONResponse({"code": code, "message": message, "details": []}, status_code=status)


def page_limit(body: Mapping[str, Any]) -> int:
    """The list methods' ``limit``: required, 1..:data:`MAX_PAGE_LIMIT`."""
    limit = body.get("limit")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_LIMIT:
        raise BadRequestError(f"limit: value must be between 1 and {MAX_PAGE_LIMIT}")
    return limit


def page_offset(body: Mapping[str, Any]) -> int:
    """The list methods' ``offset``: 0 or more, 0 when left out."""
    offset = body.get("offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise BadRequestError("offset: value must be 0 or more")
    return offset


def required_filter(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body's ``filter`` object, which the list methods require."""
    flt = body.get("filter")
    if not isinstance(flt, dict):
        raise BadRequestError("filter: value is required")
    return flt


def filter_time(flt: Mapping[str, Any], key: str) -> datetime:
    """A date-time of the filter, aware (one without an offset is taken as UTC)."""
    value = flt.get(key)
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestError(f"filter.{key}: a date-time is required") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def filter_strings(flt: Mapping[str, Any], key: str) -> set[str]:
    """A list of the filter as a set of strings (empty when left out)."""
    values = flt.get(key) or []
    if not isinstance(values, list):
        raise BadRequestError(f"filter.{key}: must be a list")
    return {str(v) for v in values}
