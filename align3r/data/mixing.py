"""Dataset mixtures (``N @ dataset`` resampling, concatenation) and the torch-facing wrapper.

- :class:`ResizedPairs` — ``N @ ds``: each epoch draws a permutation of ``ds`` with seed
  ``epoch + 777`` and repeats it until it has ``N`` entries (the reference's ``ResizedDataset``).
- :class:`ConcatPairs` — ``ds1 + ds2 + …``; all parts must share their resolutions.
- :class:`PairSampleSet` — the ``torch.utils.data.Dataset`` the loaders use. Item
  ``(idx, resolution_idx)`` is built with ``numpy.random.default_rng([seed, epoch, idx])``:
  a sample depends only on (seed, epoch, position), never on the worker, the number of
  processes or where a run was resumed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from align3r.errors import InputError

EPOCH_SEED_OFFSET = 777


class ResizedPairs:
    """``size`` pairs per epoch drawn from ``dataset`` by a per-epoch permutation (seed epoch + 777)."""

    def __init__(self, size: int, dataset):
        if int(size) <= 0:
            raise InputError(f"a mixture size must be positive, got {size}")
        if len(dataset) == 0:
            raise InputError(f"cannot resample the empty dataset {dataset!r}")
        self.size = int(size)
        self.dataset = dataset
        self._mapping: np.ndarray | None = None

    @property
    def resolutions(self):
        return self.dataset.resolutions

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"{self.size} @ {self.dataset!r}"

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng(seed=epoch + EPOCH_SEED_OFFSET)
        perm = rng.permutation(len(self.dataset))
        repeats = 1 + (self.size - 1) // len(perm)
        self._mapping = np.concatenate([perm] * repeats)[: self.size]
        self.dataset.set_epoch(epoch)

    def get_pair(self, idx: int, resolution_idx: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        if self._mapping is None:
            raise RuntimeError("call set_epoch() before reading a resampled dataset")
        return self.dataset.get_pair(int(self._mapping[idx]), resolution_idx, rng)


class ConcatPairs:
    """Concatenation of pair datasets with identical resolution lists."""

    def __init__(self, datasets: list):
        if not datasets:
            raise InputError("a dataset mixture needs at least one dataset")
        first = list(datasets[0].resolutions)
        for ds in datasets[1:]:
            if list(ds.resolutions) != first:
                raise InputError(f"all datasets of a mixture must share their resolutions: {ds!r} has "
                                 f"{ds.resolutions}, expected {first}")
        self.datasets = list(datasets)
        self._ends = np.cumsum([len(ds) for ds in self.datasets])

    @property
    def resolutions(self):
        return self.datasets[0].resolutions

    def __len__(self) -> int:
        return int(self._ends[-1])

    def __repr__(self) -> str:
        return " + ".join(repr(ds) for ds in self.datasets)

    def set_epoch(self, epoch: int) -> None:
        for ds in self.datasets:
            ds.set_epoch(epoch)

    def get_pair(self, idx: int, resolution_idx: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        if not 0 <= idx < len(self):
            raise IndexError(f"pair {idx} out of range for a mixture of {len(self)}")
        part = int(np.searchsorted(self._ends, idx, side="right"))
        start = int(self._ends[part - 1]) if part else 0
        return self.datasets[part].get_pair(idx - start, resolution_idx, rng)


class PairSampleSet(torch.utils.data.Dataset):
    """Torch dataset over a pair mixture; items are ``(view1, view2)`` dicts (see ``views.make_view``).

    Args:
        pairs: a pair dataset or mixture. seed: base seed of the per-sample generators.
        fixed_epoch: if not None, always sample as in this epoch (test sets: the same subset and
            crops every epoch, so test losses are comparable across epochs).
    """

    def __init__(self, pairs, seed: int = 0, fixed_epoch: int | None = None):
        self.pairs = pairs
        self.seed = int(seed)
        self.fixed_epoch = fixed_epoch
        self.epoch = 0
        self.set_epoch(0)

    @property
    def resolutions(self):
        return self.pairs.resolutions

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        return f"PairSampleSet({self.pairs!r}, seed={self.seed})"

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch if self.fixed_epoch is None else self.fixed_epoch)
        self.pairs.set_epoch(self.epoch)

    def __getitem__(self, item) -> tuple[dict[str, Any], dict[str, Any]]:
        idx, resolution_idx = item if isinstance(item, tuple) else (item, 0)
        idx, resolution_idx = int(idx), int(resolution_idx)
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        views = self.pairs.get_pair(idx, resolution_idx, rng)
        for k, view in enumerate(views):
            view["idx"] = torch.tensor([idx, resolution_idx, k], dtype=torch.int64)
        return views[0], views[1]
