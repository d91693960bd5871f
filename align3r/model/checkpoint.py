"""Reading and writing checkpoints, safely and strictly.

Formats read by ``load_model``:

- an official ``.pth``: a pickled dict with ``args`` (an ``argparse.Namespace`` whose ``model``
  is the constructor string) and ``model`` (the state dict); training checkpoints add
  ``optimizer``, ``scaler``, ``epoch``, ``best_so_far`` (ignored). Unpickled with
  ``torch.load(weights_only=True)`` and ``argparse.Namespace`` as the only allowed global.
- a folder with ``config.json`` + ``model.safetensors``: the official Hub layout (constructor
  keywords, 8 DPT alias keys dropped by safetensors) or ours (``save_pretrained``, marked by
  ``"align3r_format"`` in ``config.json``).
- a training checkpoint of ``align3r train`` (``checkpoint-*.pth``): our key names, the network's
  ``model_config`` (built with its inference-time patch embedding), optimizer state ignored.
- a registry short name or a Hub repo id, resolved to one of the above (``registry.py``).

Every key of the file is loaded or is a documented alias (``state_dict.py``); any other
difference raises ``CheckpointError`` naming the keys.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from align3r.atomic import atomic_path, check_output_folder, new_file_mode
from align3r.errors import CheckpointError, InputError
from align3r.model.config import Align3RConfig
from align3r.model.network import Align3RNet
from align3r.model.official_args import config_from_official_kwargs, model_from_official_args
from align3r.model.registry import HUB_CONFIG, HUB_WEIGHTS, REGISTRY, download_from_hub, resolve_checkpoint
from align3r.model.state_dict import check_state_dict, has_prior_branch, official_to_native

# The only non-tensor object an official checkpoint pickles.
ALLOWED_GLOBALS = (argparse.Namespace,)
FORMAT_KEY = "align3r_format"
FORMAT_VERSION = 1
#: ``config.json`` entry holding how ``align3r train`` trained the network (``prior``, ``prior_input``)
TRAINING_KEY = "training"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class LoadedCheckpoint:
    """A checkpoint read from disk: our config, the state dict in our key names, where it came from.

    ``state_dict`` tensors may be memory-mapped or strided views; ``load_state_dict`` copies them.
    """

    config: Align3RConfig
    state_dict: dict[str, Tensor]
    path: Path
    kind: str  # "official-pth" | "official-hub" | "align3r" | "align3r-train"
    training: dict[str, Any] | None = None
    """What ``align3r train`` recorded about how the network was trained (``final_model/config.json``'s
    ``"training"`` entry: ``prior``, ``prior_input``), or None."""


# --- reading ------------------------------------------------------------------------------------
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


def read_checkpoint(source: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedCheckpoint:
    """Read any supported checkpoint (see the module docstring) into our config + key names.

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


def describe(config: Align3RConfig) -> str:
    """One line naming the architecture, for error messages and listings."""
    family = "Align3R" if config.with_prior else "DUSt3R/MonST3R"
    return (f"{family} network (encoder {config.enc_embed_dim}x{config.enc_depth}, decoder "
            f"{config.dec_embed_dim}x{config.dec_depth}, {config.head_type} head)")


# --- building -----------------------------------------------------------------------------------
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


def load_model(source: str | os.PathLike, device: torch.device | str = "cpu",
               dtype: torch.dtype | None = None) -> Align3RNet:
    """Load a DUSt3R-family network in eval mode.

    ``source``: a released name (``align3r-depthpro``, ``align3r-depthanything``,
    ``dust3r-512-dpt``, ``dust3r-224-linear``, ``monst3r``), an official ``.pth``, a folder
    with ``config.json`` + ``model.safetensors`` (official Hub layout or ours), or a Hub repo id.
    ``dtype`` (e.g. ``torch.bfloat16``) stores the transformer in that dtype; heads stay float32.
    Raises ``CheckpointError`` (``OfflineError`` when weights are missing offline).
    """
    return load_model_and_source(source, device, dtype)[0]


