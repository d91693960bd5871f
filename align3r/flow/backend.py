"""What a flow backend is, and how to get one by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from align3r.device import resolve_device
from align3r.errors import InputError

BACKEND_NAMES = ("raft-large", "raft-small", "dis")
# "raft" is the default backend name and means torchvision's large RAFT.
BACKEND_ALIASES = {"raft": "raft-large"}


@runtime_checkable
class FlowBackend(Protocol):
    """Computes optical flow for a batch of image pairs.

    ``backend(source, target)``: (B, 3, H, W) float32 frames in [-1, 1] -> (B, 2, H, W) float32 flow
    in pixels ``(du, dv)`` taking each source pixel to its match in the target. ``name`` says what it
    is; ``device`` is where it wants its inputs.
    """

    name: str
    device: torch.device

    def __call__(self, source: Tensor, target: Tensor) -> Tensor: ...


def load_flow_backend(name: str = "raft", *, device: torch.device | str | None = None, **options) -> FlowBackend:
    """A flow backend by name.

    Args:
        name: ``"raft-large"`` (alias ``"raft"``), ``"raft-small"`` (torchvision RAFT) or ``"dis"``
            (OpenCV DIS, weight-free, CPU).
        device: where RAFT runs (default: CUDA when available, else CPU). DIS always runs on the CPU.
        options: for RAFT ``weights`` (torchvision enum or name, default ``"DEFAULT"``; a local
            ``.pth`` path; ``None`` for random weights), ``num_flow_updates`` (default 20, as the
            reference), ``download``, ``progress``; for DIS ``preset`` (``"ultrafast"``, ``"fast"``,
            ``"medium"``) and ``num_workers``.
    """
    canonical = BACKEND_ALIASES.get(name, name)
    if canonical in ("raft-large", "raft-small"):
        from align3r.flow.raft import RaftBackend

        _check_options(canonical, RaftBackend.load, options)
        return RaftBackend.load(canonical, device=resolve_device(device), **options)
    if canonical == "dis":
        from align3r.flow.dis import DisBackend

        _check_options(canonical, DisBackend, options)
        return DisBackend(**options)
    raise InputError(f"unknown flow backend {name!r}; choose one of {', '.join(BACKEND_NAMES)} "
                     f"(or 'raft' for raft-large)")


def flow_backend(name: str | None, *, weights: str | None = "DEFAULT", iterations: int = 20,
                 device: torch.device | str | None = None, progress: bool = True) -> FlowBackend | None:
    """The backend a ``flow`` setting names, weights loaded (missing RAFT weights offline raise
    ``OfflineError`` here), or None for ``"none"``.

    Args:
        name: ``"raft"`` / ``"raft-large"``, ``"raft-small"``, ``"dis"`` or ``"none"`` (None too).
        weights: RAFT weights (``"DEFAULT"``, a local ``.pth``, None for random weights).
        iterations: RAFT refinement iterations (the reference: 20).
        device: where RAFT runs.
        progress: the download bar of RAFT weights.
    """
    if name in (None, "none"):
        return None
    canonical = BACKEND_ALIASES.get(name, name)
    options: dict = {}
    if canonical.startswith("raft"):
        options = {"weights": weights, "num_flow_updates": iterations, "progress": progress}
    return load_flow_backend(canonical, device=device, **options)


def _check_options(name: str, factory: Callable, options: dict) -> None:
    accepted = [p for p in inspect.signature(factory).parameters if p not in ("self", "cls", "variant", "device")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InputError(f"flow backend {name!r} has no option {', '.join(unknown)}; "
                         f"its options are {', '.join(accepted)}")
