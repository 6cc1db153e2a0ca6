"""User-facing errors: one line that names the bad file, field or flag; the CLI exits non-zero."""

from __future__ import annotations


class EvalkitError(Exception):
    """An error caused by the user's input or environment, reported without a traceback."""

    exit_code = 2


class DataError(EvalkitError):
    """A benchmark file is missing, unreadable or malformed."""


class ConfigError(EvalkitError):
    """A bad flag, model spec or task name."""


class BackendUnavailable(EvalkitError):
    """A backend whose optional dependencies are not installed, or which is not implemented."""


class RunLogError(EvalkitError):
    """A run log that cannot be read or resumed."""
