"""Read the seller's CSV files (stock counts, catalog), checking every row before anything is
written. Errors name the data row (1 = first row under the header) and what is wrong with it.

Files exported from spreadsheets often come with a byte-order mark and ``;`` as delimiter:
both are accepted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from inventory_engine.constants import DEFAULT_LOCATION
from inventory_engine.domain.models import check_identifier, check_stock_level
from inventory_engine.errors import CatalogError
from inventory_engine.ledger.catalog import CatalogEntry
from inventory_engine.ledger.events import check_location

STOCK_COLUMNS = ("sku", "on_hand")
STOCK_OPTIONAL = ("location",)
CATALOG_COLUMNS = ("sku",)
CATALOG_OPTIONAL = (
    "ozon_offer_id",
    "ozon_sku",
    "ozon_product_id",
    "wb_chrt_id",
    "ym_offer_id",
    "bundle",
)


@dataclass(frozen=True, slots=True)
class StockRow:
    sku: str
    on_hand: int
    location: str


def _rows(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, str] | None]]:
    """Numbered data rows; ``None`` for a row with more values than the header has columns.

    Raises:
        CatalogError: the file cannot be read or its header is wrong (nothing else can be
            checked then).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(0, f"cannot read {path}: {exc}") from exc
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    # newline="": a quoted value keeps its line break (and is then refused as an identifier)
    # instead of being silently joined into another value.
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [name.strip() for name in reader.fieldnames or []]
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise CatalogError(0, f"column(s) {', '.join(twice)} named more than once")
    missing = [name for name in required if name not in header]
    if missing:
        raise CatalogError(0, f"header lacks column(s) {', '.join(missing)}; found {header}")
    unknown = [name for name in header if name not in required + optional]
    if unknown:
        raise CatalogError(0, f"unknown column(s) {', '.join(unknown)}")
    reader.fieldnames = header
    for row_number, raw in enumerate(reader, start=1):
        if None in raw:  # DictReader files surplus values under the key None
            yield row_number, None
            continue
        yield row_number, {key: (value or "").strip() for key, value in raw.items()}


TOO_MANY_VALUES = "more values than columns"


def read_stock_csv(path: Path) -> list[StockRow]:
    """Rows of ``sku,on_hand[,location]``.

    Raises:
        CatalogError: the header's problem, or every bad row with its number.
    """
    rows: list[StockRow] = []
    problems: list[tuple[int, str]] = []
    seen: dict[tuple[str, str], int] = {}
    count = 0
    for number, raw in _rows(path, STOCK_COLUMNS, STOCK_OPTIONAL):
        count += 1
        if raw is None:
            problems.append((number, TOO_MANY_VALUES))
            continue
        try:
            sku = check_identifier(raw["sku"], "sku")
            location = check_location(raw.get("location") or DEFAULT_LOCATION)
            try:
                quantity = int(raw["on_hand"])
            except ValueError:
                raise ValueError(f"on_hand {raw['on_hand']!r} is not a whole number") from None
            check_stock_level(quantity)
        except ValueError as exc:
            problems.append((number, str(exc)))
            continue
        if (sku, location) in seen:
            problems.append(
                (number, f"{sku} at {location} already given in row {seen[sku, location]}")
            )
            continue
        seen[sku, location] = number
        rows.append(StockRow(sku, quantity, location))
    CatalogError.raise_for(problems)
    if not count:
        raise CatalogError(0, "the file has no data rows")
    return rows


def read_catalog_csv(path: Path) -> list[CatalogEntry]:
    """Rows of ``sku,ozon_offer_id,ozon_sku,ozon_product_id,wb_chrt_id,ym_offer_id,bundle``.

    An empty id means "not listed on that channel"; ``bundle`` looks like ``A:2;B:1``.

    Raises:
        CatalogError: the header's problem, or every bad row with its number.
    """
    entries: list[CatalogEntry] = []
    problems: list[tuple[int, str]] = []
    count = 0
    for number, raw in _rows(path, CATALOG_COLUMNS, CATALOG_OPTIONAL):
        count += 1
        if raw is None:
            problems.append((number, TOO_MANY_VALUES))
            continue
        try:
            entries.append(CatalogEntry.model_validate({k: v for k, v in raw.items() if v}))
        except ValidationError as exc:
            problems.append(
                (
                    number,
                    "; ".join(
                        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                        for err in exc.errors()
                    ),
                )
            )
    CatalogError.raise_for(problems)
    if not count:
        raise CatalogError(0, "the file has no data rows")
    return entries
