"""The released checkpoints by short name, and where to find them on this machine or the Hub.

Resolution order for a short name (``resolve_checkpoint``):

1. a local file or folder: ``<dir>/<official .pth name>`` or ``<dir>/<repo name>/`` (a folder with
   ``config.json`` + ``model.safetensors``) for ``<dir>`` in ``$ALIGN3R_CHECKPOINTS``,
   ``./checkpoints`` and the source tree's ``checkpoints/``;
2. the Hugging Face Hub cache (``$HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``);
3. a download from the Hub, unless ``HF_HUB_OFFLINE`` is set.

Offline and missing, ``OfflineError`` says which repo / file to fetch and where to put it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from align3r.errors import CheckpointError, OfflineError

HUB_CONFIG = "config.json"
HUB_WEIGHTS = "model.safetensors"
SOURCE_TREE_CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"


@dataclass(frozen=True)
class ReleasedCheckpoint:
    """One released network: its Hub repo (``config.json`` + ``model.safetensors``), the official
    ``.pth`` file name users download by hand, whether it has the Align3R prior branch, and the
    depth prior it was trained with (``"none"`` without a prior branch; ``prior="auto"`` picks it,
    ``align3r.priors.compatibility``)."""

    name: str
    repo_id: str
    filename: str
    with_prior: bool
    description: str
    download_hint: str
    prior: str = "none"

    @property
    def repo_name(self) -> str:
        return self.repo_id.split("/", 1)[1]


REGISTRY: dict[str, ReleasedCheckpoint] = {c.name: c for c in (
    ReleasedCheckpoint(
        "align3r-depthpro", "cyun9286/Align3R_DepthPro_ViTLarge_BaseDecoder_512_dpt", "align3r_depthpro.pth",
        True, "Align3R fine-tuned with Depth Pro priors (paper's main model), 512 DPT",
        "Hub repo, or the Google Drive link in the Align3R README (jiah-cloud/Align3R)", prior="depthpro"),
    ReleasedCheckpoint(
        "align3r-depthanything", "cyun9286/Align3R_DepthAnythingV2_ViTLarge_BaseDecoder_512_dpt",
        "align3r_depthanything.pth", True, "Align3R fine-tuned with Depth Anything V2 priors, 512 DPT",
        "Hub repo, or the Google Drive link in the Align3R README (jiah-cloud/Align3R)", prior="depthanything"),
    ReleasedCheckpoint(
        "dust3r-512-dpt", "naver/DUSt3R_ViTLarge_BaseDecoder_512_dpt", "DUSt3R_ViTLarge_BaseDecoder_512_dpt.pth",
        False, "DUSt3R 512 DPT (Align3R's initialisation)",
        "https://download.europe.naverlabs.com/ComputerVision/DUSt3R/DUSt3R_ViTLarge_BaseDecoder_512_dpt.pth"),
    ReleasedCheckpoint(
        "dust3r-224-linear", "naver/DUSt3R_ViTLarge_BaseDecoder_224_linear",
        "DUSt3R_ViTLarge_BaseDecoder_224_linear.pth", False, "DUSt3R 224 with the linear head",
        "https://download.europe.naverlabs.com/ComputerVision/DUSt3R/DUSt3R_ViTLarge_BaseDecoder_224_linear.pth"),
    ReleasedCheckpoint(
        "monst3r", "Junyi42/MonST3R_PO-TA-S-W_ViTLarge_BaseDecoder_512_dpt",
        "MonST3R_PO-TA-S-W_ViTLarge_BaseDecoder_512_dpt.pth", False, "MonST3R (DUSt3R fine-tuned on dynamic scenes)",
        "Hub repo, or the Google Drive link in the MonST3R README (Junyi42/monst3r)"),
)}


def released(name: str) -> ReleasedCheckpoint:
    try:
        return REGISTRY[name]
    except KeyError:
        raise CheckpointError(f"unknown checkpoint name {name!r}; released ones: {sorted(REGISTRY)}") from None


def is_offline() -> bool:
    """``HF_HUB_OFFLINE`` read now (huggingface_hub reads it only once, at import)."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE")
    if flag is not None:
        return flag.strip().lower() in ("1", "true", "yes", "on")
    return bool(constants.HF_HUB_OFFLINE)


