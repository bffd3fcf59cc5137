"""Deliverability checks: what a receiving mail server will think of the clinic's email.

``clinicmail doctor`` composes them. The package knows DNS (through dnspython), the rules
receivers apply (Gmail's and Yahoo's 2024 bulk-sender requirements, RFC 7208 SPF, RFC 6376
DKIM, RFC 7489 DMARC, RFC 8058 one-click unsubscribe, RFC 5322/2045 message format) and nothing
about the service's database or transports: callers hand it plain values and raw messages.

Modules::

    findings   Finding (what is wrong, why it matters, the exact fix) and Report
    lookup     Lookup: the DNS queries, against the system resolver or CLINICMAIL_DNS_RESOLVER
    domain     SPF, DKIM, DMARC (with alignment) and MX for the from-domain
    setup      configuration: base URL, webhook key, staff address, link domain, click tracking
    message    one raw message checked line by line against RFC 5322, 2045 and 8058
"""

from deliverability.findings import Finding, Report
from deliverability.lookup import DnsUnavailable, Lookup

__all__ = ["DnsUnavailable", "Finding", "Lookup", "Report"]
