"""Run logging on the main process: JSON lines always, TensorBoard when it is installed.

``log.jsonl`` in the output folder gets one line per logged step (train) and per evaluation
(test), so a run can be inspected without TensorBoard. Curves use the reference's x-axis,
``int(1000 · fractional epoch)``, which stays comparable when batch sizes change.

A run that starts from a position (fresh: epoch 0; resumed: the checkpoint's) first drops what
the log holds beyond it — steps an earlier run logged after its last checkpoint, which are about
to be trained (and logged) again: ``log.jsonl`` is rewritten atomically without them, and the
TensorBoard writer purges its curves from that x position on (``SummaryWriter(purge_step=...)``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from align3r.atomic import write_text

log = logging.getLogger(__name__)


def tensorboard_step(epoch: float) -> int:
    """The x coordinate of a record (the reference's ``int(1000 · epoch)``)."""
    return int(1000 * epoch)


class RunLogger:
    """Scalars to ``<output_dir>/log.jsonl`` and, if available, a TensorBoard event file.

    ``resume``: (epoch, fractional epoch) the run starts at — ``epoch`` epochs completed, its
    batches up to ``fractional epoch`` trained. Train records at or beyond the fractional epoch
    and test records after ``epoch`` are dropped (see the module docstring); None keeps the log.
    """

    def __init__(self, output_dir: str | Path, enabled: bool = True, tensorboard: bool = True,
                 resume: tuple[int, float] | None = None):
        self.enabled = enabled
        self.path = Path(output_dir) / "log.jsonl"
        self.writer = None
        kept: list[dict[str, Any]] = []
        if enabled and resume is not None:
            kept = self._drop_records_after(*resume)
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning("tensorboard is not installed: metrics go to %s only (pip install tensorboard "
                            "for curves)", self.path)
            else:
                earlier = resume is not None and any(Path(output_dir).glob("events.out.tfevents.*"))
                purge = tensorboard_step(resume[1]) if earlier else None
                self.writer = SummaryWriter(log_dir=str(output_dir), purge_step=purge)
                if purge is not None:  # the purge takes every curve from x = purge on: put back the kept points
                    for record in kept:
                        if tensorboard_step(record["epoch"]) >= purge:
                            self._add_scalars(record["kind"], record["epoch"], record)

    def _drop_records_after(self, epoch: int, position: float) -> list[dict[str, Any]]:
        """Rewrite ``log.jsonl`` without the records beyond the position; return those kept."""
        if not self.path.is_file():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        kept, kept_lines = [], []
        for line in lines:
            try:
                record = json.loads(line)
                keep = (record["epoch"] < position if record["kind"] == "train" else record["epoch"] <= epoch)
            except (ValueError, KeyError, TypeError):  # a line cut short by a crash
                continue
            if keep:
                kept.append(record)
                kept_lines.append(line)
        if len(kept_lines) < len(lines):
            write_text(self.path, "".join(f"{line}\n" for line in kept_lines),
                       hint="free disk space or change output_dir")
            log.info("%s: dropped %d records past the starting point (epoch %.4f), they are logged again",
                     self.path, len(lines) - len(kept_lines), position)
        return kept

    def _add_scalars(self, kind: str, epoch: float, values: dict[str, Any]) -> None:
        step = tensorboard_step(epoch)
        for name, value in values.items():
            if name not in ("kind", "epoch") and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{kind}_{name}", value, step)

    def record(self, kind: str, epoch: float, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, "epoch": epoch, **values}) + "\n")
        if self.writer is not None:
            self._add_scalars(kind, epoch, values)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None
