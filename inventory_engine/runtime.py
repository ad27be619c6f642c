"""Open the Redis connections a command needs: the configured URL (a single server or a Redis
Cluster), or the embedded server; and the queues' Redis.

Every entry point (CLI commands, ``serve``, workers) goes through :func:`redis_connection` /
:func:`connect`, so "no URL configured" and "a cluster URL" mean the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
import structlog
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel

from inventory_engine.config import CLUSTER_SCHEMES, SENTINEL_SCHEMES, Settings, redact_url
from inventory_engine.embedded import ensure_embedded_server
from inventory_engine.errors import ConfigError, LedgerUnavailableError

log = structlog.get_logger()


@contextmanager
def redis_connection(settings: Settings) -> Iterator[redis.Redis]:
    """Yield a client to the ledger's Redis; an embedded server this call started is stopped
    on exit, one started by someone else (a running ``serve``) is left alone.

    Raises:
        LedgerUnavailableError: the configured server does not answer.
        EmbeddedServerError: the embedded server could not be started.
    """
    server = None
    url = settings.redis.url
    if url is None:
        server = ensure_embedded_server(settings.embedded)
        url = server.url
        if not server.owned:
            log.debug("embedded_server_reused", url=url)
    client = connect(url, cluster=settings.redis.cluster)
    try:
        try:
            client.ping()
        except redis.RedisError as exc:
            raise LedgerUnavailableError(f"cannot reach Redis at {redact_url(url)}: {exc}") from exc
        yield client
    finally:
        client.close()
        if server is not None:
            server.stop()


def connect(url: str, *, cluster: bool = False, **options: Any) -> redis.Redis:
    """A client for ``url``: redis-py's cluster client for a ``redis+cluster://`` URL (or
    ``cluster``), else a plain one. The cluster client speaks the same commands for keys of
    one slot, pipelines, scripts and FCALL, which is all the ledger and the sync state use (an
    account's keys share one hash tag), so it is handed on typed as a plain client.
    """
    options = {"socket_timeout": 10, "health_check_interval": 30, **options}
    if url.startswith(SENTINEL_SCHEMES):
        return sentinel_master(url, **options)
    if cluster or url.startswith(CLUSTER_SCHEMES):
        plain = url.replace("+cluster://", "://", 1)
        options.pop("health_check_interval")  # per node connection pools keep their own
        return cast(redis.Redis, RedisCluster.from_url(plain, **options))
    return redis.Redis.from_url(url, **options)


def sentinel_master(url: str, **options: Any) -> redis.Redis:
    """The current primary of a Sentinel-managed Redis, ``redis+sentinel://[:password@]
    host:port[,host:port...]/service[/db]``: redis-py asks the sentinels where the primary is,
    and asks again after a failover (a connection to a demoted primary is dropped).

    Raises:
        ConfigError: the URL names no sentinel or no service.
    """
    parts = urlsplit(url.replace("+sentinel://", "://", 1))
    userinfo, _, hosts = parts.netloc.rpartition("@")
    password = unquote(userinfo.partition(":")[2]) if userinfo else None
    sentinels = []
    for item in hosts.split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{redact_url(url)}: sentinels are host:port, comma separated")
        sentinels.append((host, int(port)))
    path = [piece for piece in parts.path.split("/") if piece]
    if not path:
        raise ConfigError(f"{redact_url(url)}: name the service, e.g. .../mymaster/0")
    db = int(path[1]) if len(path) > 1 and path[1].isdigit() else 0
    options.pop("health_check_interval", None)
    sentinel = Sentinel(sentinels, socket_timeout=options.get("socket_timeout", 10))
    master: redis.Redis = sentinel.master_for(
        unquote(path[0]), password=password, db=db, ssl=parts.scheme == "rediss", **options
    )
    return master


def queue_connection(settings: Settings, client: redis.Redis) -> redis.Redis:
    """The Redis of the RQ queues, the inbox and the job guards: ``[redis] queue_url``, else
    the ledger's own ``client``."""
    url = settings.redis.queue_url
    return client if url is None else connect(url)
