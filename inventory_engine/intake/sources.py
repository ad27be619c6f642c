"""Where a request comes from, and which marketplaces may push from there.

Neither Ozon nor Yandex Market signs its notifications: the source address is the only thing
the engine can check (reference §1.6, §3.4). Two pieces:

* :func:`client_address`: the socket peer, unless that peer is one of ``[http]
  trusted_proxies``; then the right-most ``X-Forwarded-For`` address that is not itself a
  trusted proxy (the standard algorithm: every hop appends the address it saw, so only the
  entries added by our own proxies can be believed, read from the right). ``X-Forwarded-For``
  from any other peer is ignored: anyone can write one.
* :class:`SourcePolicy`: the networks one marketplace may push from (``[webhooks] ozon_allow``,
  ``yandex_market_allow``), or none at all when the check is off.

The check is off for every marketplace in ``serve``'s sandbox mode (no ``[[channels]]``: the
simulators push from loopback) and with ``[webhooks] enforce_allowlist = false``. A configured
channel whose ``base_url`` is a loopback address talks to a simulator on this machine, whose
pushes come from loopback too: loopback is then added to that marketplace's networks (logged).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import structlog

from inventory_engine.config import ChannelSettings, Settings

log = structlog.get_logger()

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Marketplace = Literal["ozon", "yandex_market"]

MARKETPLACES: tuple[Marketplace, ...] = ("ozon", "yandex_market")
LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
MAX_LOGGED_HEADER = 200
"""Characters of a refused request's ``X-Forwarded-For`` that go into the log line."""


def networks(values: Iterable[str]) -> tuple[Network, ...]:
    """IP networks from settings strings (validated when the settings were loaded)."""
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def parse_address(text: str) -> Address | None:
    """An IP address from a peer or an ``X-Forwarded-For`` entry; None if it is not one.

    Accepts ``1.2.3.4``, ``1.2.3.4:5678``, ``::1``, ``[::1]`` and ``[::1]:80``. An IPv4-mapped
    IPv6 address (``::ffff:1.2.3.4``, what a dual-stack socket reports) is its IPv4 address.
    """
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end == -1:
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port (an IPv6 address has at least two colons)
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def within(address: Address, nets: Iterable[Network]) -> bool:
    return any(address in net for net in nets)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> Address | None:
    """The address of the client a request comes from; None if it cannot be told.

    Args:
        peer: the socket peer's host (ASGI ``scope["client"][0]``), None if unknown.
        forwarded_for: every ``X-Forwarded-For`` header of the request, in order.
        trusted: the trusted proxies' networks.
    """
    address = parse_address(peer) if peer is not None else None
    if address is None or not within(address, trusted):
        return address  # X-Forwarded-For is only believed from a trusted proxy
    hops = [item.strip() for value in forwarded_for for item in value.split(",")]
    hops = [hop for hop in hops if hop]
    for hop in reversed(hops):
        hop_address = parse_address(hop)
        if hop_address is None:
            return None  # garbage written by someone: no address can be believed past it
        address = hop_address
        if not within(address, trusted):
            return address
    return address  # every hop is a trusted proxy: the left-most one is the client


@dataclass(frozen=True)
class SourcePolicy:
    """Where one marketplace may push from. ``allowed`` None: from anywhere (check off)."""

    marketplace: Marketplace
    allowed: tuple[Network, ...] | None
    reason: str
    """Why the check is what it is (logged when the app starts)."""

    def allows(self, address: Address | None) -> bool:
        if self.allowed is None:
            return True
        return address is not None and within(address, self.allowed)

    def describe(self) -> str:
        if self.allowed is None:
            return f"off ({self.reason})"
        listed = ", ".join(str(net) for net in self.allowed) or "nothing"
        return f"{listed} ({self.reason})"


@dataclass(frozen=True)
class Sources:
    """The trusted proxies and every marketplace's :class:`SourcePolicy` of one app."""

    trusted_proxies: tuple[Network, ...]
    policies: Mapping[Marketplace, SourcePolicy]

    def client(self, scope: Mapping[str, Any]) -> Address | None:
        """The client address of an ASGI request (see :func:`client_address`)."""
        peer = scope.get("client")
        return client_address(peer[0] if peer else None, forwarded_for(scope), self.trusted_proxies)

    def allows(self, marketplace: Marketplace, address: Address | None) -> bool:
        return self.policies[marketplace].allows(address)


def forwarded_for(scope: Mapping[str, Any]) -> list[str]:
    """Every ``X-Forwarded-For`` header value of an ASGI request, in order."""
    return [
        value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name.lower() == b"x-forwarded-for"
    ]


def is_simulator(channel: ChannelSettings) -> bool:
    """True if the channel's ``base_url`` is a loopback address (a simulator on this machine)."""
    host = urlsplit(channel.base_url).hostname
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    address = parse_address(host)
    return address is not None and address.is_loopback


def build_sources(
    settings: Settings, channels: Iterable[ChannelSettings], *, sandbox: bool = False
) -> Sources:
    """The sources of an app serving ``channels`` (the engine's) with ``settings``; logged.

    Args:
        sandbox: ``serve``'s sandbox mode: every marketplace is a simulator on loopback, the
            check is off.
    """
    intake = settings.webhooks
    configured: dict[Marketplace, list[str]] = {
        "ozon": intake.ozon_allow,
        "yandex_market": intake.yandex_market_allow,
    }
    channels = list(channels)
    policies: dict[Marketplace, SourcePolicy] = {}
    for marketplace in MARKETPLACES:
        simulated = [c.name for c in channels if c.kind == marketplace and is_simulator(c)]
        if sandbox:
            policy = SourcePolicy(marketplace, None, "sandbox mode: simulators push from loopback")
        elif not intake.enforce_allowlist:
            policy = SourcePolicy(marketplace, None, "[webhooks] enforce_allowlist = false")
        elif simulated:
            policy = SourcePolicy(
                marketplace,
                networks(configured[marketplace]) + LOOPBACK,
                f"configured, plus loopback for the simulator channel(s) {', '.join(simulated)}",
            )
        else:
            policy = SourcePolicy(marketplace, networks(configured[marketplace]), "configured")
        policies[marketplace] = policy
    sources = Sources(networks(settings.http.trusted_proxies), policies)
    _log(sources)
    return sources


def _log(sources: Sources) -> None:
    allowlists = {name: policy.describe() for name, policy in sources.policies.items()}
    trusted = [str(net) for net in sources.trusted_proxies]
    off = [name for name, policy in sources.policies.items() if policy.allowed is None]
    if off:
        log.warning(
            "webhook_allowlist_off",
            marketplaces=off,
            reason=sources.policies[off[0]].reason,
            allowlists=allowlists,
            trusted_proxies=trusted,
        )
    else:
        log.info("webhook_allowlists", allowlists=allowlists, trusted_proxies=trusted)


def refusal_details(scope: Mapping[str, Any], address: Address | None) -> dict[str, Any]:
    """What a refused request's log line says about where it came from."""
    peer = scope.get("client")
    header = ", ".join(forwarded_for(scope))
    return {
        "address": str(address) if address is not None else None,
        "peer": peer[0] if peer else None,
        "forwarded_for": header[:MAX_LOGGED_HEADER] or None,
    }
