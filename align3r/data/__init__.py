"""Training data: preparation of the raw sets, pair datasets, mixtures and samplers.

Typical use (what ``align3r train`` does)::

    pairs = build_mixture([{"name": "pointodyssey", "size": 12500, "root": "data/PointOdyssey_proc/train"}],
                          common={"resolution": [(512, 288), (512, 336), (512, 256)], "aug_crop": 16,
                                  "aug_focal": True, "color_jitter": True, "prior_name": "depthpro"})
    samples = PairSampleSet(pairs, seed=0)
    sampler = ResolutionBatchSampler(len(samples), batch_size=2, num_resolutions=3, world_size=W, rank=r)
    loader = DataLoader(samples, batch_sampler=sampler)   # items: (view1, view2) dicts of tensors
"""

from align3r.data.build import DATASETS, build_dataset, build_mixture
from align3r.data.datasets import (
    PairDataset,
    PointOdysseyPairs,
    ProcessedPairs,
    SceneFlowPairs,
    SintelPairs,
    SpringPairs,
    TartanAirPairs,
    VKitti2Pairs,
    parse_resolutions,
    window_pairs,
)
from align3r.data.mixing import ConcatPairs, PairSampleSet, ResizedPairs
from align3r.data.sampler import ResolutionBatchSampler, SequentialBatchSampler
from align3r.data.views import ViewAugmentation, make_view

__all__ = [
    "DATASETS",
    "ConcatPairs",
    "PairDataset",
    "PairSampleSet",
    "PointOdysseyPairs",
    "ProcessedPairs",
    "ResizedPairs",
    "ResolutionBatchSampler",
    "SceneFlowPairs",
    "SequentialBatchSampler",
    "SintelPairs",
    "SpringPairs",
    "TartanAirPairs",
    "VKitti2Pairs",
    "ViewAugmentation",
    "build_dataset",
    "build_mixture",
    "make_view",
    "parse_resolutions",
    "window_pairs",
]
