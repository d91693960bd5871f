"""``python -m align3r`` (and ``torchrun -m align3r train ...``) runs the ``align3r`` command."""

from align3r.cli import main

raise SystemExit(main())