def hub_cache_dir() -> str | None:
    """``HF_HUB_CACHE`` (or ``HF_HOME/hub``) read now; None lets huggingface_hub decide."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def local_dirs() -> list[Path]:
    """Folders searched for checkpoint files, in order."""
    dirs = []
    if os.environ.get("ALIGN3R_CHECKPOINTS"):
        dirs.append(Path(os.environ["ALIGN3R_CHECKPOINTS"]).expanduser())
    dirs.append(Path.cwd() / "checkpoints")
    dirs.append(SOURCE_TREE_CHECKPOINTS)
    unique = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def find_local(entry: ReleasedCheckpoint) -> Path | None:
    """The first local copy of a released checkpoint (a ``.pth`` file or a Hub-layout folder)."""
    for directory in local_dirs():
        if (directory / entry.filename).is_file():
            return directory / entry.filename
        folder = directory / entry.repo_name
        if (folder / HUB_CONFIG).is_file() and (folder / HUB_WEIGHTS).is_file():
            return folder
    return None


def find_in_hub_cache(repo_id: str) -> Path | None:
    """The cached snapshot folder of ``repo_id`` holding both Hub files, or None."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        config = hf_hub_download(repo_id, HUB_CONFIG, cache_dir=hub_cache_dir(), local_files_only=True)
        weights = hf_hub_download(repo_id, HUB_WEIGHTS, cache_dir=hub_cache_dir(), local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None
    if Path(config).parent != Path(weights).parent:
        return None
    return Path(config).parent


def _missing_message(repo_id: str, entry: ReleasedCheckpoint | None) -> str:
    places = [f"'{d}'" for d in local_dirs()[:2]]
    local = (f"put the official '{entry.filename}' ({entry.download_hint}) or a folder '{entry.repo_name}/' "
             f"with {HUB_CONFIG} + {HUB_WEIGHTS} into {' or '.join(places)} (set ALIGN3R_CHECKPOINTS to use "
             f"another folder), or " if entry else "")
    return (f"{local}download {HUB_CONFIG} and {HUB_WEIGHTS} of the Hub repo '{repo_id}' into the Hugging Face "
            f"cache (HF_HUB_CACHE={hub_cache_dir() or '~/.cache/huggingface/hub'}), e.g. "
            f"`hf download {repo_id}` on a machine with internet access")


def download_from_hub(repo_id: str, entry: ReleasedCheckpoint | None = None) -> Path:
    """The Hub snapshot folder of ``repo_id``: from the cache, else downloaded (unless offline)."""
    cached = find_in_hub_cache(repo_id)
    if cached is not None:
        return cached
    if is_offline():
        raise OfflineError(f"checkpoint '{repo_id}' is not available offline (HF_HUB_OFFLINE is set): "
                           + _missing_message(repo_id, entry))
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        config = hf_hub_download(repo_id, HUB_CONFIG, cache_dir=hub_cache_dir())
        hf_hub_download(repo_id, HUB_WEIGHTS, cache_dir=hub_cache_dir())
    except RepositoryNotFoundError:
        raise CheckpointError(f"no Hub repo '{repo_id}' (or it is private): check the name") from None
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise OfflineError(f"could not download '{repo_id}' ({type(exc).__name__}: {exc}); "
                           + _missing_message(repo_id, entry)) from None
    return Path(config).parent


def resolve_checkpoint(name: str) -> Path:
    """A released checkpoint's local ``.pth`` file or Hub-layout folder (see the module docstring)."""
    entry = released(name)
    return find_local(entry) or download_from_hub(entry.repo_id, entry)
