"""A real DNS server on loopback for the doctor's tests: dnslib over UDP and TCP on one free
port, answering from zone-file text. UDP answers longer than 512 bytes come back truncated, as
from a real server without EDNS, so clients must retry over TCP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dnslib import CNAME, QTYPE, RCODE, RR, DNSLabel, DNSRecord
from dnslib.server import DNSHandler, DNSLogger, DNSServer


class ZoneResolver:
    """Authoritative answers for every name in ``zone_text``; CNAMEs are followed in-zone."""

    def __init__(self, zone_text: str) -> None:
        self.records = RR.fromZone(zone_text)
        self.protocols: list[str] = []
        self._lock = threading.Lock()

    def _matching(self, name: DNSLabel, qtype: int) -> list[RR]:
        return [
            r for r in self.records if r.rname == name and (qtype == QTYPE.ANY or r.rtype == qtype)
        ]

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        with self._lock:
            self.protocols.append(handler.protocol)
        reply = request.reply()
        name, qtype = request.q.qname, request.q.qtype
        answers = self._matching(name, qtype)
        if not answers and qtype != QTYPE.CNAME:
            for alias in self._matching(name, QTYPE.CNAME):
                answers.append(alias)
                assert isinstance(alias.rdata, CNAME)
                answers += self._matching(alias.rdata.label, qtype)
        for rr in answers:
            reply.add_answer(rr)
        if not answers and not any(r.rname == name for r in self.records):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class _Handler(DNSHandler):  # type: ignore[misc]  # dnslib ships no types
    """Long UDP answers become an empty reply with the TC flag and the question kept (dnslib's
    own truncation drops the question, which clients rightly refuse)."""

    def get_reply(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        packed: bytes = self.server.resolver.resolve(request, self).pack()
        if self.protocol == "udp" and len(packed) > 512:
            short = request.reply()
            short.header.tc = 1
            packed = short.pack()
        return packed


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port for the test DNS server")


@contextmanager
def dns_server(zone_text: str) -> Iterator[tuple[str, ZoneResolver]]:
    """Serve ``zone_text``; yields ``"127.0.0.1:PORT"`` and the resolver (which records the
    protocol of every query)."""
    resolver = ZoneResolver(zone_text)
    quiet = DNSLogger(log="-recv,-send,-request,-reply,-truncated,-error,-data", prefix=False)
    port = _free_port()
    servers = [
        DNSServer(resolver, address="127.0.0.1", port=port, tcp=tcp, logger=quiet, handler=_Handler)
        for tcp in (False, True)
    ]
    for server in servers:
        server.start_thread()
    try:
        yield f"127.0.0.1:{port}", resolver
    finally:
        for server in servers:
            server.stop()
            server.server.server_close()
