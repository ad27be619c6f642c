"""Both packages ship their files: every Lua script is package data, with the shared library.

(How imports run is checked by the import contracts: ``tests/unit/test_import_contracts.py``.)"""

from __future__ import annotations

from importlib.resources import files

from inventory_engine.ledger.scripts import SCRIPT_NAMES, library_source, script_source


def test_every_script_is_package_data_with_the_shared_library():
    lua = files("inventory_engine.ledger").joinpath("lua")
    for name in SCRIPT_NAMES:
        assert lua.joinpath(f"{name}.lua").is_file()
        source = script_source(name)
        assert "-- _lib.lua" in source
        assert f"-- {name}.lua" in source
        assert f"-- {name}.lua" in library_source()
