"""Build pair mixtures from plain configuration (the entries of a Hydra dataset-mixture YAML).

A mixture is a list of entries ``{name: <dataset>, size: <pairs per epoch>, root: ..., **options}``;
options common to all entries (resolution, augmentation, prior) are given once in ``common``
and an entry may override them. No string is ever evaluated: ``name`` is looked up in
:data:`DATASETS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from align3r.data.datasets import (
    PointOdysseyPairs,
    ProcessedPairs,
    SceneFlowPairs,
    SintelPairs,
    SpringPairs,
    TartanAirPairs,
    VKitti2Pairs,
)
from align3r.data.mixing import ConcatPairs, ResizedPairs
from align3r.errors import InputError

DATASETS = {
    "pointodyssey": PointOdysseyPairs,
    "tartanair": TartanAirPairs,
    "spring": SpringPairs,
    "sceneflow": SceneFlowPairs,
    "vkitti2": VKitti2Pairs,
    "sintel": SintelPairs,
    "processed": ProcessedPairs,
}


def build_dataset(entry: Mapping[str, Any], common: Mapping[str, Any] | None = None):
    """One entry → a pair dataset, resampled to ``size`` pairs per epoch when ``size`` is given."""
    options = {**(common or {}), **entry}
    name = options.pop("name", None)
    size = options.pop("size", None)
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r} in the mixture; known: {sorted(DATASETS)}")
    if "root" not in options:
        raise InputError(f"dataset {name!r} needs a 'root' folder")
    try:
        dataset = DATASETS[name](**options)
    except TypeError as exc:  # an option the class does not take
        raise InputError(f"dataset {name!r}: {exc}") from exc
    return ResizedPairs(int(size), dataset) if size is not None else dataset


def build_mixture(entries: Sequence[Mapping[str, Any]], common: Mapping[str, Any] | None = None):
    """Several entries → their concatenation (a single entry is returned as is)."""
    if not entries:
        raise InputError("the dataset mixture is empty")
    datasets = [build_dataset(entry, common) for entry in entries]
    return datasets[0] if len(datasets) == 1 else ConcatPairs(datasets)
