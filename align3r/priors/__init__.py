"""Monocular depth priors: Depth Pro and Depth Anything V2 (via ``transformers``), depth the user
already has (folders of maps, the official caches), and a disk cache in front of any of them.

Every source is a :class:`PriorSource` with ``predict(images, focal_px=None, frame_names=None)
-> list[DepthPrior]`` (and the streaming ``predict_iter``); build one by name with
:func:`load_prior`. Submodules load lazily so importing this package does not import
``transformers``.
"""

from __future__ import annotations

import importlib

from align3r.priors.types import DepthPrior

_LAZY = {
    "PriorSource": "align3r.priors.base",
    "load_prior": "align3r.priors.registry",
    "PRIOR_NAME_FORMS": "align3r.priors.registry",
    "parse_prior_name": "align3r.priors.registry",
    "load_prior_source": "align3r.priors.registry",
    "mono_depth_in_view": "align3r.priors.mono_depth",
    "prior_is_metric": "align3r.priors.registry",
    "DepthProPrior": "align3r.priors.depth_pro",
    "DEPTH_PRO_HUB_ID": "align3r.priors.depth_pro",
    "DepthAnythingPrior": "align3r.priors.depth_anything",
    "DEPTH_ANYTHING_HUB_IDS": "align3r.priors.depth_anything",
    "FolderPrior": "align3r.priors.external",
    "OfficialCachePrior": "align3r.priors.external",
    "read_depth_file": "align3r.priors.external",
    "official_cache_path": "align3r.priors.official_cache",
    "write_official_cache": "align3r.priors.official_cache",
    "PriorCache": "align3r.priors.cache",
    "user_prior_cache_dir": "align3r.priors.cache",
}

__all__ = ["DepthPrior", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'align3r.priors' has no attribute {name!r}")
