"""SendGrid's event webhook as SendGrid sends it: signed batches of events."""

from __future__ import annotations

import base64
import json
import time
import warnings
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from engagement.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER

with warnings.catch_warnings():
    # Starlette asks for its `httpx2` fork; the `httpx` we have works the same for tests.
    warnings.simplefilter("ignore")


class Signer:
    """What SendGrid does: ECDSA P-256 / SHA-256 over timestamp + raw body, base64 DER."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        der = self.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        self.public_key = base64.b64encode(der).decode("ascii")

    def post(self, client: Any, body: bytes) -> Any:
        """POST ``body`` to the app's SendGrid webhook, signed now."""
        return client.post("/webhooks/sendgrid", content=body, headers=self.headers(body))

    def headers(self, body: bytes, timestamp: str | None = None) -> dict[str, str]:
        """Signed now (the server refuses timestamps minutes away from its clock)."""
        timestamp = str(int(time.time())) if timestamp is None else timestamp
        sig = self.key.sign(timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
        return {
            SIGNATURE_HEADER: base64.b64encode(sig).decode("ascii"),
            TIMESTAMP_HEADER: timestamp,
            "Content-Type": "application/json",
        }


def event(kind: str, email: str, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": 1763900000 + n,
        "event": kind,
        "sg_event_id": f"evt-{kind}-{n}-{email}",
        "sg_message_id": f"msg-{email}.filter0001.{n}",
        **extra,
    }


def body_of(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events, separators=(",", ":")).encode("utf-8")
