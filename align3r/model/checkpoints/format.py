"""What a checkpoint reader returns, and the markers of our own format (``config.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from align3r.model.config import Align3RConfig

#: ``config.json`` key (and safetensors metadata key) marking a folder written by ``align3r``
FORMAT_KEY = "align3r_format"
#: the version of our format this code reads and writes
FORMAT_VERSION = 1
#: ``config.json`` entry holding how ``align3r train`` trained the network (``prior``, ``prior_input``)
TRAINING_KEY = "training"


@dataclass
class LoadedCheckpoint:
    """A checkpoint read from disk: our config, the state dict in our key names, where it came from.

    ``state_dict`` tensors may be memory-mapped or strided views; ``load_state_dict`` copies them.
    """

    config: Align3RConfig
    state_dict: dict[str, Tensor]
    path: Path
    kind: str  # "official-pth" | "official-hub" | "align3r" | "align3r-train"
    training: dict[str, Any] | None = None
    """What ``align3r train`` recorded about how the network was trained (``final_model/config.json``'s
    ``"training"`` entry: ``prior``, ``prior_input``), or None."""
