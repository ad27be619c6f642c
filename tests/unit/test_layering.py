"""Imports flow one way: the domain is pure, and both packages ship their files."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files

from inventory_engine.ledger.scripts import SCRIPT_NAMES, script_source


def test_domain_imports_no_io_library():
    code = (
        "import sys, inventory_engine.domain.models, inventory_engine.domain.bundles, "
        "inventory_engine.domain.status_rules; "
        "print(sorted(m for m in ('redis', 'httpx', 'rq', 'structlog') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_script_is_package_data_with_the_shared_library():
    lua = files("inventory_engine.ledger").joinpath("lua")
    for name in SCRIPT_NAMES:
        assert lua.joinpath(f"{name}.lua").is_file()
        source = script_source(name)
        assert source.startswith("-- _lib.lua")
        assert f"-- {name}.lua" in source
