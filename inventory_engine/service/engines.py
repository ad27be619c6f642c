"""Every seller account of a deployment, each with its own :class:`~.engine.Engine`.

One process serves all accounts: the HTTP intake routes a webhook by its path and a storefront
call by its token, a worker runs each job with the engine of the account the job names, and the
daemon's loops go over every account. The engines share the two Redis connections (the ledger's
and the queues'), nothing else: each account's keys carry its own ``{account}``, its channels
have their own clients, limits and sender threads, so one account's slow or failing marketplace
never holds another's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import redis

from inventory_engine.config import ChannelSettings, Settings
from inventory_engine.errors import ConfigError
from inventory_engine.service.engine import Engine


class Engines:
    """The engines of ``settings``' accounts, by account name.

    Args:
        settings: the deployment's settings (one account, or ``[[accounts]]``).
        client: the ledger's Redis.
        queue_client: the queues' Redis (default: the same).
        channels: channels for a single-account deployment that configures none (sandbox mode).
    """

    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        *,
        queue_client: redis.Redis | None = None,
        channels: Sequence[ChannelSettings] | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.queue_client = queue_client or client
        self.by_account: dict[str, Engine] = {}
        for name in settings.account_names():
            own = settings.for_account(name)
            self.by_account[name] = Engine(
                own,
                client,
                queue_client=self.queue_client,
                channels=channels if channels and not settings.accounts else None,
            )

    def __getitem__(self, account: str) -> Engine:
        """The account's engine.

        Raises:
            ConfigError: no account has that name.
        """
        engine = self.by_account.get(account)
        if engine is None:
            known = ", ".join(self.by_account)
            raise ConfigError(f"no account named {account!r} (accounts: {known})")
        return engine

    def __iter__(self) -> Iterator[Engine]:
        return iter(self.by_account.values())

    def __len__(self) -> int:
        return len(self.by_account)

    @property
    def first(self) -> Engine:
        """The only engine of a single-account deployment (the first of several)."""
        return next(iter(self.by_account.values()))

    def close(self) -> None:
        for engine in self:
            engine.close()
