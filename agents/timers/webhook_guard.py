"""Where a webhook may go: the URL check when the worker starts, and the guard that keeps
every call away from loopback, private and other non-public addresses (the URL's literal
address, the addresses a name resolves to, and the very address a socket connects to)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from aiohappyeyeballs import AddrInfoType, SocketFactoryType
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from agents.errors import AgentError
from models.followup_rules import WebhookSpec
from models.webhook_signing import WebhookConfigError


def check_urls(specs: Sequence[WebhookSpec]) -> None:
    """Every webhook URL is an http(s) URL with a host (where it points is checked per call,
    so a refused address fails its deliveries instead of the worker)."""
    for spec in specs:
        try:
            parsed = URL(spec.url)
        except ValueError:
            raise WebhookConfigError(f"webhook {spec.name!r}: the url is not a URL") from None
        if parsed.scheme not in ("http", "https") or not parsed.raw_host:
            raise WebhookConfigError(f"webhook {spec.name!r}: the url needs http(s) and a host")


class AddressRefusedError(AgentError, OSError):
    """The target is an address webhooks must not reach (loopback, private, …). An OSError,
    so aiohttp's connect path carries it as the reason a connection failed."""


_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), which is where a
    packet to it ends up."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _kind(address: _Address) -> str | None:
    """Why *address* is not a public unicast address, or None when it is one."""
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "shared (CGNAT)"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "site-local"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "non-global"),
    )
    return next((name for hit, name in checks if hit), None)


# Never a destination, whatever the configuration allows.
_NEVER = frozenset({"unspecified", "multicast"})


def address_refusal(host: str, allow_private: bool) -> str | None:
    """Why a webhook must not connect to the IP address *host*, or None when it may. With
    *allow_private* only unspecified and multicast addresses are refused."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return f"{host[:100]!r} is not an IP address"
    inner = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    kind = _kind(inner if inner is not None else address)  # where the packets would go
    if kind is None or (allow_private and kind not in _NEVER):
        return None
    article = "an" if kind[0] in "aeiou" else "a"
    shown = f"{address} (= {inner})" if inner is not None else str(address)
    return f"{shown} is {article} {kind} address"


def _refused(reason: str, allow_private: bool) -> AddressRefusedError:
    hint = "" if allow_private else " (allow_private is off)"
    return AddressRefusedError(f"refused: {reason}{hint}")


def check_target(url: str, allow_private: bool) -> None:
    """Refuse a webhook URL before any connection: a scheme other than http(s), no host,
    or a literal IP address that may not be reached (host names are checked when resolved
    and again when connected, see GuardedResolver and guarded_socket_factory)."""
    parsed = URL(url)
    if parsed.scheme not in ("http", "https"):
        raise AddressRefusedError(f"refused: scheme {parsed.scheme!r} (only http and https)")
    host = parsed.raw_host  # an IPv6 literal without its brackets
    if not host:
        raise AddressRefusedError("refused: the URL has no host")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return  # a name: checked when it resolves
    reason = address_refusal(host, allow_private)
    if reason is not None:
        raise _refused(reason, allow_private)


class GuardedResolver(AbstractResolver):
    """A resolver that fails a name when any address it resolves to may not be reached, so a
    name pointing into the private network (or switching to it) is refused as a whole."""

    def __init__(self, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self.allow_private = allow_private
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        for result in results:
            reason = address_refusal(result["host"], self.allow_private)
            if reason is not None:
                raise _refused(f"{host[:100]} resolves to {reason}", self.allow_private)
        return results

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def guarded_socket_factory(allow_private: bool) -> SocketFactoryType:
    """A socket factory for aiohttp's connector that checks the very address it connects
    to: the last line, whatever path the address came by (literal, cache, resolver)."""

    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        reason = address_refusal(str(sockaddr[0]), allow_private)
        if reason is not None:
            raise _refused(reason, allow_private)
        return socket.socket(family=family, type=kind, proto=proto)

    return factory


def refusal_in(exc: BaseException) -> AddressRefusedError | None:
    """The AddressRefusedError behind an exception aiohttp raised, if that is what it was."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, AddressRefusedError):
            return current
        seen.add(id(current))
        inner = getattr(current, "os_error", None)  # aiohttp's ClientConnectorError
        current = inner if isinstance(inner, BaseException) else current.__cause__
    return None
