"""Channel settings written back as TOML: the demo and the benchmarks write the config file
that the ``serve`` they start reads, with secrets in clear (it is their own scratch file)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from inventory_engine.config import ChannelSettings


def channel_toml(channel: ChannelSettings) -> list[str]:
    """``[[channels]]`` and one ``key = value`` line per set field; nested settings (limits) as
    an inline table of their set fields, left out when none is set."""
    lines = ["[[channels]]"]
    data = channel.model_dump(mode="json", exclude_none=True)
    for key, value in data.items():
        raw = getattr(channel, key)
        if isinstance(raw, BaseModel):
            if value:
                lines.append(f"{key} = {_inline(value)}")
            continue
        secret = getattr(raw, "get_secret_value", None)
        lines.append(f"{key} = {json.dumps(secret() if secret else value)}")
    return lines


def _inline(table: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in table.items()) + " }"
