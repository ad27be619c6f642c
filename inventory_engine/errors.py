"""The whole exception tree of inventory-engine.

    InventoryError
    ├── InsufficientStockError      storefront hold refused; carries every short line
    ├── ReservationNotFoundError    commit/release of an id the ledger never saw
    ├── ReservationConflictError    same reservation id, different lines
    ├── ReservationExpiredError     commit of an expired hold whose stock is gone
    ├── StockLevelError             a stock count or adjustment out of range, or on a bundle
    ├── LedgerUnavailableError      Redis cannot be reached (connection refused, lost, timed out)
    ├── LedgerScriptError           Redis refused one command: a script's error, WRONGTYPE, OOM,
    │                               READONLY (the server answers; the operation failed)
    ├── CatalogError                a catalog or stock file with bad rows (names each row)
    ├── ConfigError                 settings that cannot work
    └── EmbeddedServerError         the embedded Redis-compatible server would not start

Third-party errors (redis, httpx) are wrapped at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass


class InventoryError(Exception):
    """Root of every error this package raises on purpose."""


@dataclass(frozen=True, slots=True)
class ShortLine:
    """One line that could not be held: what was asked and what is available now."""

    sku: str
    requested: int
    available: int


class InsufficientStockError(InventoryError):
    """A storefront reservation was refused; nothing was held."""

    def __init__(self, items: list[ShortLine]) -> None:
        self.items = items
        names = ", ".join(
            f"{i.sku} (requested {i.requested}, available {i.available})" for i in items
        )
        super().__init__(f"insufficient stock: {names}")


class ReservationNotFoundError(InventoryError):
    """The reservation or order is not known to the ledger."""

    def __init__(self, channel: str, order_id: str) -> None:
        self.channel = channel
        self.order_id = order_id
        super().__init__(f"no order {order_id!r} on channel {channel!r}")


class ReservationConflictError(InventoryError):
    """A reservation id was reused with different lines."""

    def __init__(self, reservation_id: str, state: str) -> None:
        self.reservation_id = reservation_id
        self.state = state
        super().__init__(
            f"reservation {reservation_id!r} already exists ({state}) with different lines"
        )


class StockLevelError(InventoryError):
    """A stock count or adjustment that would leave a level out of range, or targets a bundle."""

    def __init__(self, sku: str, message: str) -> None:
        self.sku = sku
        super().__init__(f"{sku}: {message}")


class ReservationExpiredError(InventoryError):
    """A commit of a storefront hold whose TTL ran out, and the stock it held is no longer all
    available; nothing was taken. ``items`` lists each short line."""

    def __init__(self, channel: str, order_id: str, items: list[ShortLine]) -> None:
        self.channel = channel
        self.order_id = order_id
        self.items = items
        names = ", ".join(
            f"{i.sku} (requested {i.requested}, available {i.available})" for i in items
        )
        super().__init__(f"reservation {order_id!r} expired and its stock is gone: {names}")


class LedgerUnavailableError(InventoryError):
    """Redis could not be reached: the connection was refused, lost or timed out. Trying the
    same thing later may work."""


class LedgerScriptError(InventoryError):
    """Redis answered, but refused the command: a ledger script raised an error, a key holds
    the wrong type (WRONGTYPE), the server is out of memory (OOM) or read-only (READONLY).

    Unlike :class:`LedgerUnavailableError` the server is there; in a pipeline the error belongs
    to one command, so the other commands' replies stand.
    """


class CatalogError(InventoryError):
    """A catalog or stock import file has bad rows; nothing was imported.

    ``row`` counts data rows from 1 (the header is row 0, as are whole-file problems) and is the
    first bad row; ``problems`` holds every one found, ``(row, message)``, up to
    :data:`MAX_REPORTED_ROWS`, and ``more`` how many were found beyond that. A seller fixing a
    spreadsheet wants every bad row at once, not one per attempt.
    """

    def __init__(self, row: int, message: str, *, more: tuple[tuple[int, str], ...] = ()) -> None:
        self.problems: tuple[tuple[int, str], ...] = ((row, message), *more)[:MAX_REPORTED_ROWS]
        self.more = max(0, 1 + len(more) - MAX_REPORTED_ROWS)
        self.row = row
        lines = [_row_text(r, m) for r, m in self.problems]
        if self.more:
            lines.append(f"... and {self.more} more bad row(s)")
        if len(lines) == 1:
            super().__init__(lines[0])
        else:
            count = len(self.problems) + self.more
            super().__init__(f"{count} bad rows, nothing imported:\n  " + "\n  ".join(lines))

    @classmethod
    def raise_for(cls, problems: list[tuple[int, str]]) -> None:
        """Raise one error naming every problem (in row order), if there is any."""
        if problems:
            ordered = sorted(problems, key=lambda p: p[0])
            raise cls(*ordered[0], more=tuple(ordered[1:]))


MAX_REPORTED_ROWS = 50
"""Bad rows named in one :class:`CatalogError`; the rest are counted."""


def _row_text(row: int, message: str) -> str:
    return f"row {row}: {message}" if row else message


class ConfigError(InventoryError):
    """The settings cannot work as given."""


class EmbeddedServerError(InventoryError):
    """The embedded Redis-compatible server could not be started."""
