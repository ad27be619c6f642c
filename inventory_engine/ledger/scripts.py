"""Load the engine's Lua code from package data: the ledger as one Redis Functions library, and
one script per operation for servers without Functions and for the push path.

* **The ledger** (``inventory_engine/ledger/lua``): ``_lib.lua`` (shared helpers, the common
  KEYS/ARGV prologue) and one file per operation. They are loaded once as a Functions library
  (``FUNCTION LOAD``; on a cluster, on every primary): the helpers are created when the library
  loads, not again on every call as a script prepended with them would be. The library's name
  and its functions' names carry a digest of the code, so processes of two engine versions
  (a rolling upgrade) each call their own, and a server that lost its functions (a restart
  without persistence, ``FUNCTION FLUSH``) gets them again at the next call
  (:class:`LedgerCode`). Where Functions are missing (Redis before 7, a proxy that does not pass
  ``FCALL``) each operation runs as a script through EVALSHA, built from the same code.
* **Other packages' scripts** (``inventory_engine/sync/lua``): plain scripts through redis-py's
  ``Script`` (EVALSHA, reloaded on NOSCRIPT), :func:`lua_source`.
"""

from __future__ import annotations

import hashlib
import threading
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import redis

if TYPE_CHECKING:
    from redis.commands.core import Script

SCRIPT_NAMES = (
    "apply_order_event",
    "try_reserve",
    "expire_due",
    "change_on_hand",
    "resolve_unknown",
    "dismiss_unknown",
)
"""Every ledger operation; each file is named after the ledger method that calls it."""

LIBRARY_FILE = "_lib"
"""The ledger's shared helpers (``lua/_lib.lua``)."""


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


def _ledger_file(name: str) -> str:
    return lua_source("inventory_engine.ledger", name)


@cache
def code_digest() -> str:
    """12 hex digits of SHA-1 over the ledger's Lua: names the library and its functions."""
    digest = hashlib.sha1(usedforsecurity=False)
    for name in (LIBRARY_FILE, *SCRIPT_NAMES):
        digest.update(_ledger_file(name).encode())
    return digest.hexdigest()[:12]


def library_name() -> str:
    return f"inventory_ledger_{code_digest()}"


def function_name(operation: str) -> str:
    """The registered name of one operation (unique across versions: functions share one
    namespace on a server)."""
    return f"inv_{code_digest()}_{operation}"


def _operation(name: str) -> str:
    """One operation's file as a local function that sets the call's prologue first."""
    return f"local function op_{name}(keys, args)\nbegin(keys, args)\n{_ledger_file(name)}\nend\n"


@cache
def library_source() -> str:
    """The ledger as one Functions library: the helpers once, then every operation."""
    parts = [f"#!lua name={library_name()}", _ledger_file(LIBRARY_FILE)]
    for name in SCRIPT_NAMES:
        parts.append(_operation(name))
        parts.append(f"redis.register_function('{function_name(name)}', op_{name})")
    return "\n".join(parts) + "\n"


@cache
def script_source(name: str) -> str:
    """One operation as a script (servers without Functions): the same code, run whole at every
    call. KEYS and ARGV are read before the helpers declare their own upvalues of those names."""
    return (
        "local CALL_KEYS, CALL_ARGV = KEYS, ARGV\n"
        f"{_ledger_file(LIBRARY_FILE)}\n{_operation(name)}\n"
        f"return op_{name}(CALL_KEYS, CALL_ARGV)\n"
    )


def _missing_function(error: redis.ResponseError) -> bool:
    return "function not found" in str(error).lower()


def _no_functions(error: redis.ResponseError) -> bool:
    """The server (or a proxy before it) does not know FUNCTION/FCALL."""
    text = str(error).lower()
    return "unknown command" in text or "unknown subcommand" in text


class LedgerCode:
    """Runs the ledger's operations on one Redis client: ``FCALL`` of the library's functions,
    loading the library the first time and whenever the server answers that a function is
    missing; EVALSHA of the per-operation scripts where the server has no Functions.

    Args:
        client: the ledger's client.
        functions: True or False to choose; None (default): :attr:`DEFAULT`.
    """

    DEFAULT: bool | None = None
    """None: ask the server once (tests set False to run every ledger test on the scripts)."""

    def __init__(self, client: redis.Redis, *, functions: bool | None = None) -> None:
        self.client = client
        self.functions = functions if functions is not None else self.DEFAULT
        self._loaded = False
        self._lock = threading.Lock()
        # Cheap (no round trip until the first call).
        self._scripts: dict[str, Script] = {
            name: client.register_script(script_source(name)) for name in SCRIPT_NAMES
        }

    def load(self) -> None:
        """Load the library (also tells whether the server has Functions, when that was left
        to ask). With REPLACE: the library's name is its code's digest, so a library already
        there is this very code, and on a cluster (where the load goes to every primary, one
        after the other) a primary that has it does not stop the load before one that lost it.

        Raises:
            redis.RedisError: the server refused otherwise, or could not be reached.
        """
        with self._lock:
            if self.functions is False:
                return
            try:
                self.client.function_load(library_source(), replace=True)
            except redis.ResponseError as exc:
                if self.functions is None and _no_functions(exc):
                    self.functions = False
                    return
                raise
            self.functions = True
            self._loaded = True

    def run(self, name: str, keys: list[str], args: list[Any], client: Any = None) -> Any:
        """One operation on ``client`` (default: the ledger's client; a pipeline queues it and
        its reply comes with the pipeline's, see :meth:`missing`)."""
        target = client if client is not None else self.client
        if not self._loaded and self.functions is not False:
            self.load()
        if not self.functions:
            return self._scripts[name](keys=keys, args=args, client=target)
        call = function_name(name)
        if isinstance(target, redis.client.Pipeline):
            return target.fcall(call, len(keys), *keys, *args)
        try:
            return target.fcall(call, len(keys), *keys, *args)
        except redis.ResponseError as exc:
            if not _missing_function(exc):
                raise
            self._loaded = False
            self.load()
            return target.fcall(call, len(keys), *keys, *args)

    def missing(self, reply: object) -> bool:
        """A pipelined reply saying the function was missing (the server lost the library
        between the load and the call): nothing ran; load again and send that call again."""
        return isinstance(reply, redis.ResponseError) and _missing_function(reply)
