"""Outgoing webhooks: the endpoints staff register, the events they may hear about and the
durable delivery queue (one row per event and endpoint, retried with exponential back-off).

Deliveries follow the Standard Webhooks specification (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``: HMAC-SHA256 over ``id.timestamp.body``); payloads carry opaque ids only.
This package owns the state and posts the requests (:mod:`outgoing.posting`); the clock calls it.
"""
