"""The clinic the rendering tests write for."""

from __future__ import annotations

from templates import ClinicInfo

CLINIC = ClinicInfo(
    name="Riverside Back & Neck Clinic",
    address="12 Mill Lane, Bristol BS1 4XY",
    from_email="care@riverside.example",
    booking_url="https://riverside.example/book",
    base_url="https://mail.riverside.example",
)
