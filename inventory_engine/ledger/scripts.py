"""Load the engine's Lua scripts from package data and register them once per Redis client.

The one loader for every ``.lua`` file: the ledger's (``inventory_engine/ledger/lua``) and the
push path's (``inventory_engine/sync/lua``). Each operation lives in ``lua/<name>.lua``; a
package's ``lua/_<library>.lua`` (shared helpers, the common KEYS/ARGV prologue) is prepended to
each of its operations. redis-py's ``Script`` computes the SHA once, calls EVALSHA and reloads
on NOSCRIPT, so nothing here calls EVAL or SCRIPT LOAD by hand.
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
    "dismiss_unknown",
)
"""Every ledger operation script; each file is named after the ledger method that calls it."""


@cache
def lua_source(package: str, name: str, library: str | None = None) -> str:
    """The full source of one script: the package's shared library (if any), then the script.

    Args:
        package: the Python package holding a ``lua`` folder (``inventory_engine.sync``).
        name: file stem under that folder.
        library: file stem of the shared library prepended to it (``_lib``), or None.
    """
    lua = files(package).joinpath("lua")
    body = lua.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    if library is None:
        return body
    return f"{lua.joinpath(f'{library}.lua').read_text(encoding='utf-8')}\n{body}"


def script_source(name: str) -> str:
    """The full source of one ledger operation: ``_lib.lua`` followed by the operation."""
    return lua_source("inventory_engine.ledger", name, "_lib")


def register_scripts(client: Redis) -> dict[str, Script]:
    """Register every ledger script on a client; cheap (no round trip until first call)."""
    return {name: client.register_script(script_source(name)) for name in SCRIPT_NAMES}
