"""Open the Redis connection a command needs: the configured URL, or the embedded server.

Every entry point (CLI commands, ``serve``) goes through :func:`redis_connection`, so "no URL
configured" means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import redis
import structlog

from inventory_engine.config import Settings
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
    client = redis.Redis.from_url(url, socket_timeout=10, health_check_interval=30)
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


def redact_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
