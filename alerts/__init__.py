"""The ops-alert queue: what the service has to tell the clinic's staff about itself (a failing
transport, a spam-complaint rate, a campaign or an email set aside, a webhook receiver switched
off). Producers raise an alert (:func:`raise_alert`) in their own transaction and carry on; the
one deliverer on the clock (``scheduler/alerting.py``) sends what is pending to
CLINICMAIL_STAFF_EMAIL through the transport, outside the send ledger, and marks it delivered.

An alert names no subscriber: its variables are figures and identifiers of the service's own
things, rendered with the ops email of the same name (:mod:`templates.system`).
"""

from alerts.queue import Alert, delivered, pending, raise_alert

__all__ = ["Alert", "delivered", "pending", "raise_alert"]
