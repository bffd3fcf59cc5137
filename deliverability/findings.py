"""One finding per check, and the report that gathers them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    """The outcome of one check.

    ``check`` is a stable dotted id for monitoring (``spf.provider``, ``dmarc.policy`` …);
    ``summary`` says what was found; for a warning or failure ``why`` names the receiver rule it
    breaks and ``fix`` the exact record or setting that puts it right.
    """

    check: str
    status: Status
    summary: str
    why: str = ""
    fix: str = ""


@dataclass
class Report:
    domain: str
    provider: str  # whose DNS needs are checked (CLINICMAIL_TRANSPORT's, or SendGrid's for outbox)
    findings: list[Finding] = field(default_factory=list)
    transport: str = ""  # CLINICMAIL_TRANSPORT as configured

    @property
    def ok(self) -> bool:
        """True when nothing failed (warnings are advice, not failures)."""
        return all(f.status != "fail" for f in self.findings)

    def counts(self) -> dict[str, int]:
        return {s: sum(f.status == s for f in self.findings) for s in ("pass", "warn", "fail")}

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "domain": self.domain,
            "provider": self.provider,
            "transport": self.transport or self.provider,
            "counts": self.counts(),
            "findings": [asdict(f) for f in self.findings],
        }
