"""Reading ``.pth`` checkpoints.

- an official ``.pth``: a pickled dict with ``args`` (an ``argparse.Namespace`` whose ``model``
  is the constructor string) and ``model`` (the state dict); training checkpoints add
  ``optimizer``, ``scaler``, ``epoch``, ``best_so_far`` (ignored). Unpickled with
  ``torch.load(weights_only=True)`` and ``argparse.Namespace`` as the only allowed global.
- a training checkpoint of ``align3r train`` (``checkpoint-*.pth``): our key names, the network's
  ``model_config`` (built with its inference-time patch embedding), optimizer state ignored.
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from align3r.errors import CheckpointError
from align3r.model.checkpoints.format import LoadedCheckpoint
from align3r.model.config import Align3RConfig
from align3r.model.official_args import model_from_official_args
from align3r.model.state_dict import has_prior_branch, official_to_native

# The only non-tensor object an official checkpoint pickles.
ALLOWED_GLOBALS = (argparse.Namespace,)


def _load_pth(path: Path) -> Mapping:
    """The unpickled dict of a ``.pth`` with a ``model`` state dict (weights-only, allow-listed globals)."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} does not exist")
    not_a_checkpoint = _not_a_checkpoint(path)
    if not_a_checkpoint:
        raise CheckpointError(f"{path} is not a PyTorch checkpoint ({not_a_checkpoint}); the download probably "
                              "failed: download it again")
    try:
        with torch.serialization.safe_globals(list(ALLOWED_GLOBALS)):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = _unsafe_globals(path)
        if not unsafe:
            raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint ({str(exc).splitlines()[0]}); the "
                                  "file is damaged or not a checkpoint: download it again") from None
        raise CheckpointError(
            f"refusing to load {path}: it pickles Python objects outside the allow-list "
            f"(argparse.Namespace): {unsafe}. Only official checkpoints are accepted; if you trust this file, "
            f"re-save its 'model' state dict and 'args' as plain data.") from None
    except Exception as exc:  # the unpickler raises KeyError, IndexError, ... on arbitrary bytes
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); the file is truncated or not a "
                              f"checkpoint: download it again") from None
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("model"), Mapping):
        raise CheckpointError(f"{path} is not an official DUSt3R-family checkpoint: expected a dict with 'args' and "
                              f"'model' (the state dict), got {_describe_keys(ckpt)}")
    return ckpt


def _tensor_state_dict(ckpt: Mapping, path: Path) -> dict[str, Tensor]:
    state_dict = dict(ckpt["model"])
    bad = sorted(k for k, v in state_dict.items() if not isinstance(v, Tensor))
    if bad:
        raise CheckpointError(f"{path}: state-dict entries that are not tensors: {bad[:10]}")
    return state_dict


def read_official_pth(path: str | Path) -> tuple[dict[str, Tensor], str]:
    """Unpickle an official ``.pth`` safely: ``(state_dict, constructor string)``.

    Refuses (``CheckpointError`` naming them) any pickled global beyond ``argparse.Namespace``.
    """
    path = Path(path)
    return _official_parts(_load_pth(path), path)


def _official_parts(ckpt: Mapping, path: Path) -> tuple[dict[str, Tensor], str]:
    args = ckpt.get("args")
    model = args.get("model") if isinstance(args, Mapping) else getattr(args, "model", None)
    if not isinstance(model, str):
        raise CheckpointError(f"{path} has no constructor string in ckpt['args'].model, so its architecture is "
                              f"unknown; convert it with the config of the network it belongs to")
    return _tensor_state_dict(ckpt, path), model


def read_pth(path: Path) -> LoadedCheckpoint:
    """An official ``.pth`` (constructor string in ``args``) or one of our training checkpoints
    (``checkpoint-*.pth`` from ``align3r train``: our key names and ``model_config``)."""
    ckpt = _load_pth(path)
    if isinstance(ckpt.get("model_config"), Mapping):
        config = Align3RConfig.from_dict(dict(ckpt["model_config"])).for_inference()
        return LoadedCheckpoint(config, _tensor_state_dict(ckpt, path), path, "align3r-train")
    state_dict, model_string = _official_parts(ckpt, path)
    state_dict = official_to_native(state_dict)
    config = model_from_official_args(model_string, with_prior=has_prior_branch(state_dict))
    return LoadedCheckpoint(config, state_dict, path, "official-pth")


def _not_a_checkpoint(path: Path) -> str | None:
    """What the file is instead, when its first bytes show it is no checkpoint (a zip archive
    or a legacy pickle), else None. Catches the usual failed downloads: HTML pages, JSON errors."""
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        return "the file is empty"
    if head.startswith(b"PK") or head[:1] == b"\x80":  # torch.save's zip, or a pickle protocol >= 2
        return None
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<")):
        return "it is an HTML/XML page, e.g. a login or quota page saved instead of the file"
    if text.startswith((b"{", b"[")):
        return "it is JSON text, e.g. an error message from the server"
    if text.startswith(b"version https://git-lfs"):
        return "it is a Git LFS pointer; fetch the real file with `git lfs pull`"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "it is a text file"
    return None


def _unsafe_globals(path: Path) -> list[str]:
    """The globals in the pickle that ``weights_only`` refuses, less the ones we allow."""
    try:
        found = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # best effort, for the message only
        return []
    allowed = {f"{cls.__module__}.{cls.__qualname__}" for cls in ALLOWED_GLOBALS}
    return [name for name in found if name not in allowed]


def _describe_keys(obj: object) -> str:
    if isinstance(obj, Mapping):
        return f"a dict with keys {sorted(map(str, obj))[:10]}"
    return type(obj).__name__
