"""Choosing the compute device once, at the entry points."""

from __future__ import annotations

import torch

from align3r.errors import InputError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` / ``"auto"`` → the first CUDA device if there is one, else the CPU.

    An unknown device string, or a CUDA device this machine does not have (no CUDA at all, or
    ``cuda:N`` beyond the device count), raises ``InputError`` saying what to use instead.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device={device}: no CUDA device is available (torch.cuda.is_available() is False); "
                             "use device=cpu or device=auto")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise InputError(f"device={device}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1}); "
                             "use one of those or device=auto")
    return resolved
