"""Training checkpoints: atomic writes, safe reads, RNG capture.

Files in the output folder (the reference's names):

- ``checkpoint-last.pth``: everything needed to resume — model, optimizer, grad scaler,
  epoch and batch position, optimizer-step count, best test loss, RNG states, the run config;
  rewritten at every epoch end (and every ``save_every_steps`` optimizer steps, when
  ``max_steps`` stops a run, and on Ctrl-C at the last completed optimizer step).
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
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from align3r.atomic import atomic_path
from align3r.errors import CheckpointError
from align3r.model.state_dict import listing

if TYPE_CHECKING:
    from align3r.model import Align3RConfig

LAST = "checkpoint-last.pth"
BEST = "checkpoint-best.pth"
FINAL = "checkpoint-final.pth"
FINAL_MODEL_DIR = "final_model"


def kept_name(epoch: int) -> str:
    return f"checkpoint-{epoch}.pth"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically with ``torch.save``, fsync'ed (a resume needs it after a power loss)."""
    path = Path(path)
    with atomic_path(path, durable=True, hint="free disk space or change output_dir") as tmp:
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


# --- does a state dict fit the run's network? -----------------------------------------------------
# Config fields that do not describe the trained architecture: the training/inference patch
# embedding and head orientation, the prior branch (a DUSt3R source gets one), what is frozen.
_NOT_ARCHITECTURE = frozenset({"patch_embed_cls", "landscape_only", "with_prior", "freeze"})


def _override(name: str, value: Any) -> str:
    if isinstance(value, (tuple, list)):
        value = "[" + ",".join(str(v) for v in value) + "]"
    return f"+model.overrides.{name}={value}"


def architecture_settings(source: Align3RConfig, current: Align3RConfig) -> list[str]:
    """The fewest ``model.preset=`` / ``+model.overrides.<field>=`` settings that make a run build
    the (prior-branch) network ``source`` describes; [] when ``current`` already is that network.

    Keeping the run's preset (and overriding the fields that differ) wins ties.
    """
    from align3r.model import PRESETS

    target = source.replace(with_prior=True)

    def differing(base: Align3RConfig) -> list[str]:
        return [f.name for f in fields(target)
                if f.name not in _NOT_ARCHITECTURE and getattr(target, f.name) != getattr(base, f.name)]

    options = [([], differing(current))]
    options += [([f"model.preset={name}"], differing(config)) for name, config in PRESETS.items()
                if config.with_prior]
    preset, changed = min(options, key=lambda option: len(option[0]) + len(option[1]))
    return preset + [_override(name, getattr(target, name)) for name in changed]


def state_dict_differences(expected: Mapping[str, torch.Size], state_dict: Mapping[str, torch.Tensor]) -> str:
    """A short description of the keys / shapes in which ``state_dict`` differs from ``expected``
    ("" when it fits)."""
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state_dict) if tuple(state_dict[k].shape) != tuple(expected[k]))
    parts = []
    if wrong:
        parts.append("shapes differ: " + listing(
            [f"{k} {tuple(state_dict[k].shape)} vs {tuple(expected[k])}" for k in wrong], limit=3))
    if missing:
        parts.append(f"missing: {listing(missing, limit=3)}")
    if unexpected:
        parts.append(f"extra: {listing(unexpected, limit=3)}")
    return "; ".join(parts)


def mismatch_advice(source: Align3RConfig | None, current: Align3RConfig | None, fix: str, otherwise: str) -> str:
    """What to set after a state dict did not fit: the settings of ``source``'s architecture
    ("<fix> <settings>"), else ``otherwise``."""
    from align3r.model.config import describe

    if source is None or current is None:
        return otherwise
    settings = architecture_settings(source, current)
    if not settings:
        return (f"the file declares this run's architecture ({describe(current)}), so it is probably "
                f"damaged or edited; {otherwise}")
    extra = " and no other model.overrides" if settings[0].startswith("model.preset=") else ""
    return (f"it holds an {describe(source.replace(with_prior=True))}, this run builds an {describe(current)}: "
            f"{fix} {' '.join(settings)}{extra}, or {otherwise}")


def check_fits(net: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], what: str,
               source: Align3RConfig | None, fix: str, otherwise: str) -> None:
    """Raise a one-line ``CheckpointError`` unless ``state_dict`` loads strictly into ``net``.

    ``what`` names the file (e.g. "model.pretrained /x/a.pth"); ``source`` is the architecture the
    file declares (None if unknown); ``fix`` introduces the settings that build that
    architecture; ``otherwise`` is the alternative.
    """
    expected = {k: v.shape for k, v in net.state_dict().items()}
    differences = state_dict_differences(expected, state_dict)
    if differences:
        advice = mismatch_advice(source, getattr(net, "config", None), fix, otherwise)
        raise CheckpointError(f"{what} does not fit the network of this run ({differences}); {advice}")
