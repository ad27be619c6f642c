"""How every channel client talks HTTP: one request with whole-request failures mapped to the
:class:`~inventory_engine.channels.base.ChannelError` tree, Retry-After in seconds or as a date,
and 2xx bodies read as JSON or validated into a model."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from inventory_engine.channels.base import (
    ChannelEndpointRetiredError,
    ChannelRateLimitedError,
    ChannelRejectedError,
    ChannelUnavailableError,
    PayloadError,
)

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
"""Explicit timeouts for every channel request; marketplaces answer stock calls in < 1 s."""


_M = TypeVar("_M", bound=BaseModel)


def _short(response: httpx.Response, limit: int = 300) -> str:
    text = response.text
    return text if len(text) <= limit else text[:limit] + "…"


def utcnow() -> datetime:
    """The aware UTC wall clock; clients take it as their default ``now``."""
    return datetime.now(UTC)


def retry_delay_s(
    value: str | None, *, now: Callable[[], datetime] = utcnow, min_date_s: float = 0.0
) -> float | None:
    """Seconds a Retry-After-like header asks to wait, or None when it says nothing usable.

    Reads a number of seconds (>= 0), or an HTTP-date / RFC 822 date, which gives the seconds
    from ``now()`` until then, at least ``min_date_s`` (0: a date already past means "now"). A
    date without a zone (RFC 2822 ``-0000``) is not usable: its offset from ``now`` is unknown.
    """
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        return None
    return max(min_date_s, (moment - now()).total_seconds())


def parse_retry_after(
    value: str | None,
    default_s: float,
    *,
    now: Callable[[], datetime] = utcnow,
    min_date_s: float = 0.0,
) -> float:
    """Seconds from a Retry-After-like header (seconds or a date, see :func:`retry_delay_s`);
    ``default_s`` when it is missing or unusable."""
    seconds = retry_delay_s(value, now=now, min_date_s=min_date_s)
    return default_s if seconds is None else seconds


def retry_after_from(
    headers: Mapping[str, str],
    names: str | tuple[str, ...],
    default_s: float,
    *,
    now: Callable[[], datetime] = utcnow,
    min_date_s: float = 0.0,
) -> float:
    """The wait the first present and usable header of ``names`` gives (seconds or a date, see
    :func:`retry_delay_s`), tried in order; ``default_s`` when none does."""
    for name in (names,) if isinstance(names, str) else names:
        seconds = retry_delay_s(headers.get(name), now=now, min_date_s=min_date_s)
        if seconds is not None:
            return seconds
    return default_s


def send(
    http: httpx.Client,
    channel: str,
    method: str,
    url: str,
    *,
    json_body: Any = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    rate_limit_statuses: tuple[int, ...] = (429,),
    retry_header: str | tuple[str, ...] = "Retry-After",
    default_retry_s: float = 1.0,
    min_date_wait_s: float = 0.0,
    now: Callable[[], datetime] = utcnow,
    describe: Callable[[httpx.Response], str] = _short,
    endpoint: str | None = None,
) -> httpx.Response:
    """Send one request and map whole-request failures to the ChannelError tree.

    Returns the response for any 2xx. A caller that understands a 4xx body (WB's 409 lists
    the failed items) catches ChannelRejectedError and reads its ``response``.

    Args:
        rate_limit_statuses: statuses that mean "slow down" (YM: 420 as well as 429).
        retry_header: the header saying how long to wait, or several tried in order: the
            first one present and usable (seconds or a date) wins, else ``default_retry_s``.
        min_date_wait_s: least wait a date header gives (see :func:`retry_delay_s`).
        now: the clock a date header is read against.
        describe: words a 4xx answer for the error message (a marketplace's error wrapper);
            by default the start of the body. 5xx bodies (often a gateway's page) are cut short.
        endpoint: the path template (``/api/v3/stocks/{warehouse_id}``) named by a
            ChannelEndpointRetiredError; by default ``url`` with its numbers as ``{id}``.

    Raises:
        ChannelRateLimitedError, ChannelUnavailableError, ChannelRejectedError,
        ChannelEndpointRetiredError (a ChannelRejectedError: see :func:`is_retired_answer`).
    """
    try:
        response = http.request(
            method, url, json=json_body, content=content, headers=headers, params=params
        )
    except httpx.TimeoutException as exc:
        raise ChannelUnavailableError(channel, f"timeout on {method} {url}") from exc
    except httpx.TransportError as exc:
        raise ChannelUnavailableError(channel, f"{type(exc).__name__} on {method} {url}") from exc
    status = response.status_code
    if status in rate_limit_statuses:
        raise _rate_limited(
            channel, response, retry_header, default_retry_s, now, min_date_wait_s, describe
        )
    if status >= 500:
        raise ChannelUnavailableError(
            channel, f"HTTP {status} on {method} {url}: {_short(response)}"
        )
    if not 200 <= status < 300:
        # 4xx, and also 3xx: a redirect means a wrong URL, never "accepted".
        if is_retired_answer(response):
            raise ChannelEndpointRetiredError(
                channel,
                status,
                describe(response),
                endpoint=endpoint or path_template(method, url),
                response=response,
            )
        raise ChannelRejectedError(channel, status, describe(response), response=response)
    return response


RETIRED_STATUSES = frozenset({404, 405, 410, 501})
"""Statuses a retired method may answer with (410 Gone always means it)."""
_RETIRED_TEXT = re.compile(
    r"(method|endpoint|api version|handler|route|path)\b[^.]{0,60}"
    r"\b(deprecated|retired|removed|not found|not supported|unknown|does not exist|is gone)"
    r"|\b(deprecated|unknown|unsupported|retired|removed)\s+(method|endpoint|api version)"
    r"|\bunimplemented\b|\bno such (method|endpoint|route)",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"/\d+(?=/|$)")


def is_retired_answer(response: httpx.Response) -> bool:
    """Whether a refusal means "this method no longer exists" rather than "this thing does not".

    * 410 Gone: always.
    * 404/405/501 whose body is not a JSON object (empty, a router's "404 page not found", an
      HTML page): the path itself is unknown. Every marketplace answers a *missing item or
      order* inside its own JSON error object (Ozon ``{"code": 5, "message": ...}``, WB
      ``{"code": "NotFound", ...}``, YM ``{"errors": [{"code": "NOT_FOUND"}]}``): those stay
      ordinary refusals (``get_order`` maps them to "not known").
    * any 4xx whose text says the method/endpoint is deprecated, unknown or unimplemented.
    """
    status = response.status_code
    if status == 410:
        return True
    if not 400 <= status < 500 and status != 501:
        return False
    text = response.text
    if _RETIRED_TEXT.search(text[:2_000]):
        return True
    if status not in RETIRED_STATUSES:
        return False
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return True
    return not isinstance(body, dict)


def path_template(method: str, url: str) -> str:
    """``METHOD /path`` with numeric path segments as ``{id}`` (a bounded metric label)."""
    path = httpx.URL(url).path or "/"
    return f"{method.upper()} {_NUMBER.sub('/{id}', path)}"


def response_json(channel: str, response: httpx.Response) -> Any:
    """The JSON body of a 2xx answer.

    Raises:
        PayloadError: the body is not JSON.
    """
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PayloadError(channel, f"answer is not JSON: {_short(response)}") from exc


def parse_answer(
    channel: str, model: type[_M], response: httpx.Response, *, what: str = "answer"
) -> _M:
    """The JSON body of a 2xx answer, validated into ``model``.

    Raises:
        PayloadError: the body is not JSON, or not the shape ``model`` expects
            ("unexpected {what}: N errors").
    """
    try:
        return model.model_validate(response_json(channel, response))
    except ValidationError as exc:
        raise PayloadError(channel, f"unexpected {what}: {exc.error_count()} errors") from exc


def _rate_limited(
    channel: str,
    response: httpx.Response,
    retry_header: str | tuple[str, ...],
    default_retry_s: float,
    now: Callable[[], datetime],
    min_date_wait_s: float,
    describe: Callable[[httpx.Response], str],
) -> ChannelRateLimitedError:
    """The error of a "slow down" answer: the wait its headers ask for (or the default), and
    whether any header asked at all (a hinted wait is exact; an unhinted one backs off)."""
    retry = retry_after_from(
        response.headers, retry_header, default_retry_s, now=now, min_date_s=min_date_wait_s
    )
    names = (retry_header,) if isinstance(retry_header, str) else retry_header
    hinted = any(
        retry_delay_s(response.headers.get(name), now=now, min_date_s=min_date_wait_s) is not None
        for name in names
    )
    return ChannelRateLimitedError(channel, describe(response), retry_after_s=retry, hinted=hinted)
