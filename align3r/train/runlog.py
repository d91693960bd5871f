"""Run logging on the main process: JSON lines always, TensorBoard when it is installed.

``log.jsonl`` in the output folder gets one line per logged step (train) and per evaluation
(test), so a run can be inspected without TensorBoard. Curves use the reference's x-axis,
``int(1000 · fractional epoch)``, which stays comparable when batch sizes change.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("align3r.train")


class RunLogger:
    """Scalars to ``<output_dir>/log.jsonl`` and, if available, a TensorBoard event file."""

    def __init__(self, output_dir: str | Path, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(output_dir) / "log.jsonl"
        self.writer = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning("tensorboard is not installed: metrics go to %s only (pip install tensorboard "
                            "for curves)", self.path)
            else:
                self.writer = SummaryWriter(log_dir=str(output_dir))

    def record(self, kind: str, epoch: float, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, "epoch": epoch, **values}) + "\n")
        if self.writer is not None:
            step = int(1000 * epoch)
            for name, value in values.items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{kind}_{name}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
