"""``manifest.json``: what was run on what, with which versions, how long it took, what was written.

The caller (the pipeline) supplies ``inputs`` (:func:`input_entries`, :func:`checkpoint_entry`),
``settings`` and ``timings``; the writer adds the format version, library versions, frames, depth
encoding and the list of files.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import importlib.metadata
import json
import math
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

CALLER_KEYS = ("inputs", "settings", "timings", "scale")
_VERSIONED = ("torch", "numpy", "opencv-python-headless", "trimesh", "av", "roma", "scipy", "transformers",
              "huggingface_hub", "safetensors")


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """``"sha256:<hex>"`` of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def describe_inputs(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """``[{"path", "bytes", "sha256"}]`` for input files; a folder lists its files (sorted)."""
    out = []
    for p in paths:
        p = Path(p).absolute()
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for f in files:
            out.append({"path": str(f), "bytes": f.stat().st_size, "sha256": file_sha256(f)})
    return out


def input_entries(source: str | os.PathLike, files: Sequence[str | os.PathLike],
                  prior_sources: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The ``inputs`` a run read, each ``{"role", "path", "bytes", "sha256"}``: the video ``source``
    or, when ``files`` (the frame files read) is not empty, every frame file; then every depth-prior
    file read (external priors) or ``{"role": "depth_prior_model", "source"}`` for a prior model.

    ``prior_sources``: per frame, what produced its depth prior (``DepthPrior.source``)."""
    video = [] if files else [source]
    entries = [{"role": "video", **d} for d in describe_inputs(video)]
    entries += [{"role": "frame", **d} for d in describe_inputs(files)]
    sources = list(dict.fromkeys(prior_sources))  # unique, in frame order
    prior_files = [s for s in sources if Path(s).is_file()]
    entries += [{"role": "depth_prior", **d} for d in describe_inputs(prior_files)]
    entries += [{"role": "depth_prior_model", "source": s} for s in sources if s not in prior_files]
    return entries


def checkpoint_entry(net, checkpoint: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``inputs`` entry of the network: where it was read from (``{"path", "kind"}`` of
    ``align3r.load_model(..., with_source=True)``; unknown for a network passed in) and a
    fingerprint of its weights (a checkpoint is GBs: not hashed whole)."""
    from align3r.fingerprint import module_fingerprint

    return {"role": "checkpoint", **(checkpoint or {}), "weights_fingerprint": module_fingerprint(net)}


@functools.lru_cache(maxsize=1)
def _library_versions() -> tuple[tuple[str, str], ...]:
    from align3r import __version__

    versions = {"align3r": __version__, "python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return tuple(versions.items())


def library_versions() -> dict[str, str]:
    """Versions of align3r, Python and the libraries that shape the outputs (absent ones skipped)."""
    return dict(_library_versions())  # metadata lookups are slow; versions do not change in-process


def caller_sections(manifest: Mapping | None) -> dict:
    """Validate the caller's manifest dict; input paths are hashed here.

    ``inputs`` may be a list of paths (hashed by :func:`describe_inputs`) or of ready dicts.
    """
    manifest = dict(manifest or {})
    unknown = set(manifest) - set(CALLER_KEYS)
    if unknown:
        raise ValueError(f"manifest keys {sorted(unknown)} are not accepted; use {list(CALLER_KEYS)}")
    inputs = manifest.get("inputs", [])
    if inputs and not all(isinstance(i, Mapping) for i in inputs):
        inputs = describe_inputs(inputs)
    sections = {"inputs": list(inputs), "settings": dict(manifest.get("settings", {})),
                "timings": dict(manifest.get("timings", {}))}
    if "scale" in manifest:  # the reconstruction's units (align3r.align.metric.apply_scale)
        sections["scale"] = dict(manifest["scale"])
    return sections


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def _jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path, os.PathLike)):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "tolist"):  # torch tensors
        return obj.tolist()
    return str(obj)


def _finite_only(obj):
    """JSON has no NaN/Infinity: write them as strings so the file stays standard JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite_only(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_only(v) for v in obj]
    return obj


def dumps(manifest: dict) -> str:
    """Standard JSON (no NaN/Infinity literals), indented, keys in insertion order."""
    plain = json.loads(json.dumps(manifest, default=_jsonable))
    return json.dumps(_finite_only(plain), indent=1, allow_nan=False) + "\n"
