"""RAFT networks from torchvision with their weights: the torchvision weights API, a local file, or none.

``weights`` may be

- a torchvision enum member (``Raft_Large_Weights.C_T_SKHT_V2``) or its name (``"C_T_SKHT_V2"``),
  ``"DEFAULT"`` for torchvision's recommended one. The file is read from torch hub's cache,
  ``$TORCH_HOME/hub/checkpoints/`` (``~/.cache/torch/hub/checkpoints/`` by default), and
  downloaded there when missing and downloads are allowed;
- a path to a local ``.pth``/``.pt`` file holding a torchvision RAFT state dict (optionally under
  ``"state_dict"`` or ``"model"``, optionally with DataParallel's ``module.`` prefix);
- ``None``: random initialisation, for tests and benchmarks only (the flow is meaningless).

Every file is read with ``torch.load(weights_only=True)`` and loaded strictly.

Downloads are disabled when ``download=False``, or, with ``download=None``, when ``ALIGN3R_OFFLINE``
or ``HF_HUB_OFFLINE`` is set to a true value. A missing file then raises :class:`OfflineError`
naming the URL and where to put the file.
"""

from __future__ import annotations

import os
import pickle
import urllib.error
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import WeightsEnum
from torchvision.models.optical_flow import Raft_Large_Weights, Raft_Small_Weights, raft_large, raft_small

from align3r.errors import CheckpointError, OfflineError

RAFT_VARIANTS: dict[str, tuple[Callable[..., nn.Module], type[WeightsEnum]]] = {
    "raft-large": (raft_large, Raft_Large_Weights),
    "raft-small": (raft_small, Raft_Small_Weights),
}

WeightsSpec = WeightsEnum | str | os.PathLike | None

_OFFLINE_ENV = ("ALIGN3R_OFFLINE", "HF_HUB_OFFLINE")
_DIS_HINT = ("or use the weight-free backend 'dis' (OpenCV DIS, CPU, no download; align3r infer: flow=dis, "
             "align3r eval: the flow setting, docs/reproducing.md)")


def downloads_allowed(download: bool | None = None) -> bool:
    """``download`` if given, else False when an offline variable (ALIGN3R_OFFLINE, HF_HUB_OFFLINE) is set."""
    if download is not None:
        return download
    return not any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on") for k in _OFFLINE_ENV)


def torch_hub_checkpoint_path(weights: WeightsEnum) -> Path:
    """Where torch hub caches (and looks for) the file of a torchvision weights enum member."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def build_raft(variant: str, weights: WeightsSpec = "DEFAULT", *, download: bool | None = None,
               progress: bool = True) -> nn.Module:
    """A torchvision RAFT (``"raft-large"`` or ``"raft-small"``) in eval mode on the CPU, weights loaded."""
    if variant not in RAFT_VARIANTS:
        raise ValueError(f"unknown RAFT variant {variant!r}; choose one of {sorted(RAFT_VARIANTS)}")
    builder, enum_type = RAFT_VARIANTS[variant]
    model = builder(weights=None)
    if weights is not None:
        state = _state_dict_for(variant, enum_type, weights, download=download, progress=progress)
        _load_strict(model, state, variant, source=str(weights))
    return model.train(False)  # inference mode


def _state_dict_for(variant: str, enum_type: type[WeightsEnum], weights: WeightsSpec, *,
                    download: bool | None, progress: bool) -> Mapping[str, Tensor]:
    if isinstance(weights, WeightsEnum):
        if not isinstance(weights, enum_type):
            raise CheckpointError(f"{weights} are weights for another network; {variant} takes "
                                  f"{enum_type.__name__} ({', '.join(enum_type.__members__)})")
        return _torchvision_state_dict(weights, download=download, progress=progress)
    if isinstance(weights, str) and weights in enum_type.__members__:
        return _torchvision_state_dict(enum_type[weights], download=download, progress=progress)
    path = Path(weights)
    if path.is_file():
        return read_raft_file(path)
    looks_like_path = isinstance(weights, os.PathLike) or path.suffix or os.sep in str(weights)
    if looks_like_path:
        raise CheckpointError(f"RAFT weights file {path} does not exist; pass an existing .pth file or one of "
                              f"{', '.join(enum_type.__members__)} (torchvision {enum_type.__name__})")
    raise CheckpointError(f"unknown RAFT weights {weights!r} for {variant}: pass a torchvision name "
                          f"({', '.join(enum_type.__members__)}), a local .pth file, or None for random weights")


def _torchvision_state_dict(weights: WeightsEnum, *, download: bool | None,
                            progress: bool) -> Mapping[str, Tensor]:
    cached = torch_hub_checkpoint_path(weights)
    if not cached.is_file() and not downloads_allowed(download):
        raise OfflineError(_missing_message(weights, cached, reason="downloads are disabled (offline)"))
    try:
        # torchvision's own loader: reads the hub cache, downloads (hash-checked) when missing.
        return weights.get_state_dict(progress=progress, check_hash=True, weights_only=True,
                                      map_location="cpu")
    except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
        raise OfflineError(_missing_message(weights, cached, reason=f"the download failed ({err})")) from err
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        if not cached.is_file():
            raise OfflineError(_missing_message(weights, cached, reason=f"the download failed ({err})")) from err
        raise CheckpointError(f"cannot read the cached RAFT weights {cached} ({err}); the file is damaged: "
                              f"delete it and run again, or download {weights.url} there by hand") from err


def _missing_message(weights: WeightsEnum, cached: Path, reason: str) -> str:
    return (f"RAFT weights {cached.name} are not on this machine and {reason}. Download {weights.url} "
            f"and save it as {cached} (torch hub's checkpoints folder; set TORCH_HOME to move it), "
            f"or pass a local copy as the RAFT weights (align3r infer: flow_weights=path/to/{cached.name}; "
            f"align3r eval: +settings.flow_weights=path/to/{cached.name}; Python: weights=...), {_DIS_HINT}.")


def read_raft_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """A torchvision RAFT state dict from a local file (bare, under ``state_dict``/``model``, or ``module.``-prefixed)."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise CheckpointError(f"RAFT weights file {path} does not exist") from err
    except Exception as err:  # the unpickler raises many types for foreign or damaged files
        raise CheckpointError(f"cannot read RAFT weights from {path}: {err}. Expected a torchvision RAFT "
                              "state dict saved with torch.save(model.state_dict(), path)") from err
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors (got {type(obj).__name__})")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _load_strict(model: nn.Module, state: Mapping[str, Tensor], variant: str, source: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong_shape:
        raise CheckpointError(_mismatch_message(variant, source, missing, unexpected, wrong_shape, state))
    model.load_state_dict(state)


def _mismatch_message(variant: str, source: str, missing: list[str], unexpected: list[str],
                      wrong_shape: list[str], state: Mapping[str, Tensor]) -> str:
    for other, (builder, _) in RAFT_VARIANTS.items():
        other_sd = builder(weights=None).state_dict()
        if other != variant and set(other_sd) == set(state) and \
                all(other_sd[k].shape == v.shape for k, v in state.items()):
            return f"the RAFT weights {source} are a {other} checkpoint, not {variant}: use backend '{other}'"
    parts = [f"the RAFT weights {source} do not fit torchvision's {variant}:"]
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
        if keys:
            parts.append(f"{len(keys)} {label} ({', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''});")
    parts.append("only torchvision RAFT state dicts are supported (the original princeton-vl RAFT and "
                 "SEA-RAFT files use other layouts)")
    return " ".join(parts)
