"""``channels show``: each configured channel's effective limits and API versions.

Reads the settings only (no Redis, no marketplace call). Each limit says where it comes from:
``default`` (the kind's value from ``sync/limits.py``; WB by token type) or ``setting`` (the
channel's ``limits = {...}`` table), with the documented limit beside it. The API part lists the
channel's version settings (fields naming a version or path, marked default or setting) and the
method paths its client speaks.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import typer
from rich.markup import escape

from inventory_engine.channels import ozon, ozon_read, webhook, wildberries, yandex_market
from inventory_engine.cli_operate.common import (
    AccountOption,
    ConfigOption,
    JsonOption,
    err,
    out,
    print_json,
    titled_table,
)
from inventory_engine.config import ChannelSettings, load_settings
from inventory_engine.errors import InventoryError
from inventory_engine.limit_settings import (
    DOCUMENTED,
    DocumentedLimits,
    documented_key,
    limit_variant,
)
from inventory_engine.operate.pacing import READ_LIMITS, read_limits
from inventory_engine.sandbox_channels import SANDBOX_NAMES, channels_for_urls
from inventory_engine.sync.limits import effective_limits

channels_app = typer.Typer(help="The configured sales channels.", no_args_is_help=True)

CLIENT_MODULES: dict[str, tuple[ModuleType, ...]] = {
    "ozon": (ozon, ozon_read),
    "wildberries": (wildberries,),
    "yandex_market": (yandex_market,),
    "webhook": (webhook,),
}
"""Where each kind's client keeps its method paths (``*_PATH`` constants)."""
_API_WORDS = ("version", "api", "path")
SANDBOX_URL = "http://127.0.0.1"
"""Stands for the simulators' addresses, which only a running serve knows."""


@channels_app.command("show")
def show(
    as_json: JsonOption = False, config: ConfigOption = None, account: AccountOption = None
) -> None:
    """Each channel's effective limits (default or set in its ``limits`` table, with the
    documented limit) and API versions, of one account. Exit 2 on invalid settings."""
    try:
        full = load_settings(config)
        settings = full.pick_account(account)
    except InventoryError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    sandbox = not full.channels and not full.accounts
    # With none configured, serve runs in sandbox mode: the simulators' channels, which take
    # the kinds' default limits, are the ones in use.
    channels = channels_for_urls(dict.fromkeys(SANDBOX_NAMES, SANDBOX_URL)) if sandbox else []
    described = [
        {**describe_channel(channel), **({"sandbox": True} if sandbox else {})}
        for channel in channels or settings.channels
    ]
    if as_json:
        print_json(described)
        return
    if sandbox:
        out.print(
            "no [[channels]] configured: serve runs in sandbox mode and publishes to the "
            "built-in simulators, with these limits"
        )
    for channel in described:
        _print_channel(channel)


def describe_channel(settings: ChannelSettings) -> dict[str, Any]:
    """A channel's effective limits and API versions, each marked ``default`` or ``setting``."""
    own = settings.limits
    limits = effective_limits(settings)
    documented = DOCUMENTED.get(documented_key(settings.kind, limit_variant(settings)))
    values: dict[str, Any] = {
        "rate_per_minute": round(limits.bucket_rate_per_s * 60, 3),
        "burst": limits.bucket_capacity,
        "items_per_request": limits.max_batch,
        "item_window_s": limits.item_window_s or 0,
        "concurrency": limits.concurrency,
        "read_per_minute": _read_per_minute(settings),
    }
    rows = {
        name: {
            "value": value,
            "source": "setting" if getattr(own, name) is not None else "default",
            "documented": _documented(documented, name),
        }
        for name, value in values.items()
    }
    described: dict[str, Any] = {"name": settings.name, "kind": settings.kind}
    if settings.kind == "wildberries":
        described["token_type"] = settings.token_type
    described["limits"] = rows
    described["force"] = own.force
    described["counts"] = "items" if limits.cost_per_item else "requests"
    described["api"] = _api(settings)
    return described


def _read_per_minute(settings: ChannelSettings) -> float | str | None:
    if settings.kind not in READ_LIMITS:
        return None
    read = read_limits(settings.kind, settings)
    # WB: the read-back's own share of the limit it shares with the pushes.
    return round((read.own_rate_per_s if read.shared_with_push else read.rate_per_s) * 60, 3)


def _documented(documented: DocumentedLimits | None, name: str) -> float | str | None:
    if documented is None:
        return None
    if name == "item_window_s":
        return documented.min_item_window_s
    if name == "read_per_minute" and documented.read_shared:
        return f"shared with push: {documented.rate_per_minute:g} together"
    value: float | None = getattr(documented, name, None)
    return value


def _api(settings: ChannelSettings) -> dict[str, Any]:
    """Version settings of the channel (marked default/setting) and its client's paths."""
    versions = {
        name: {
            "value": getattr(settings, name),
            "source": "setting" if name in settings.model_fields_set else "default",
        }
        for name in type(settings).model_fields
        if any(word in name for word in _API_WORDS) and name != "api_key"
    }
    paths = {
        name.removesuffix("_PATH").lower(): value
        for module in CLIENT_MODULES.get(settings.kind, ())
        for name, value in sorted(vars(module).items())
        if name.endswith("_PATH") and isinstance(value, str)
    }
    return {"settings": versions, "endpoints": paths}


def _print_channel(channel: dict[str, Any]) -> None:
    title = f"{channel['name']} ({channel['kind']}"
    if "token_type" in channel:
        title += f", {channel['token_type']} token"
    title += ", force)" if channel["force"] else ")"
    table = titled_table(title, "limit", "value", "from", "documented")
    for name, row in channel["limits"].items():
        value = "—" if row["value"] is None else str(row["value"])
        documented = "—" if row["documented"] is None else str(row["documented"])
        table.add_row(name, value, row["source"], documented)
    for name, row in channel["api"]["settings"].items():
        table.add_row(name, str(row["value"]), row["source"], "")
    out.print(table)
    for name, path in channel["api"]["endpoints"].items():
        out.print(f"  {name}: {escape(path)}")
