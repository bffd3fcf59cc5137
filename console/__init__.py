"""The staff console under ``/admin``: server-rendered pages (Jinja2, htmx for live parts) that
call the domain packages. Sign-in, sessions, roles and the audit log come from :mod:`staff`.

The composition root mounts it with :func:`console.web.install`.
"""
