"""Shared bits of the preparation scripts: a one-line error instead of a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable


def run_main(main: Callable[[], int]) -> None:
    """Run ``main``; an :class:`align3r.errors.Align3RError` prints one line and exits with 2."""
    from align3r.errors import Align3RError

    try:
        sys.exit(main())
    except Align3RError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
