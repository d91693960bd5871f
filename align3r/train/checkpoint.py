"""Training checkpoints: atomic writes, safe reads, RNG capture.

Files in the output folder (the reference's names):

- ``checkpoint-last.pth``: everything needed to resume — model, optimizer, grad scaler,
  epoch and batch position, optimizer-step count, best test loss, RNG states, the run config;
  rewritten at every epoch end (and every ``save_every_steps`` optimizer steps).
- ``checkpoint-best.pth``: the same, when the median test loss reaches a new minimum.
- ``checkpoint-<epoch>.pth``: kept every ``keep_freq`` epochs.
- ``checkpoint-final.pth`` and ``final_model/`` (``config.json`` + ``model.safetensors``,
  loadable by ``align3r.model.load_model``): the trained network at the end.

Every file is written to a temporary name and renamed, so a crash never leaves a truncated
checkpoint; everything is loaded with ``torch.load(weights_only=True)`` (tensors, numbers,
strings, lists and dicts only).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from align3r.atomic import atomic_path
from align3r.errors import CheckpointError

LAST = "checkpoint-last.pth"
BEST = "checkpoint-best.pth"
FINAL = "checkpoint-final.pth"
FINAL_MODEL_DIR = "final_model"


def kept_name(epoch: int) -> str:
    return f"checkpoint-{epoch}.pth"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically with ``torch.save``."""
    path = Path(path)
    with atomic_path(path, hint="free disk space or change output_dir") as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (weights-only unpickling)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # truncated, foreign or unsafe pickle
        raise CheckpointError(f"cannot read training checkpoint {path}: {exc}; delete it to start over, or "
                              "point output_dir elsewhere") from None


def capture_rng() -> dict[str, Any]:
    """Torch's global RNG states (CPU and CUDA), weights-only-loadable.

    The data pipeline draws from per-sample generators (``align3r.data.mixing``) and never from
    numpy's or Python's global RNG, so torch's is the only global state a run depends on.
    """
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
