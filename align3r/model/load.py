"""Loading a network: ``load_model``, the one way (``align3r.load_model``).

It reads any checkpoint source into an :class:`~align3r.model.network.Align3RNet` through
``align3r.model.build``; ``Align3RNet.from_pretrained`` is the same call as a classmethod.
"""

from __future__ import annotations

import os
from typing import Literal, overload

import torch

from align3r.model import build
from align3r.model.config import Align3RConfig
from align3r.model.network import Align3RNet


def expected_shapes(config: Align3RConfig) -> dict[str, torch.Size]:
    """Every state-dict key of the ``Align3RNet`` that ``config`` describes, with its shape."""
    return build.expected_shapes(config, Align3RNet)


@overload
def load_model(source: str | os.PathLike, device: torch.device | str = ..., dtype: torch.dtype | None = ..., *,
               with_source: Literal[False] = ...) -> Align3RNet: ...


@overload
def load_model(source: str | os.PathLike, device: torch.device | str = ..., dtype: torch.dtype | None = ..., *,
               with_source: Literal[True]) -> tuple[Align3RNet, dict[str, str]]: ...


def load_model(source: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype | None = None, *,
               with_source: bool = False) -> Align3RNet | tuple[Align3RNet, dict[str, str]]:
    """Load a DUSt3R-family network in eval mode: the one way to load a network.

    ``source``: a released name (``align3r-depthpro``, ``align3r-depthanything``,
    ``dust3r-512-dpt``, ``dust3r-224-linear``, ``monst3r``), an official ``.pth``, a folder
    with ``config.json`` + ``model.safetensors`` (official Hub layout or ours), or a Hub repo id.
    ``dtype`` (e.g. ``torch.bfloat16``) stores the transformer in that dtype; heads stay float32.
    ``with_source``: also return where the weights were read from, ``(net, {"path", "kind"})``
    (the absolute path and the ``LoadedCheckpoint.kind``; what a run's manifest records).
    Raises ``CheckpointError`` (``OfflineError`` when weights are missing offline).
    """
    return build.load_network(source, Align3RNet, device, dtype, with_source=with_source)
