"""Logging set-up of the commands: every message printed once."""

from __future__ import annotations

import logging


class _NotPrintedElsewhere(logging.Filter):
    """Drops records that a handler of their own logger or one of its parents (below the root)
    has already printed: huggingface_hub, for one, prints its warnings with its own stderr handler
    and still propagates them to the root, so a root handler would print each one twice."""

    def filter(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        root = logging.getLogger()
        while logger is not None and logger is not root:
            if logger.handlers:
                return False
            if not logger.propagate:
                break
            logger = logger.parent
        return True


def setup_logging(level: int, fmt: str) -> None:
    """``logging.basicConfig(level, fmt)`` whose root handlers skip records that a library's own
    handler already printed (see :class:`_NotPrintedElsewhere`)."""
    root = logging.getLogger()
    before = list(root.handlers)
    logging.basicConfig(level=level, format=fmt)  # does nothing when the root has handlers already
    for handler in root.handlers:
        if handler not in before:
            handler.addFilter(_NotPrintedElsewhere())
