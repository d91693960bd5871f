"""Finding and loading Hugging Face ``transformers`` depth models (Hub id or folder), with clear errors.

A model is named either by a Hub id (``"apple/DepthPro-hf"``, resolved through the local
Hugging Face cache or the Hub) or by a local folder holding ``config.json``, the weights and
``preprocessor_config.json`` (what ``save_pretrained`` writes). Resolution is cheap (at most
``config.json`` is fetched) and yields an *identity* string that pins the exact weights, so the
prior cache can be checked without loading a multi-GB model.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from align3r.errors import CheckpointError, OfflineError

_TRUE = {"1", "on", "yes", "true"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_SAMPLE_BYTES = 1 << 16  # bytes read per sampled chunk of a weight file
_SAMPLES = 16  # evenly spaced chunks per weight file (plus head and tail)


def hub_offline() -> bool:
    """Whether the Hub must not be contacted (read at call time, not import time)."""
    return any(os.environ.get(k, "").strip().lower() in _TRUE for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's files are and what exactly they are.

    - ``location``: the Hub id or the local folder to hand to ``from_pretrained``.
    - ``revision``: the commit hash for Hub models (None for folders).
    - ``identity``: ``"<hub id>@<commit>"`` or ``"folder:<fingerprint>"``.
    """

    location: str
    revision: str | None
    identity: str

    @property
    def is_local(self) -> bool:
        return self.revision is None


def resolve_model(model: str, revision: str | None = None, cache_dir: str | Path | None = None,
                  local_files_only: bool | None = None) -> ResolvedModel:
    """Resolve a Hub id or a local folder to a :class:`ResolvedModel` without loading weights.

    Raises:
        OfflineError: a Hub id that is not in the local cache while offline / without network.
        CheckpointError: no such folder or repository, or a folder without ``config.json``.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CheckpointError(f"model folder {path} has no config.json; it must be a folder written by "
                                  "save_pretrained (config.json, model.safetensors, preprocessor_config.json)")
        return ResolvedModel(str(path), None, f"folder:{folder_fingerprint(path)}")
    if path.exists():
        raise CheckpointError(f"model {model!r} is a file, not a folder; give a Hugging Face Hub id "
                              "(e.g. apple/DepthPro-hf) or a folder written by save_pretrained")
    if _looks_like_a_path(model):
        raise CheckpointError(f"no such folder: {model} (the model folder must hold what save_pretrained writes; "
                              "or give a Hugging Face Hub id such as apple/DepthPro-hf)")
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    offline = hub_offline() if local_files_only is None else local_files_only
    try:
        config_path = hf_hub_download(model, "config.json", revision=revision, cache_dir=cache_dir,
                                      local_files_only=offline)
    except (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled) as exc:
        raise OfflineError(
            f"the weights of {model!r} are not in the local Hugging Face cache and the Hub cannot be reached"
            f"{' (HF_HUB_OFFLINE is set)' if offline else ''}, and there is no folder {model!r} here. "
            f"If it is a Hub id, on a machine with internet run `hf download {model}` and copy the cache "
            f"into {hub_cache_path(cache_dir)}; else pass a local folder written by save_pretrained") from exc
    except hf_errors.HFValidationError as exc:
        raise CheckpointError(f"{model!r} is neither an existing folder nor a valid Hugging Face Hub id") from exc
    except (hf_errors.RepositoryNotFoundError, hf_errors.RevisionNotFoundError,
            hf_errors.EntryNotFoundError) as exc:
        raise CheckpointError(f"{model!r} is not an existing folder, and cannot be found"
                              f"{f' at revision {revision!r}' if revision else ''} on the Hub: {exc}") from exc
    commit = Path(config_path).parent.name  # .../snapshots/<commit>/config.json
    return ResolvedModel(model, commit, f"{model}@{commit}")


def _looks_like_a_path(model: str) -> bool:
    """A name no Hub id can have: starts with ., / or ~, has a backslash, more than one /, or a
    weight file's suffix (a Hub id is ``name`` or ``owner/name``)."""
    return (model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1
            or Path(model).suffix in _WEIGHT_SUFFIXES)


