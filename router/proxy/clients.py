"""Who the client is: the socket peer, or what trusted proxies in front of the router say."""

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The proxies (CIDRs) whose `X-Forwarded-For` the router believes; none by default."""

    def __init__(self, networks: Sequence[Network]) -> None:
        self.networks = tuple(networks)
        self._trusts = lru_cache(maxsize=4096)(self._compute)

    def __contains__(self, host: str) -> bool:
        return bool(self.networks) and self._trusts(host)

    def _compute(self, host: str) -> bool:
        address = _address(host)
        return address is not None and any(address in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: Sequence[str]) -> str | None:
        """The client's address: the rightmost hop that is not a trusted proxy.

        Anything left of it was written by the client and proves nothing. A hop that is not an
        address stops the walk at the trusted proxy that passed it on.
        """
        if peer is None or not forwarded_for or peer not in self:
            return peer
        current = peer
        for value in reversed(forwarded_for):
            for hop in reversed(value.split(",")):
                address = _address(hop.strip())
                if address is None:
                    return current
                current = str(address)
                if current not in self:
                    return current
        return current


def _address(hop: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address out of `1.2.3.4`, `1.2.3.4:80`, `::1` or `[::1]:80`; None if it is none."""
    if hop.startswith("["):
        hop = hop[1 : hop.find("]")]
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    try:
        return ipaddress.ip_address(hop)
    except ValueError:
        return None
