"""Read any supported checkpoint: a released name, a ``.pth``, a folder, a ``.safetensors`` file
or a Hub repo id (resolved and downloaded by ``registry.py``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from align3r.errors import CheckpointError
from align3r.model.checkpoints.folder import read_folder
from align3r.model.checkpoints.format import LoadedCheckpoint
from align3r.model.checkpoints.pth import read_pth
from align3r.model.registry import HUB_CONFIG, HUB_WEIGHTS, REGISTRY, download_from_hub, resolve_checkpoint

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def read_checkpoint(source: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedCheckpoint:
    """Read any supported checkpoint (see ``align3r.model.checkpoints``) into our config + key names.

    Safetensors files are read onto ``device``; a ``.pth`` is memory-mapped on the CPU.
    """
    text = str(source)
    entry = REGISTRY.get(text) if isinstance(source, str) else None
    if entry is not None:
        path = resolve_checkpoint(text)
    elif Path(text).expanduser().exists():
        path = Path(text).expanduser()
    elif (isinstance(source, str) and _REPO_ID.match(text) and not text.endswith((".pth", ".safetensors"))
          and not Path(text).parent.is_dir()):
        path = download_from_hub(text)
    else:
        raise CheckpointError(f"checkpoint {text!r} not found: give a released name ({', '.join(REGISTRY)}), "
                              f"a .pth file, a folder with {HUB_CONFIG} + {HUB_WEIGHTS}, or a Hub repo id")
    if path.is_dir():
        loaded = read_folder(path, device)
    elif path.suffix == ".safetensors":
        loaded = read_folder(path.parent, device)
    else:
        loaded = read_pth(path)
    if entry is not None and entry.with_prior != loaded.config.with_prior:
        kind = "an Align3R checkpoint (with the prior branch)" if entry.with_prior else "a DUSt3R/MonST3R checkpoint"
        raise CheckpointError(f"'{entry.name}' should be {kind}, but {loaded.path} is not; it is probably another "
                              f"model's file: fetch '{entry.filename}' or the Hub repo '{entry.repo_id}'")
    return loaded