def load_model_and_source(source: str | os.PathLike, device: torch.device | str = "cpu",
                          dtype: torch.dtype | None = None) -> tuple[Align3RNet, dict[str, str]]:
    """:func:`load_model`, plus where the weights were read from: ``{"path", "kind"}``."""
    loaded = read_checkpoint(source, device)
    origin = {"path": str(Path(loaded.path).absolute()), "kind": loaded.kind}
    try:
        return build_network(loaded, device=device, dtype=dtype), origin
    except CheckpointError as exc:
        entry = REGISTRY.get(str(source)) if isinstance(source, str) else None
        if entry is None:
            raise
        raise CheckpointError(f"{exc} The released '{entry.name}' is '{entry.filename}' (Hub repo "
                              f"'{entry.repo_id}').") from exc


# --- writing ------------------------------------------------------------------------------------
def write_checkpoint(config: Align3RConfig, state_dict: Mapping[str, Tensor], directory: str | Path,
                     metadata: Mapping[str, Any] | None = None) -> Path:
    """Write our format: ``config.json`` (with the format marker) + ``model.safetensors``.

    ``metadata``: how the network was trained (``{"prior": "depthanything", "prior_input":
    "pointmap"}``), stored as ``config.json``'s ``"training"`` entry next to the network config;
    ``align3r infer`` / ``align3r eval`` take ``prior=auto`` and the default ``prior_input`` from
    it (``align3r.priors.compatibility.training_metadata``).
    Files are written to temporaries and renamed, so an interrupted write leaves no half file.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    values: dict[str, Any] = {FORMAT_KEY: FORMAT_VERSION, "architecture": "Align3RNet", "config": config.to_dict()}
    if metadata:
        values[TRAINING_KEY] = dict(metadata)
    payload = json.dumps(values, indent=2)
    hint = "free disk space or choose another folder"
    with atomic_path(directory / HUB_WEIGHTS, hint=hint) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", FORMAT_KEY: str(FORMAT_VERSION)})
        os.chmod(tmp, new_file_mode())  # safetensors creates it 0600; the other outputs follow the umask
    with atomic_path(directory / HUB_CONFIG, hint=hint) as tmp:
        tmp.write_text(payload + "\n")
    return directory


def write_training_metadata(directory: str | Path, metadata: Mapping[str, Any]) -> Path:
    """Record ``metadata`` (see :func:`write_checkpoint`) in an existing checkpoint folder of our
    format: ``config.json`` is rewritten atomically, the weights are not touched."""
    config_path = Path(directory) / HUB_CONFIG
    try:
        values = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {config_path}: {exc}") from None
    if not isinstance(values, dict) or FORMAT_KEY not in values:
        raise CheckpointError(f"{config_path} is not an align3r checkpoint folder (no {FORMAT_KEY!r})")
    values[TRAINING_KEY] = dict(metadata)
    with atomic_path(config_path, hint="free disk space") as tmp:
        tmp.write_text(json.dumps(values, indent=2) + "\n")
    return config_path


def save_pretrained(net: Align3RNet, directory: str | Path) -> Path:
    """Save ``net`` as ``config.json`` + ``model.safetensors`` (reload with ``load_model(directory)``)."""
    return write_checkpoint(net.config, net.state_dict(), directory)


def from_pretrained(source: str | os.PathLike, device: torch.device | str = "cpu",
                    dtype: torch.dtype | None = None) -> Align3RNet:
    """Alias of ``load_model`` (Hugging Face naming)."""
    return load_model(source, device=device, dtype=dtype)


def convert_checkpoint(source: str | os.PathLike, directory: str | Path) -> LoadedCheckpoint:
    """Convert any readable checkpoint (e.g. an official ``.pth``) to our format, strictly checked.

    No network is materialised: the keys are checked against the architecture on the meta
    device and the tensors written as they are.
    """
    check_output_folder(directory)  # before the (possibly long) read
    loaded = read_checkpoint(source)
    check_state_dict(expected_shapes(loaded.config), loaded.state_dict, str(loaded.path),
                     f"a checkpoint for the {describe(loaded.config)}")
    write_checkpoint(loaded.config, loaded.state_dict, directory)
    return loaded
