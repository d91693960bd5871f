"""Writing our checkpoint format: ``config.json`` (with the format marker) + ``model.safetensors``.

Files are written to temporaries, fsync'ed and renamed (``align3r.atomic``, ``durable=True``): an
interrupted write leaves no half file, and a written checkpoint survives a power loss.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from align3r.atomic import atomic_path, new_file_mode
from align3r.errors import CheckpointError
from align3r.model.checkpoints.format import FORMAT_KEY, FORMAT_VERSION, TRAINING_KEY
from align3r.model.config import Align3RConfig
from align3r.model.registry import HUB_CONFIG, HUB_WEIGHTS

if TYPE_CHECKING:
    from align3r.model.network import Align3RNet


def write_checkpoint(config: Align3RConfig, state_dict: Mapping[str, Tensor], directory: str | Path,
                     metadata: Mapping[str, Any] | None = None) -> Path:
    """Write our format: ``config.json`` (with the format marker) + ``model.safetensors``.

    ``metadata``: how the network was trained (``{"prior": "depthanything", "prior_input":
    "pointmap"}``), stored as ``config.json``'s ``"training"`` entry next to the network config;
    ``align3r infer`` / ``align3r eval`` take ``prior=auto`` and the default ``prior_input`` from
    it (``align3r.priors.compatibility.training_metadata``).
    Files are written to temporaries, fsync'ed and renamed, so an interrupted write leaves no half file.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    values: dict[str, Any] = {FORMAT_KEY: FORMAT_VERSION, "architecture": "Align3RNet", "config": config.to_dict()}
    if metadata:
        values[TRAINING_KEY] = dict(metadata)
    payload = json.dumps(values, indent=2)
    hint = "free disk space or choose another folder"
    with atomic_path(directory / HUB_WEIGHTS, durable=True, hint=hint) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", FORMAT_KEY: str(FORMAT_VERSION)})
        os.chmod(tmp, new_file_mode())  # safetensors creates it 0600; the other outputs follow the umask
    with atomic_path(directory / HUB_CONFIG, durable=True, hint=hint) as tmp:
        tmp.write_text(payload + "\n")
    return directory


def write_training_metadata(directory: str | Path, metadata: Mapping[str, Any]) -> Path:
    """Record ``metadata`` (see :func:`write_checkpoint`) in an existing checkpoint folder of our
    format: ``config.json`` is rewritten atomically, the weights are not touched."""
    config_path = Path(directory) / HUB_CONFIG
    try:
        values = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {config_path}: {exc}") from None
    if not isinstance(values, dict) or FORMAT_KEY not in values:
        raise CheckpointError(f"{config_path} is not an align3r checkpoint folder (no {FORMAT_KEY!r})")
    values[TRAINING_KEY] = dict(metadata)
    with atomic_path(config_path, durable=True, hint="free disk space") as tmp:
        tmp.write_text(json.dumps(values, indent=2) + "\n")
    return config_path


def save_pretrained(net: Align3RNet, directory: str | Path) -> Path:
    """Save ``net`` as ``config.json`` + ``model.safetensors`` (reload with ``align3r.load_model(directory)``)."""
    return write_checkpoint(net.config, net.state_dict(), directory)
