"""The environment the engine starts its embedded server with (its allocator)."""

from __future__ import annotations

import pytest

from inventory_engine.config import EmbeddedSettings
from inventory_engine.embedded import allocator_in_use, find_mimalloc, server_environment

LIBRARY = "/opt/lib/libmimalloc.so"


def test_mimalloc_is_preloaded_and_the_rest_kept():
    env = server_environment("mimalloc", {"PATH": "/usr/bin"}, mimalloc=LIBRARY)
    assert env == {"PATH": "/usr/bin", "LD_PRELOAD": LIBRARY}


def test_system_leaves_the_environment_alone():
    assert server_environment("system", {"PATH": "/usr/bin"}, mimalloc=LIBRARY) == {
        "PATH": "/usr/bin"
    }


def test_an_operators_own_preload_is_kept_without_ours():
    theirs = {"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}
    assert server_environment("mimalloc", theirs, mimalloc=LIBRARY) == theirs


def test_the_given_environment_is_not_changed():
    given = {"PATH": "/usr/bin"}
    server_environment("mimalloc", given, mimalloc=LIBRARY)
    assert given == {"PATH": "/usr/bin"}


def test_mimalloc_is_the_default_and_only_two_values_are_taken():
    assert EmbeddedSettings().allocator == "mimalloc"
    with pytest.raises(ValueError, match="allocator"):
        EmbeddedSettings(allocator="tcmalloc")


def test_the_package_ships_the_library_on_linux():
    """A dependency on Linux (pyproject.toml), so the library is there wherever tests run."""
    path = find_mimalloc()
    assert path is not None
    assert path.endswith("libmimalloc.so")


def test_the_allocator_of_a_process_that_is_gone_is_unknown():
    assert allocator_in_use(2**22 + 1) == "unknown"
