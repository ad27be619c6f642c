"""``accounts list``: the seller accounts of the deployment, their channels, how many storefront
tokens each has (never the tokens) and the webhook paths the marketplaces must call.

Reads the settings only (no Redis, no marketplace call).
"""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape

from inventory_engine.cli_operate.common import (
    ConfigOption,
    JsonOption,
    err,
    out,
    print_json,
    titled_table,
)
from inventory_engine.config import Settings, load_settings
from inventory_engine.constants import DEFAULT_ACCOUNT
from inventory_engine.errors import InventoryError

accounts_app = typer.Typer(help="The seller accounts of this deployment.", no_args_is_help=True)


@accounts_app.command("list")
def list_accounts(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Each account with its channels, its number of /v1 tokens and its webhook paths. Exit 2
    on invalid settings."""
    try:
        settings = load_settings(config)
    except InventoryError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    described = describe_accounts(settings)
    if as_json:
        print_json(described)
        return
    table = titled_table(
        "accounts", "account", "channels", "/v1 tokens", "Ozon webhook", "YM webhook"
    )
    for account in described:
        table.add_row(
            account["name"],
            ", ".join(f"{c['name']} ({c['kind']})" for c in account["channels"]) or "—",
            str(account["api_tokens"]),
            account["webhooks"]["ozon"],
            account["webhooks"]["yandex_market"],
        )
    out.print(table)


def describe_accounts(settings: Settings) -> list[dict[str, Any]]:
    tokens = settings.api_tokens()
    described = []
    for name in settings.account_names():
        own = settings.for_account(name)
        # The unprefixed paths are the default account's; every account has its own too.
        prefix = "/webhooks" if name == DEFAULT_ACCOUNT else f"/webhooks/{name}"
        described.append(
            {
                "name": name,
                "channels": [{"name": c.name, "kind": c.kind} for c in own.channels],
                "api_tokens": len(tokens.get(name, [])),
                "webhooks": {
                    "ozon": f"{prefix}/ozon",
                    "yandex_market": f"{prefix}/yandex-market",
                },
            }
        )
    return described
