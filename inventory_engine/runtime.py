"""Open the Redis connections a command needs: the configured URL (a single server or a Redis
Cluster), or the embedded server; and the queues' Redis.

Every entry point (CLI commands, ``serve``, workers) goes through :func:`redis_connection` /
:func:`connect`, so "no URL configured" and "a cluster URL" mean the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import redis
import structlog
from redis.cluster import RedisCluster

from inventory_engine.config import CLUSTER_SCHEMES, Settings
from inventory_engine.embedded import ensure_embedded_server
from inventory_engine.errors import LedgerUnavailableError

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
    if cluster or url.startswith(CLUSTER_SCHEMES):
        plain = url.replace("+cluster://", "://", 1)
        options.pop("health_check_interval")  # per node connection pools keep their own
        return cast(redis.Redis, RedisCluster.from_url(plain, **options))
    return redis.Redis.from_url(url, **options)


def queue_connection(settings: Settings, client: redis.Redis) -> redis.Redis:
    """The Redis of the RQ queues, the inbox and the job guards: ``[redis] queue_url``, else
    the ledger's own ``client``."""
    url = settings.redis.queue_url
    return client if url is None else connect(url)


def redact_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
