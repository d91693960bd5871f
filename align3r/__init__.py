"""align3r: Align3R (CVPR 2025) - aligned monocular depth estimation for dynamic videos.

Public entry points are imported lazily so ``import align3r`` stays cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "load_model": "align3r.model",
    "Align3RNet": "align3r.model",
    "PairGraph": "align3r.pairs",
    "make_graph": "align3r.pairs",
    "make_grouped_graph": "align3r.pairs",
    "read_frames": "align3r.io",
    "iter_frames": "align3r.io",
    "make_views": "align3r.io",
    "PairPredictions": "align3r.align.types",
    "Reconstruction": "align3r.align.types",
    "reconstruct": "align3r.pipeline",
    "reconstruct_many": "align3r.many",
    "load_reconstruction": "align3r.export",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'align3r' has no attribute {name!r}")
