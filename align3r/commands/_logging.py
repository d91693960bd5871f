"""Logging set-up of the commands: every message printed once, and third-party progress bars off
with ``--quiet``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


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


@contextmanager
def quiet_third_party(progress: bool) -> Iterator[None]:
    """Without ``progress``, silence the progress bars of Hugging Face libraries (transformers'
    "Loading weights", Hub downloads) while the block runs; their previous state is restored."""
    if progress:
        yield
        return
    restore = []
    try:
        from huggingface_hub.utils import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )

        if not are_progress_bars_disabled():
            disable_progress_bars()
            restore.append(enable_progress_bars)
    except ImportError:
        pass
    try:
        from transformers.utils import logging as transformers_logging

        if transformers_logging.is_progress_bar_enabled():
            transformers_logging.disable_progress_bar()
            restore.append(transformers_logging.enable_progress_bar)
    except ImportError:
        pass
    try:
        yield
    finally:
        for undo in restore:
            undo()
