"""The catalog: marketplace ids back to seller SKUs, bundles, all-or-nothing imports."""

from __future__ import annotations

import pytest

from inventory_engine.errors import CatalogError
from inventory_engine.ledger.catalog import CatalogEntry, CatalogStore
from inventory_engine.ledger.keys import AccountKeys

KEYS = AccountKeys()


def entry(sku: str, **ids) -> CatalogEntry:
    return CatalogEntry.model_validate({"sku": sku, **ids})


@pytest.fixture
def store(redis_client):
    return CatalogStore(redis_client, channels=("ozon", "wb"))


def test_catalog_import_maps_marketplace_ids_back_to_skus(store):
    store.import_entries([entry("A", ozon_sku=147, wb_chrt_id=55, ym_offer_id="A-ym")])
    assert store.sku_for("ozon_sku", 147) == "A"
    assert store.sku_for("wb_chrt_id", "55") == "A"
    assert store.sku_for("ym_offer_id", "A-ym") == "A"
    assert store.sku_for("ozon_sku", 999) is None
    assert store.get("A").ozon_sku == 147


def test_catalog_import_replacing_an_id_drops_the_old_mapping(store):
    store.import_entries([entry("A", ozon_sku=147)])
    store.import_entries([entry("A", ozon_sku=148)])
    assert store.sku_for("ozon_sku", 147) is None
    assert store.sku_for("ozon_sku", 148) == "A"


def test_catalog_import_writes_bundles_and_their_parents(store, redis_client):
    store.import_entries([entry("A"), entry("B"), entry("K", bundle="A:2;B:1")])
    assert redis_client.hget(KEYS.bundles, "K") == b"A:2;B:1"
    assert redis_client.hget(KEYS.bundle_parents, "A") == b"K"
    store.import_entries([entry("K")])  # no longer a bundle
    assert redis_client.hget(KEYS.bundles, "K") is None
    assert redis_client.hget(KEYS.bundle_parents, "A") is None


def test_catalog_import_marks_entries_dirty_for_each_channel(store, redis_client):
    store.import_entries([entry("A"), entry("B")])
    for channel in ("ozon", "wb"):
        assert sorted(redis_client.zrange(KEYS.dirty(channel), 0, -1)) == [b"A", b"B"]


@pytest.mark.parametrize(
    ("entries", "row", "fragment"),
    [
        ([entry("A"), entry("A")], 2, "appears twice"),
        ([entry("A", ozon_sku=1), entry("B", ozon_sku=1)], 2, "already belongs to SKU A"),
        ([entry("K", bundle="GHOST:1")], 1, "GHOST is not in the catalog"),
        ([entry("K", bundle="K:1")], 1, "cannot contain itself"),
        ([entry("A"), entry("K", bundle="A:1"), entry("KK", bundle="K:1")], 3, "itself a bundle"),
    ],
)
def test_catalog_import_rejects_a_bad_file_whole(store, redis_client, entries, row, fragment):
    with pytest.raises(CatalogError) as caught:
        store.import_entries(entries)
    assert caught.value.row == row
    assert fragment in str(caught.value)
    assert redis_client.hlen(KEYS.catalog) == 0
    assert redis_client.hlen(KEYS.bundles) == 0


def test_catalog_import_id_owned_by_an_existing_entry_is_refused(store):
    store.import_entries([entry("A", wb_chrt_id=7)])
    with pytest.raises(CatalogError, match="already belongs to SKU A"):
        store.import_entries([entry("B", wb_chrt_id=7)])
    assert store.get("B") is None


def test_catalog_entries_make_skus_known_to_the_ledger(store, ledger, reader):
    from inventory_engine.domain.models import OrderAction, OrderLine

    store.import_entries([entry("A")])
    outcome = ledger.record_order(
        "ozon", "p1", [OrderLine(sku="A", quantity=1)], OrderAction.RESERVE
    )
    assert outcome.unknown_lines == 0
    assert outcome.oversold_units == 1  # known but never counted: 0 on hand
    assert reader.stock("A").available == -1
