"""Choosing the compute device once, at the entry points."""

from __future__ import annotations

import torch

from align3r.errors import InputError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` / ``"auto"`` → the first CUDA device if there is one, else the CPU.

    An unknown device string raises ``InputError`` saying what is accepted.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
