"""Issue §4, bad CSV input: every bad row of a stock or catalog file is named in the error (data
rows count from 1 under the header), and a file with a bad row imports nothing, however far down
the row is and whichever check finds it (the reader, the catalog's rules, the ledger).

Beyond ``test_csv_files`` (the readers' basic cases) and ``tests/integration/test_cli.py`` (one
bad row each, on a real server): the import commands themselves run here on fakeredis, through
``typer``'s runner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
from typer.testing import CliRunner

import inventory_engine.cli as cli
from inventory_engine.csv_files import read_catalog_csv, read_stock_csv
from inventory_engine.errors import CatalogError
from inventory_engine.ledger.catalog import CatalogStore
from inventory_engine.ledger.keys import AccountKeys
from tests.conftest import write_bundles

KEYS = AccountKeys()
CATALOG_HEADER = "sku,ozon_offer_id,ozon_sku,ozon_product_id,wb_chrt_id,ym_offer_id,bundle\n"


def write(tmp_path: Path, text: str, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def stock_rows(count: int) -> str:
    return "".join(f"S{i},{i % 50}\n" for i in range(1, count + 1))


# -- the readers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "row", "fragment"),
    [
        ("sku,on_hand\nA,five\n", 1, "'five' is not a whole number"),
        ("sku,on_hand\nA,1.0\n", 1, "'1.0' is not a whole number"),
        ("sku,on_hand\nA,1e3\n", 1, "'1e3' is not a whole number"),
        ("sku,on_hand\nA,\n", 1, "'' is not a whole number"),
        ("sku,on_hand\nA\n", 1, "'' is not a whole number"),
        ("sku,on_hand\nA,1 000\n", 1, "not a whole number"),
        ("sku;on_hand\nA;1,5\n", 1, "'1,5' is not a whole number"),
        ("sku,on_hand\nA,99999999999999999999999\n", 1, "between 0 and"),
        ("sku,on_hand\nA,1\n\x00B,1\n", 2, "printable"),
        ("sku,on_hand\nA,1\nB\u202e,1\n", 2, "printable"),
        ("sku,on_hand\nA,1\n" + "x" * 201 + ",1\n", 2, "longer than"),
        ("sku,on_hand,location\nA,1,main\nA,2,\n", 2, "already given in row 1"),
        ("sku,on_hand\n" + stock_rows(4_999) + "LAST,-1\n", 5_000, "between 0 and"),
        ("sku,on_hand\nA,1\n\nB,x\n", 2, "'x' is not a whole number"),  # blank lines: no row
    ],
)
def test_a_bad_stock_row_is_named(tmp_path, text, row, fragment):
    with pytest.raises(CatalogError) as caught:
        read_stock_csv(write(tmp_path, text))
    assert caught.value.row == row
    assert str(caught.value).startswith(f"row {row}:")
    assert fragment in str(caught.value)


def test_a_quoted_line_break_in_a_sku_is_refused_not_joined(tmp_path):
    with pytest.raises(CatalogError) as caught:
        read_stock_csv(write(tmp_path, 'sku,on_hand\nOK,1\n"A\nB",1\n'))
    assert caught.value.row == 2


def test_a_column_named_twice_is_refused(tmp_path):
    with pytest.raises(CatalogError) as caught:
        read_stock_csv(write(tmp_path, "sku,sku,on_hand\nA,B,1\n"))
    assert caught.value.row == 0


def test_a_location_the_ledger_refuses_is_named_by_the_reader(tmp_path):
    with pytest.raises(CatalogError) as caught:
        read_stock_csv(write(tmp_path, "sku,on_hand,location\nA,1,main\nB,1,a|b\n"))
    assert caught.value.row == 2


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("A,,0,,,,", "ozon_sku"),
        ("A,,-1,,,,", "ozon_sku"),
        ("A,,,,1e5,,", "wb_chrt_id"),
        ("A,,,,x,,", "wb_chrt_id"),
        ("A,,,0,,,", "ozon_product_id"),
        ("A\u202e,,,,,,", "printable"),
        (",,,,,,", "sku"),
        ("A,,,,,,B:2:3", "may not contain"),
        ("A,,,,,,B:1000000", "between 1 and"),
        ("A,,,,,,B:-1", "between 1 and"),
        ("A,,,,,,:1", "bundle"),
        ("A,1,2,3,4,5,6,7", "more values than columns"),
    ],
)
def test_a_bad_catalog_row_is_named(tmp_path, line, fragment):
    text = CATALOG_HEADER + "Z,,,,,,\nY,,,,,,\n" + line + "\n"
    with pytest.raises(CatalogError) as caught:
        read_catalog_csv(write(tmp_path, text))
    assert caught.value.row == 3
    assert fragment in str(caught.value)


# -- the catalog's rules: the file row is named, nothing is written -----------------------------


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    store: redis.Redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    yield store
    store.close()


@pytest.mark.parametrize(
    ("lines", "row", "fragment"),
    [
        (["A,A,1,,,,", "B,B,2,,,,", "A,A2,3,,,,"], 3, "SKU A appears twice"),
        (["A,A,1,,,,", "B,B,1,,,,"], 2, "ozon_sku 1 already belongs to SKU A"),
        (["A,,,,7,,", "B,,,,8,,", "C,,,,7,,"], 3, "wb_chrt_id 7 already belongs to SKU A"),
        (["A,,,,,ym-a,", "B,,,,,ym-a,"], 2, "ym_offer_id ym-a already belongs to SKU A"),
        (["A,,,,,,", "K,,,,,,A:1;GHOST:2"], 2, "GHOST is not in the catalog"),
        (["A,,,,,,", "K,,,,,,A:1;K:1"], 2, "cannot contain itself"),
        (["A,,,,,,", "K1,,,,,,A:2", "K2,,,,,,K1:1"], 3, "which is itself a bundle"),
    ],
)
def test_a_catalog_file_breaking_a_rule_names_the_row_and_writes_nothing(
    tmp_path, client, lines, row, fragment
):
    entries = read_catalog_csv(write(tmp_path, CATALOG_HEADER + "\n".join(lines) + "\n"))
    store = CatalogStore(client, channels=["ozon", "wb"])
    with pytest.raises(CatalogError) as caught:
        store.import_entries(entries)
    assert caught.value.row == row
    assert fragment in str(caught.value)
    assert client.keys("*") == []


def test_a_rule_broken_with_the_stored_catalog_is_blamed_on_the_file_row(tmp_path, client):
    store = CatalogStore(client)
    store.import_entries(read_catalog_csv(write(tmp_path, CATALOG_HEADER + "A,,1,,,,\n")))
    before = {key: client.dump(key) for key in client.keys("*")}
    update = CATALOG_HEADER + "B,,2,,,,\nC,,3,,,,\nD,,1,,,,\n"  # ozon_sku 1 is A's
    with pytest.raises(CatalogError) as caught:
        store.import_entries(read_catalog_csv(write(tmp_path, update)))
    assert caught.value.row == 3
    assert "already belongs to SKU A" in str(caught.value)
    assert {key: client.dump(key) for key in client.keys("*")} == before


# -- the import commands: a bad row anywhere, nothing imported ----------------------------------


@pytest.fixture
def run_cli(tmp_path, client, monkeypatch) -> Callable[..., tuple[int, str]]:
    """``run_cli("stock", "import", path)`` against ``client`` (fakeredis), with an empty
    config file, so nothing on the machine is read or started."""
    for name in ("INVENTORY_CONFIG", "INVENTORY_REDIS_URL", "INVENTORY_REDIS__URL"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config.toml"
    config.write_text("")

    @contextmanager
    def connection(_settings: Any) -> Iterator[redis.Redis]:
        yield client

    monkeypatch.setattr(cli, "redis_connection", connection)

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli.app, [*args, "--config", str(config)])
        return result.exit_code, result.output

    return run


def counts(client: redis.Redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in client.hgetall(KEYS.on_hand).items()}


def test_stock_import_with_a_bad_row_past_the_first_chunks_imports_nothing(
    tmp_path, client, run_cli
):
    # 2,500 good rows (three chunks of the ledger's import), then the bad one.
    good = write(tmp_path, "sku,on_hand\nKEEP,3\n", "good.csv")
    assert run_cli("stock", "import", str(good))[0] == 0
    bad = write(tmp_path, "sku,on_hand\nKEEP,9\n" + stock_rows(2_500) + "LAST,x\n", "bad.csv")
    code, output = run_cli("stock", "import", str(bad))
    assert code == 2
    assert "row 2502" in output
    assert counts(client) == {"main|KEEP": 3}


def test_stock_import_of_a_bundle_in_the_same_location_imports_nothing(tmp_path, client, run_cli):
    write_bundles(client, {"KIT": "A:1"})
    code, output = run_cli(
        "stock",
        "import",
        str(write(tmp_path, "sku,on_hand\nA,5\n" + stock_rows(1_500) + "KIT,3\n")),
    )
    assert code == 2
    assert "KIT" in output
    assert "bundle" in output
    assert counts(client) == {}


@pytest.mark.parametrize(
    ("rows", "setup"),
    [
        ("A,5,main\nB,7,main\nKIT,3,east\n", {"KIT": "A:1"}),
        ("A,5,main\nB,7,a|b\n", {}),
    ],
    ids=["bundle-in-a-later-location", "bad-location-later"],
)
def test_stock_import_refused_in_a_later_location_imports_nothing(
    tmp_path, client, run_cli, rows, setup
):
    if setup:
        write_bundles(client, setup)
    code, output = run_cli("stock", "import", str(write(tmp_path, "sku,on_hand,location\n" + rows)))
    assert code == 2
    assert counts(client) == {}
    assert "row " in output


def test_catalog_import_with_a_bad_row_imports_nothing(tmp_path, client, run_cli):
    good = write(tmp_path, CATALOG_HEADER + "A,A,1,,,,\n", "good.csv")
    assert run_cli("catalog", "import", str(good))[0] == 0
    before = {key: client.dump(key) for key in client.keys("inv:*") if b"catalog" in key}
    lines = "".join(f"S{i},S{i},{i + 10},,,,\n" for i in range(1, 300))
    for bad_row in ("Z,,1,,,,\n", "Z,,,,,,A:1;NOPE:1\n", "Z,,x,,,,\n"):
        code, output = run_cli(
            "catalog", "import", str(write(tmp_path, CATALOG_HEADER + lines + bad_row, "bad.csv"))
        )
        assert code == 2, output
        assert "row 300" in output
        after = {key: client.dump(key) for key in client.keys("inv:*") if b"catalog" in key}
        assert after == before


# -- every bad row at once (issue 12 §16): a seller fixes the file in one go ---------------------


def test_every_bad_stock_row_is_named_not_only_the_first(tmp_path):
    text = "sku,on_hand\nA,1\nB,x\nC,2\nD,-4\nA,3\nE,1,9\n"
    with pytest.raises(CatalogError) as caught:
        read_stock_csv(write(tmp_path, text))
    assert [row for row, _ in caught.value.problems] == [2, 4, 5, 6]
    assert caught.value.row == 2
    message = str(caught.value)
    assert message.startswith("4 bad rows, nothing imported:")
    for fragment in (
        "row 2: on_hand 'x' is not a whole number",
        "row 4: ",
        "row 5: A at main already given in row 1",
        "row 6: more values than columns",
    ):
        assert fragment in message


def test_every_bad_catalog_row_is_named_by_the_reader_and_by_the_rules(tmp_path, client):
    with pytest.raises(CatalogError) as caught:
        read_catalog_csv(write(tmp_path, CATALOG_HEADER + "A,,0,,,,\nB,,,,,,\nC,,,,x,,\n"))
    assert [row for row, _ in caught.value.problems] == [1, 3]
    entries = read_catalog_csv(
        write(tmp_path, CATALOG_HEADER + "A,,1,,,,\nB,,1,,,,\nK,,,,,,GHOST:1\nA,,,,,,\n")
    )
    with pytest.raises(CatalogError) as caught:
        CatalogStore(client).import_entries(entries)
    assert [row for row, _ in caught.value.problems] == [2, 3, 4]
    assert "ozon_sku 1 already belongs to SKU A" in str(caught.value)
    assert "GHOST is not in the catalog" in str(caught.value)
    assert "SKU A appears twice" in str(caught.value)


def test_a_file_of_many_bad_rows_names_the_first_fifty_and_counts_the_rest(tmp_path):
    from inventory_engine.errors import MAX_REPORTED_ROWS

    text = "sku,on_hand\n" + "".join(f"S{i},bad\n" for i in range(1, 121))
    with pytest.raises(CatalogError) as caught:
        read_stock_csv(write(tmp_path, text))
    assert len(caught.value.problems) == MAX_REPORTED_ROWS == 50
    assert caught.value.more == 70
    message = str(caught.value)
    assert message.startswith("120 bad rows, nothing imported:")
    assert "row 50:" in message
    assert "row 51:" not in message
    assert message.endswith("... and 70 more bad row(s)")


def test_the_import_command_prints_every_bad_row_and_exits_2(tmp_path, client, run_cli):
    code, output = run_cli(
        "stock", "import", str(write(tmp_path, "sku,on_hand\nA,1\nB,x\nC,-1\nD,y\n"))
    )
    assert code == 2, output
    for row in (2, 3, 4):
        assert f"row {row}:" in output
    assert counts(client) == {}


def test_exit_codes_follow_one_convention_for_stock_commands(tmp_path, client, run_cli):
    """0 done; 1 done with something to report (an unknown SKU); 2 an error (bad input)."""
    assert run_cli("stock", "set", "A", "3")[0] == 0
    assert run_cli("stock", "show", "NOPE")[0] == 1
    assert run_cli("stock", "adjust", "A", "--by=-9", "--reason", "lost")[0] == 2
    assert run_cli("stock", "import", str(tmp_path / "missing.csv"))[0] == 2
