"""The bottom layer every package may import: the error tree (:mod:`core.errors`)."""

from core.errors import ClinicmailError, ConfigError, InputError, RequestRefused, Unavailable

__all__ = ["ClinicmailError", "ConfigError", "InputError", "RequestRefused", "Unavailable"]
