"""Test sends from the console: one rendered email to a staff address through the configured
transport, marked as a test (subject prefix, ``X-Clinicmail-Test`` header, category ``test``),
and never written to the send ledger, so it never counts in stats."""

from __future__ import annotations

import secrets

from app.context import AppContext
from templates import Rendered
from transports import Batch, Envelope, Outcome

TEST_HEADER = "X-Clinicmail-Test"


def send_test(ctx: AppContext, to: str, rendered: Rendered, values: dict[str, str]) -> str:
    """Send and return the outcome ("sent", "retry", "failed" or "unknown")."""
    send_id = "test" + secrets.token_hex(14)  # never a ledger send_id (those are plain hex)
    batch = Batch(
        rendered=rendered,
        from_email=ctx.settings.from_email,
        from_name=ctx.settings.clinic_name,
        category="test",
        custom_args={"test": "yes"},
        headers={TEST_HEADER: "yes"},
        recipients=[Envelope(send_id=send_id, to=to, subscriber_id=None, values=values)],
    )
    # Its own transport instance: the scheduler's may be mid-batch on another thread.
    transport = ctx.make_transport()
    try:
        (result,) = transport.send(batch)
    finally:
        transport.close()
    return result.outcome.value if isinstance(result.outcome, Outcome) else str(result.outcome)
