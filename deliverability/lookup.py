"""DNS queries for the checks, through dnspython.

``Lookup(None)`` uses the machine's resolver; ``Lookup("127.0.0.1:5353")`` (the
``CLINICMAIL_DNS_RESOLVER`` setting) asks one server at that address and port, over UDP with the
usual fall-back to TCP for long answers. A name that does not exist and a name without records
of the asked type both read as "nothing there" (:meth:`Lookup.exists` tells them apart); a server that does not answer raises
:class:`DnsUnavailable`, because then nothing can be concluded.
"""

from __future__ import annotations

import ipaddress

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from core.errors import Unavailable

TIMEOUT = 5.0


class DnsUnavailable(Unavailable, RuntimeError):
    """No DNS answer (timeout, refused, server failure): the checks cannot be trusted."""


def parse_server(spec: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address → (address, port)."""
    text = spec.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, "53"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be a DNS server address such as 127.0.0.1:53")
    try:
        ipaddress.ip_address(host)  # dnspython asks a server by its address, never a name
    except ValueError:
        raise ValueError(
            "must be a DNS server's IP address and port, such as 127.0.0.1:53 (not a name)"
        ) from None
    return host, int(port)


class Lookup:
    def __init__(self, server: str | None = None, *, timeout: float = TIMEOUT) -> None:
        if server:
            host, port = parse_server(server)
            self.resolver = dns.resolver.Resolver(configure=False)
            # The port first: dnspython fixes each nameserver's port when the list is set.
            self.resolver.port = port
            self.resolver.nameservers = [host]
        else:
            try:
                self.resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                raise DnsUnavailable(
                    "this machine has no DNS resolver configured; set CLINICMAIL_DNS_RESOLVER"
                ) from None
        self.resolver.lifetime = timeout
        self.resolver.timeout = timeout

    def _answer(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        try:
            return self.resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.name.EmptyLabel:
            return None
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            raise DnsUnavailable(
                f"no DNS answer for {name} {rdtype} ({type(exc).__name__})"
            ) from None

    def exists(self, name: str) -> bool:
        """False only when DNS says ``name`` does not exist at all (NXDOMAIN: no record of any
        type there or below it); a name with records, just not of the asked type, exists."""
        try:
            self.resolver.resolve(name, "SOA", search=False)
        except dns.resolver.NXDOMAIN:
            return False
        except dns.name.EmptyLabel:
            return False
        except dns.resolver.NoAnswer:
            return True
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            raise DnsUnavailable(f"no DNS answer for {name} SOA ({type(exc).__name__})") from None
        return True

    def txt(self, name: str) -> list[str]:
        """Each TXT record of ``name`` as one string (its character-strings joined)."""
        answer = self._answer(name, "TXT")
        if answer is None:
            return []
        return [
            b"".join(rdata.strings).decode("utf-8", "replace")
            for rdata in answer
            if rdata.rdtype == dns.rdatatype.TXT
        ]

    def cname(self, name: str) -> str | None:
        answer = self._answer(name, "CNAME")
        if answer is None:
            return None
        for rdata in answer:
            return str(rdata.target).rstrip(".").lower()
        return None

    def mx(self, name: str) -> list[tuple[int, str]]:
        answer = self._answer(name, "MX")
        if answer is None:
            return []
        return sorted((int(r.preference), str(r.exchange).rstrip(".").lower()) for r in answer)
