"""Load the ledger's Lua scripts from package data and register them once per Redis client.

Each operation lives in ``lua/<name>.lua``; ``lua/_lib.lua`` (shared helpers and the common
KEYS/ARGV prologue) is prepended to each. redis-py's ``Script`` computes the SHA once, calls
EVALSHA and reloads on NOSCRIPT, so nothing here calls EVAL or SCRIPT LOAD by hand.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis import Redis
    from redis.commands.core import Script

SCRIPT_NAMES = (
    "apply_order_event",
    "try_reserve",
    "expire_due",
    "change_on_hand",
    "resolve_unknown",
)
"""Every operation script; each file is named after the ledger method that calls it."""


@cache
def script_source(name: str) -> str:
    """The full source of one operation: the shared library followed by the operation.

    Args:
        name: file stem under ``inventory_engine/ledger/lua``.
    """
    lua = files("inventory_engine.ledger").joinpath("lua")
    library = lua.joinpath("_lib.lua").read_text(encoding="utf-8")
    body = lua.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    return f"{library}\n{body}"


def register_scripts(client: Redis) -> dict[str, Script]:
    """Register every operation script on a client; cheap (no round trip until first call)."""
    return {name: client.register_script(script_source(name)) for name in SCRIPT_NAMES}
