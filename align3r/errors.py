"""User-facing errors: each message says what went wrong and what to do about it.

The CLI prints these as one line without a traceback; anything else is a bug and keeps its
traceback.
"""


class Align3RError(Exception):
    """Base class of every error caused by input, configuration or environment."""


class InputError(Align3RError, ValueError):
    """Unreadable, empty or inconsistent input (video, image folder, depth prior, ...)."""


class CheckpointError(Align3RError):
    """A checkpoint is missing, of the wrong kind, truncated or unsafe to load."""


class OfflineError(CheckpointError):
    """Weights are needed but not present locally, and the network is unavailable."""


class OutputError(Align3RError, OSError):
    """Outputs could not be written (full disk, permissions); earlier outputs are intact."""


def check_known_fields(datacls, keys, what: str) -> None:
    """Raise ``InputError`` "unknown <what> [...]; known: [...]" for keys that are not fields of
    the dataclass ``datacls`` (config ``replace`` / ``from_dict`` with a typo)."""
    from dataclasses import fields

    known = {f.name for f in fields(datacls)}
    unknown = sorted(set(keys) - known)
    if unknown:
        raise InputError(f"unknown {what} {unknown}; known: {sorted(known)}")
