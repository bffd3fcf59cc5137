"""Engagement: what recipients do with an email, flowing back from the provider.

``events``   the normalized event model and the SendGrid mapping table (raw payload always kept)
``tables``   the stored raw events (``email_events``), deduplicated on ``sg_event_id`` + a natural key
``ingest``   verify nothing, parse nothing clever: store a batch fast and idempotently
``process``  apply stored, unapplied events: suppression, unsubscribe, soft-bounce counting
``webhook``  ``POST /webhooks/sendgrid``: verify the signature over the raw body, store, answer 200
``bounce_mailbox``  SMTP bounces read from the bounce mailbox (``mailbox``: the IMAP reader) and
             stored as events too (``bounces``: what a bounce says)
``stats``    engagement per campaign, step, variant and symptom group; ``chart`` draws it by week
``complaints``  the daily spam-complaint rate, staff alerts, the automatic pause of campaign email
``sunset``   dormant people asked once, then paused until "keep me" (``keep``: that route)
``scores``   engagement scores (recency and frequency of human opens, clicks, check-ins)

Imports point one way: engagement uses storage, subscribers and campaigns; the composition root
mounts its router, and the tick calls :func:`engagement.bounce_mailbox.read_bounces` and
:func:`engagement.process.apply_pending` at its start. The ledger is read through :mod:`campaigns.ledger_reads` only; ``stats`` and ``history``
hand it the events table for the statements that join the two.
"""
