"""Read a reconstruction directory back: ``align3r.load_reconstruction(DIR)``.

Reads the lossless core (float32 ``.npy`` depth and confidence, mask and RGB PNGs, pose and
intrinsics arrays, manifest), so ``load_reconstruction(write_reconstruction(...))`` reproduces
the written :class:`~align3r.align.types.Reconstruction` exactly.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from align3r.align.types import Reconstruction
from align3r.errors import InputError
from align3r.export import layout
from align3r.export.images import read_png
from align3r.export.original import OriginalResolution


@dataclass
class SavedReconstruction:
    """A reconstruction directory in memory.

    - ``reconstruction``: the :class:`Reconstruction` (CPU float32 tensors, as written).
    - ``rgb``: (N, H, W, 3) uint8 frames at network resolution.
    - ``names``: N input frame names; ``stems``: the per-frame file stems.
    - ``timestamps``: (N,) float64 — seconds if ``timestamps_are_seconds``, else frame indices.
    - ``original``: the mapping to the original resolution (no frames / depth), or None.
    - ``manifest``: the parsed ``manifest.json``; ``path``: the directory.
    """

    path: Path
    reconstruction: Reconstruction
    rgb: np.ndarray
    names: list[str]
    stems: list[str]
    timestamps: np.ndarray
    timestamps_are_seconds: bool
    original: OriginalResolution | None
    manifest: dict

    @property
    def num_frames(self) -> int:
        return self.reconstruction.num_frames

    def file(self, rel: str) -> Path:
        return self.path / rel


def read_manifest(path: str | os.PathLike) -> dict:
    """The parsed manifest of an output directory (InputError if it is not one of ours)."""
    path = Path(path)
    manifest_path = path / layout.MANIFEST
    if not path.is_dir():
        raise InputError(f"{path} is not a directory; pass the output directory of `align3r infer`")
    if not manifest_path.is_file():
        raise InputError(f"{path} has no {layout.MANIFEST}: it is not an align3r output directory "
                         "(or its writing never finished); run `align3r infer` to create one")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{manifest_path} is unreadable ({exc}); re-run `align3r infer`") from exc
    if manifest.get("format") != layout.FORMAT_NAME:
        raise InputError(f"{manifest_path} is not an align3r reconstruction manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > layout.FORMAT_VERSION:
        raise InputError(f"{path} was written in output format version {version}, newer than this align3r "
                         f"understands ({layout.FORMAT_VERSION}); upgrade align3r (pip install -U align3r)")
    return manifest


def _load(path: Path, what: str, loader):
    if not path.is_file():
        raise InputError(f"{path} is missing ({what}); the output directory is incomplete — "
                         "re-run `align3r infer` (or restore the file)")
    try:
        return loader(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is unreadable ({what}: {exc}); re-run `align3r infer`") from exc


def _npy(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def load_reconstruction(path: str | os.PathLike) -> SavedReconstruction:
    """Load an output directory written by :func:`align3r.export.write_reconstruction`.

    Returns:
        :class:`SavedReconstruction` whose ``reconstruction`` equals the written one exactly
        (depth / confidence float32, poses, intrinsics, masks, loss history, frame ids).
    Raises:
        InputError: not an align3r output, written by a newer version, or files missing/corrupt.
    """
    path = Path(path).absolute()
    manifest = read_manifest(path)
    frames = manifest["frames"]
    stems = [f["stem"] for f in frames]
    n = len(stems)

    def stack(folder: str, ext: str, what: str, loader) -> np.ndarray:
        return np.stack([_load(path / layout.frame_file(folder, s, ext), what, loader) for s in stems]) if n else None

    depth = stack(layout.DEPTH_DIR, "npy", "depth", _npy)
    conf = stack(layout.CONFIDENCE_DIR, "npy", "confidence", _npy)
    mask = stack(layout.MASK_DIR, "png", "dynamic mask", read_png) > 127
    rgb = stack(layout.RGB_DIR, "png", "RGB frame", read_png)
    cam2world = _load(path / layout.CAM2WORLD, "camera poses", _npy)
    intrinsics = _load(path / layout.INTRINSICS_NPY, "intrinsics", _npy)
    losses = _load(path / layout.LOSS_HISTORY, "loss history", lambda p: dict(np.load(p, allow_pickle=False)))
    h, w = manifest["network_size_hw"]
    for name, arr, shape in (("depth", depth, (n, h, w)), ("confidence", conf, (n, h, w)),
                             ("dynamic mask", mask, (n, h, w)), ("RGB", rgb, (n, h, w, 3)),
                             ("cam2world", cam2world, (n, 4, 4)), ("intrinsics", intrinsics, (n, 3, 3))):
        if arr.shape != shape:
            raise InputError(f"{path}: {name} has shape {arr.shape}, the manifest says {shape}; "
                             "the directory was modified — re-run `align3r infer`")
    ids = [f["frame_id"] for f in frames]
    recon = Reconstruction(
        depth=torch.from_numpy(depth), cam2world=torch.from_numpy(cam2world),
        intrinsics=torch.from_numpy(intrinsics), conf=torch.from_numpy(conf),
        dynamic_mask=torch.from_numpy(mask), loss_history=losses.pop("total").tolist(),
        frame_ids=None if any(i is None for i in ids) else torch.tensor(ids, dtype=torch.int64),
        loss_terms={k.removeprefix("term_"): v.tolist() for k, v in losses.items()},
    )
    original = manifest.get("original")
    return SavedReconstruction(
        path=path, reconstruction=recon, rgb=rgb, names=[f["name"] for f in frames], stems=stems,
        timestamps=np.array([f["timestamp"] for f in frames], np.float64),
        timestamps_are_seconds=manifest.get("timestamps") == "seconds",
        original=OriginalResolution.from_json(original) if original else None, manifest=manifest,
    )
