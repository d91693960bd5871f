"""Reading checkpoint folders: ``config.json`` + ``model.safetensors``.

The official Hub layout (``config.json`` holds the constructor keywords; safetensors dropped the 8
DPT alias keys) or ours (``save_pretrained`` / ``align3r convert``, marked by ``"align3r_format"``
in ``config.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from align3r.errors import CheckpointError, InputError
from align3r.model.checkpoints.format import FORMAT_KEY, FORMAT_VERSION, TRAINING_KEY, LoadedCheckpoint
from align3r.model.config import Align3RConfig
from align3r.model.official_args import config_from_official_kwargs
from align3r.model.registry import HUB_CONFIG, HUB_WEIGHTS
from align3r.model.state_dict import has_prior_branch, official_to_native


def read_safetensors(path: Path, device: torch.device | str = "cpu") -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    try:
        return load_file(path, device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path} ({type(exc).__name__}: {exc}); the file is truncated or not a "
                              f"safetensors file: download it again") from None


def read_folder(folder: Path, device: torch.device | str = "cpu") -> LoadedCheckpoint:
    """A folder with ``config.json`` + ``model.safetensors`` (official Hub layout or ours).

    Tensors are read straight onto ``device`` (each its own storage, so they can become the
    network's parameters without a copy).
    """
    config_path, weights_path = folder / HUB_CONFIG, folder / HUB_WEIGHTS
    missing = [p.name for p in (config_path, weights_path) if not p.is_file()]
    if missing:
        raise CheckpointError(f"checkpoint folder {folder} lacks {missing}: a checkpoint folder holds {HUB_CONFIG} "
                              f"and {HUB_WEIGHTS} (Hugging Face layout, or `align3r convert` output)")
    try:
        values = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {config_path}: {exc}") from None
    if not isinstance(values, dict):
        raise CheckpointError(f"{config_path} must hold a JSON object")
    state_dict = read_safetensors(weights_path, device)
    if FORMAT_KEY in values:
        if values[FORMAT_KEY] != FORMAT_VERSION:
            raise CheckpointError(f"{config_path} has align3r format {values[FORMAT_KEY]!r}; this version reads "
                                  f"format {FORMAT_VERSION}: upgrade align3r")
        try:
            config = Align3RConfig.from_dict(values.get("config", {}))
        except (InputError, TypeError) as exc:  # a malformed config.json
            raise CheckpointError(f"{config_path}: {exc}") from None
        training = values.get(TRAINING_KEY)
        return LoadedCheckpoint(config, state_dict, folder, "align3r",
                                training=dict(training) if isinstance(training, dict) else None)
    state_dict = official_to_native(state_dict)
    config = config_from_official_kwargs(values, with_prior=has_prior_branch(state_dict), source=str(config_path))
    return LoadedCheckpoint(config, state_dict, folder, "official-hub")