def hub_cache_path(cache_dir: str | Path | None = None) -> str:
    """The Hugging Face cache folder in use: ``cache_dir``, else ``$HF_HUB_CACHE`` (or its default)."""
    if cache_dir is not None:
        return str(cache_dir)
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def folder_fingerprint(folder: Path) -> str:
    """Content fingerprint of a saved model folder: the JSON configs in full plus, for every
    weight file, its size and sampled chunks (head, tail, 16 evenly spaced). Independent of
    paths and timestamps; reads ~1 MiB per weight file, so it is instant even for GB files."""
    digest = hashlib.blake2b(digest_size=16)
    for file in sorted(folder.iterdir()):
        if file.suffix == ".json" and file.is_file():
            digest.update(file.name.encode() + b"\0" + file.read_bytes())
        elif file.suffix in _WEIGHT_SUFFIXES and file.is_file():
            size = file.stat().st_size
            digest.update(f"{file.name}\0{size}\0".encode())
            offsets = {0, max(size - _SAMPLE_BYTES, 0)}
            offsets.update(size * k // (_SAMPLES + 1) for k in range(1, _SAMPLES + 1))
            with file.open("rb") as fh:
                for offset in sorted(offsets):
                    fh.seek(offset)
                    digest.update(fh.read(_SAMPLE_BYTES))
    return digest.hexdigest()


def weights_fingerprint(model: torch.nn.Module, samples: int = 256) -> str:
    """Fingerprint of a model's weights in memory: names, shapes, dtypes and, per tensor, its
    first and last ``samples`` values and its sum. Instant even for a billion parameters."""
    digest = hashlib.blake2b(digest_size=16)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            flat = tensor.detach().reshape(-1)
            digest.update(f"{name}\0{tuple(tensor.shape)}\0{tensor.dtype}\0".encode())
            if flat.numel():
                head_tail = torch.cat([flat[:samples], flat[-samples:]]).float().cpu()
                digest.update(head_tail.numpy().tobytes())
                digest.update(np.float64(flat.double().sum().item()).tobytes())
    return digest.hexdigest()


def load_pretrained(model_class, resolved: ResolvedModel, *, model_type: str, dtype: torch.dtype,
                    device: torch.device, cache_dir: str | Path | None = None,
                    local_files_only: bool | None = None) -> torch.nn.Module:
    """``model_class.from_pretrained`` in eval mode on ``device`` in ``dtype``, errors made clear.

    The config is read first and must be of ``model_type`` (e.g. "depth_pro"), so a wrong
    checkpoint fails with a one-line message before any weight is read."""
    from transformers import AutoConfig

    only_local = (hub_offline() if local_files_only is None else local_files_only) or resolved.is_local
    where = dict(revision=resolved.revision, cache_dir=cache_dir, local_files_only=only_local)
    try:
        config = AutoConfig.from_pretrained(resolved.location, **where)
    except OSError as exc:
        raise _load_error(resolved, "config.json", exc) from exc
    except ValueError as exc:  # unknown or inconsistent model_type
        raise CheckpointError(f"{resolved.location}: unusable config.json: {exc}") from exc
    if config.model_type != model_type:
        raise CheckpointError(f"{resolved.location} holds a {config.model_type!r} model, not {model_type!r}")
    try:
        model = model_class.from_pretrained(resolved.location, config=config, dtype=dtype, **where)
    except OSError as exc:
        raise _load_error(resolved, "weights", exc) from exc
    return model.to(device).eval()


def load_processor(resolved: ResolvedModel, *, cache_dir: str | Path | None = None,
                   local_files_only: bool | None = None, **kwargs):
    """The model's image processor (``AutoImageProcessor``) from ``preprocessor_config.json``."""
    from transformers import AutoImageProcessor

    offline = hub_offline() if local_files_only is None else local_files_only
    try:
        return AutoImageProcessor.from_pretrained(resolved.location, revision=resolved.revision, cache_dir=cache_dir,
                                                  local_files_only=offline or resolved.is_local, **kwargs)
    except OSError as exc:
        raise _load_error(resolved, "preprocessor_config.json", exc) from exc


def _load_error(resolved: ResolvedModel, what: str, exc: Exception) -> CheckpointError:
    if resolved.is_local:
        return CheckpointError(f"cannot load the {what} from {resolved.location}: {exc}")
    return OfflineError(f"cannot load the {what} of {resolved.location}@{resolved.revision} from the local "
                        f"Hugging Face cache or the Hub: {exc}. On a machine with internet run "
                        f"`hf download {resolved.location}`")
