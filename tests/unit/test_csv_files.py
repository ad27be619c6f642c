"""CSV files: every row checked before anything is written, errors name the row."""

from __future__ import annotations

from pathlib import Path

import pytest

from inventory_engine.csv_files import read_catalog_csv, read_stock_csv
from inventory_engine.errors import CatalogError


def write(tmp_path: Path, text: str, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_stock_csv_reads_rows_with_default_location(tmp_path):
    rows = read_stock_csv(write(tmp_path, "sku,on_hand,location\nA,5,\nB,0,east\n"))
    assert [(r.sku, r.on_hand, r.location) for r in rows] == [("A", 5, "main"), ("B", 0, "east")]


def test_read_stock_csv_accepts_semicolons_and_bom(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffsku;on_hand\nКружка-1;7\n".encode())
    rows = read_stock_csv(path)
    assert [(r.sku, r.on_hand) for r in rows] == [("Кружка-1", 7)]


@pytest.mark.parametrize(
    ("text", "row", "fragment"),
    [
        ("sku,on_hand\nA,5\nB,x\n", 2, "not a whole number"),
        ("sku,on_hand\nA,-1\n", 1, "between 0 and"),
        ("sku,on_hand\nA,1000000001\n", 1, "between 0 and"),
        ("sku,on_hand\nA,1\n,2\n", 2, "sku must not be empty"),
        ("sku,on_hand\nA,1\nA,2\n", 2, "already given in row 1"),
        ("sku,on_hand\nA,1,extra\n", 1, "more values than columns"),
    ],
)
def test_read_stock_csv_names_the_bad_row(tmp_path, text, row, fragment):
    with pytest.raises(CatalogError) as caught:
        read_stock_csv(write(tmp_path, text))
    assert caught.value.row == row
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"row {row}:")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sku\nA\n", "lacks column(s) on_hand"),
        ("sku,on_hand,colour\nA,1,red\n", "unknown column(s) colour"),
        ("sku,on_hand\n", "no data rows"),
    ],
)
def test_read_stock_csv_rejects_bad_files(tmp_path, text, fragment):
    with pytest.raises(CatalogError) as caught:
        read_stock_csv(write(tmp_path, text))
    assert caught.value.row == 0
    assert fragment in str(caught.value)


def test_read_stock_csv_missing_file_is_a_catalog_error(tmp_path):
    with pytest.raises(CatalogError, match="cannot read"):
        read_stock_csv(tmp_path / "nope.csv")


def test_read_catalog_csv_parses_ids_and_bundles(tmp_path):
    text = (
        "sku,ozon_offer_id,ozon_sku,ozon_product_id,wb_chrt_id,ym_offer_id,bundle\n"
        "A,A-1,147451959,313455276,12345678,A-ym,\n"
        "B,,,,,,\n"
        "K,,,,,,A:2;B:1\n"
    )
    entries = read_catalog_csv(write(tmp_path, text))
    assert entries[0].ozon_sku == 147451959
    assert entries[0].wb_chrt_id == 12345678
    assert entries[0].ym_offer_id == "A-ym"
    assert entries[1].ozon_sku is None
    assert entries[1].bundle is None
    assert entries[2].bundle == (("A", 2), ("B", 1))


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("A,,abc,,,,", "ozon_sku"),
        ("A,,,,-5,,", "wb_chrt_id"),
        ("A,,,,,,B:0", "between 1 and"),
        ("A,,,,,,B:x", "not a whole number"),
        ("A,,,,,,B:1;B:2", "listed twice"),
    ],
)
def test_read_catalog_csv_names_the_bad_row(tmp_path, line, fragment):
    header = "sku,ozon_offer_id,ozon_sku,ozon_product_id,wb_chrt_id,ym_offer_id,bundle\n"
    with pytest.raises(CatalogError) as caught:
        read_catalog_csv(write(tmp_path, header + "Z,,,,,,\n" + line + "\n"))
    assert caught.value.row == 2
    assert fragment in str(caught.value)
