"""Tables owned by the composition root: the settings a clinic changes in the console."""

from __future__ import annotations

from sqlalchemy import Column, String, Table, Text

from storage.schema import UTCDateTime, metadata

# The settings a clinic changes in the console (app.clinic_settings), by Settings field
# name; each row overrides the environment's value of that setting.
setting_overrides = Table(
    "setting_overrides",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(320), nullable=False),
)
