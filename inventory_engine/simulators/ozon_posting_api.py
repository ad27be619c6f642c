"""The Ozon simulator's FBS posting methods: the two lists and the look-up by number.

``/v3/posting/fbs/list`` filters by creation time (and optionally by last status change),
``/v3/posting/fbs/unfulfilled/list`` by packing cutoff; both windows are at most a year.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.responses import JSONResponse, Response

from inventory_engine.simulators.ozon_postings import PostingBook
from inventory_engine.simulators.ozon_requests import (
    NOT_FOUND,
    BadRequestError,
    error,
    filter_time,
    page_limit,
    page_offset,
    required_filter,
)

MAX_PERIOD = timedelta(days=365)
"""Longest date window of the posting lists ("no more than one year")."""


class OzonPostingApi:
    """The posting routes' handlers over the account's book of postings."""

    def __init__(self, book: PostingBook) -> None:
        self.book = book

    async def list_postings(self, body: dict[str, Any]) -> Response:
        """``POST /v3/posting/fbs/list``."""
        limit, offset, flt = page_limit(body), page_offset(body), required_filter(body)
        since, to = filter_time(flt, "since"), filter_time(flt, "to")
        if to - since > MAX_PERIOD:
            raise BadRequestError("filter: the period must not exceed one year")
        changed = flt.get("last_changed_status_date")
        window = (filter_time(changed, "from"), filter_time(changed, "to")) if changed else None
        found = self.book.select(
            created=(since, to),
            changed=window,
            status=flt.get("status") or None,
            warehouses=_warehouses(flt),
            descending=_descending(body),
        )
        page = found[offset : offset + limit]
        result = {"postings": [p.as_json() for p in page], "has_next": offset + limit < len(found)}
        return JSONResponse({"result": result})

    async def list_unfulfilled(self, body: dict[str, Any]) -> Response:
        """``POST /v3/posting/fbs/unfulfilled/list`` (by packing cutoff only)."""
        limit, offset, flt = page_limit(body), page_offset(body), required_filter(body)
        if flt.get("delivering_date_from") or flt.get("delivering_date_to"):
            raise BadRequestError("filter: use either cutoff or delivering_date, not both")
        cutoff = (filter_time(flt, "cutoff_from"), filter_time(flt, "cutoff_to"))
        if cutoff[1] - cutoff[0] > MAX_PERIOD:
            raise BadRequestError("filter: the period must not exceed one year")
        found = self.book.select(
            cutoff=cutoff,
            status=flt.get("status") or None,
            warehouses=_warehouses(flt),
            unfulfilled=True,
            descending=_descending(body),
        )
        page = found[offset : offset + limit]
        result = {"postings": [p.as_json() for p in page], "count": len(found)}
        return JSONResponse({"result": result})

    async def get_posting(self, body: dict[str, Any]) -> Response:
        """``POST /v3/posting/fbs/get``: one posting by ``posting_number``."""
        number = body.get("posting_number")
        if not isinstance(number, str) or not number:
            raise BadRequestError("posting_number: value is required")
        posting = self.book.postings.get(number)
        if posting is None:
            return error(404, NOT_FOUND, f"posting {number} not found")
        return JSONResponse({"result": posting.as_json()})


def _warehouses(flt: dict[str, Any]) -> set[int]:
    """The filter's ``warehouse_id`` list as ids (empty: every warehouse)."""
    return {int(w) for w in flt.get("warehouse_id") or [] if str(w).isdigit()}


def _descending(body: dict[str, Any]) -> bool:
    return str(body.get("dir", "ASC")).upper() == "DESC"
