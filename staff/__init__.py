"""Staff accounts for the console: users and roles, password hashing, login attempts and lockout,
server-side sessions, and the append-only audit log.

This is a domain package like ``subscribers``: it owns its tables and knows nothing of HTTP.
The web pages live in :mod:`console`; the ``clinicmail users`` commands in ``scheduler``.
"""

from staff.roles import CLINICIAN, MARKETING, OPS, ROLES, Role, at_least

__all__ = ["CLINICIAN", "MARKETING", "OPS", "ROLES", "Role", "at_least"]
