"""Choosing the compute device once, at the entry points."""

from __future__ import annotations

import torch

from align3r.errors import InputError


def resolve_device(device: str | torch.device | None = None, setting: str = "device") -> torch.device:
    """``None`` / ``"auto"`` → the first CUDA device if there is one, else the CPU.

    An unknown device string, or a CUDA device this machine does not have (no CUDA at all, or
    ``cuda:N`` beyond the device count), raises ``InputError`` saying what to use instead, in the
    caller's syntax: ``setting`` is the name the user typed, a config key (``"device"``: "use
    device=cpu") or a command-line option (``"--device"``: "use --device cpu").
    """

    def spelled(value) -> str:
        return f"{setting} {value}" if setting.startswith("-") else f"{setting}={value}"

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"{spelled(device)}: no CUDA device is available (torch.cuda.is_available() is False); "
                             f"use {spelled('cpu')} or {spelled('auto')}")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise InputError(f"{spelled(device)}: this machine has {count} CUDA device(s) "
                             f"(cuda:0..cuda:{count - 1}); use one of those or {spelled('auto')}")
    return resolved
