"""Building a network from a checkpoint: read (``align3r.model.checkpoints``), check strictly,
load into a fresh network of the class given.

The machinery behind the two entry points, ``align3r.load_model`` (``load.py``) and
``Align3RNet.from_pretrained`` (``network.py``). It takes the network class as an argument, so it
depends on neither of those modules and they depend on it: no import cycle.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from align3r.errors import CheckpointError
from align3r.model.checkpoints.format import LoadedCheckpoint
from align3r.model.checkpoints.read import read_checkpoint
from align3r.model.config import Align3RConfig, describe
from align3r.model.registry import REGISTRY
from align3r.model.state_dict import check_state_dict


def expected_shapes(config: Align3RConfig, network_class: type[nn.Module]) -> dict[str, torch.Size]:
    """Every state-dict key of the network ``config`` describes, with its shape (built on meta)."""
    with torch.device("meta"):
        net = network_class(config)
    return {k: v.shape for k, v in net.state_dict().items()}


def build_network(loaded: LoadedCheckpoint, network_class: type[nn.Module], device: torch.device | str = "cpu",
                  dtype: torch.dtype | None = None) -> nn.Module:
    """Strictly load ``loaded`` into a fresh ``network_class(loaded.config)`` on ``device``, in eval mode.

    The network is built on the meta device, so no time is spent on a random initialisation
    that the weights overwrite. When every tensor is float32, on ``device`` and owns its whole
    storage, the tensors become the parameters as they are (no second copy in memory);
    otherwise (e.g. strided views sharing storage, other dtypes) they are copied into fresh
    parameters.
    """
    with torch.device("meta"):
        net = network_class(loaded.config)
    expected = {k: v.shape for k, v in net.state_dict().items()}
    what = {"official-pth": "an official checkpoint (.pth with 'args' and 'model') for the",
            "official-hub": "an official Hub checkpoint (config.json + model.safetensors) for the",
            "align3r": "an align3r checkpoint (save_pretrained / align3r convert) for the",
            "align3r-train": "an align3r training checkpoint (checkpoint-*.pth) for the"}[loaded.kind]
    check_state_dict(expected, loaded.state_dict, str(loaded.path), f"{what} {describe(loaded.config)}")
    target = torch.device(device)
    adoptable = all(t.dtype == torch.float32 and t.device.type == target.type and _owns_storage(t)
                    for t in loaded.state_dict.values())
    adoptable = adoptable and len({t.untyped_storage().data_ptr() for t in loaded.state_dict.values()}) == len(
        loaded.state_dict)
    if adoptable:
        net.load_state_dict(loaded.state_dict, strict=True, assign=True)
    else:
        net = net.to_empty(device=device)
        net.load_state_dict(loaded.state_dict, strict=True)
    net.eval()
    if dtype is not None:
        net.set_trunk_dtype(dtype)
    return net


def _owns_storage(t: Tensor) -> bool:
    """Contiguous, offset 0, spanning its whole storage: safe to become a parameter as is."""
    return (t.is_contiguous() and t.storage_offset() == 0
            and t.untyped_storage().nbytes() == t.numel() * t.element_size())


def load_network(source: str | os.PathLike, network_class: type[nn.Module], device: torch.device | str = "cpu",
                 dtype: torch.dtype | None = None, *,
                 with_source: bool = False) -> nn.Module | tuple[nn.Module, dict[str, str]]:
    """Load a DUSt3R-family network of ``network_class`` in eval mode: ``align3r.load_model`` (whose
    docstring says what ``source``, ``dtype`` and ``with_source`` take) for any network class.
    Raises ``CheckpointError`` (``OfflineError`` when weights are missing offline), naming the
    released file and Hub repo when a released name's file does not fit."""
    loaded = read_checkpoint(source, device)
    try:
        net = build_network(loaded, network_class, device=device, dtype=dtype)
    except CheckpointError as exc:
        entry = REGISTRY.get(str(source)) if isinstance(source, str) else None
        if entry is None:
            raise
        raise CheckpointError(f"{exc} The released '{entry.name}' is '{entry.filename}' (Hub repo "
                              f"'{entry.repo_id}').") from exc
    if with_source:
        return net, {"path": str(Path(loaded.path).absolute()), "kind": loaded.kind}
    return net
