"""What one poll of one channel did."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class PollReport:
    """What one poll of one channel did.

    Attributes:
        fetched: order rows read (list entries and status rows).
        queued: events queued for the workers.
        unchanged: rows skipped because the same event was queued before.
        pages: ``list_orders`` pages read.
        requests: API requests made (estimated where a client pages inside one call).
        cursor_in: the cursor the poll started from.
        cursor: the cursor stored after it (``cursor_in`` if nothing was stored).
        more: the feed has more pages than one poll reads: poll again soon.
        cursor_reset: the stored cursor was unreadable and the poll started without one.
        error: the channel failure that ended the poll early, if any.
        retry_after_s: how long the channel asked to wait (rate limits).
    """

    channel: str
    kind: str
    cursor_in: str | None = None
    cursor: str | None = None
    fetched: int = 0
    queued: int = 0
    unchanged: int = 0
    pages: int = 0
    requests: int = 0
    more: bool = False
    cursor_reset: bool = False
    error: str | None = None
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None
