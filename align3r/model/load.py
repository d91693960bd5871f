"""Loading a network: a checkpoint (``align3r.model.checkpoints``) strictly loaded into an
:class:`~align3r.model.network.Align3RNet`.

:func:`load_model` is the one way to load a network (``align3r.load_model``;
``Align3RNet.from_pretrained`` calls it). This module depends on ``network.py`` and the checkpoint
readers; ``network.py`` depends on neither.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, overload

import torch
from torch import Tensor

from align3r.errors import CheckpointError
from align3r.model.checkpoints.format import LoadedCheckpoint
from align3r.model.checkpoints.read import read_checkpoint
from align3r.model.config import Align3RConfig, describe
from align3r.model.network import Align3RNet
from align3r.model.registry import REGISTRY
from align3r.model.state_dict import check_state_dict


def expected_shapes(config: Align3RConfig) -> dict[str, torch.Size]:
    """Every state-dict key of the network ``config`` describes, with its shape (built on meta)."""
    with torch.device("meta"):
        net = Align3RNet(config)
    return {k: v.shape for k, v in net.state_dict().items()}


def build_network(loaded: LoadedCheckpoint, device: torch.device | str = "cpu",
                  dtype: torch.dtype | None = None) -> Align3RNet:
    """Strictly load ``loaded`` into a fresh network on ``device``, in eval mode.

    The network is built on the meta device, so no time is spent on a random initialisation
    that the weights overwrite. When every tensor is float32, on ``device`` and owns its whole
    storage, the tensors become the parameters as they are (no second copy in memory);
    otherwise (e.g. strided views sharing storage, other dtypes) they are copied into fresh
    parameters.
    """
    with torch.device("meta"):
        net = Align3RNet(loaded.config)
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


@overload
def load_model(source: str | os.PathLike, device: torch.device | str = ..., dtype: torch.dtype | None = ..., *,
               with_source: Literal[False] = ...) -> Align3RNet: ...


@overload
def load_model(source: str | os.PathLike, device: torch.device | str = ..., dtype: torch.dtype | None = ..., *,
               with_source: Literal[True]) -> tuple[Align3RNet, dict[str, str]]: ...


def load_model(source: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype | None = None, *,
               with_source: bool = False) -> Align3RNet | tuple[Align3RNet, dict[str, str]]:
    """Load a DUSt3R-family network in eval mode: the one way to load a network
    (``align3r.load_model``; ``Align3RNet.from_pretrained`` calls it).

    ``source``: a released name (``align3r-depthpro``, ``align3r-depthanything``,
    ``dust3r-512-dpt``, ``dust3r-224-linear``, ``monst3r``), an official ``.pth``, a folder
    with ``config.json`` + ``model.safetensors`` (official Hub layout or ours), or a Hub repo id.
    ``dtype`` (e.g. ``torch.bfloat16``) stores the transformer in that dtype; heads stay float32.
    ``with_source``: also return where the weights were read from, ``(net, {"path", "kind"})``
    (the absolute path and the ``LoadedCheckpoint.kind``; what a run's manifest records).
    Raises ``CheckpointError`` (``OfflineError`` when weights are missing offline).
    """
    loaded = read_checkpoint(source, device)
    try:
        net = build_network(loaded, device=device, dtype=dtype)
    except CheckpointError as exc:
        entry = REGISTRY.get(str(source)) if isinstance(source, str) else None
        if entry is None:
            raise
        raise CheckpointError(f"{exc} The released '{entry.name}' is '{entry.filename}' (Hub repo "
                              f"'{entry.repo_id}').") from exc
    if with_source:
        return net, {"path": str(Path(loaded.path).absolute()), "kind": loaded.kind}
    return net
