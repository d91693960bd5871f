"""Build :class:`PairPredictions` from the dictionaries the official ``inference()`` returns.

Users of the official code keep such outputs on disk (``view1, view2, pred1, pred2``); the
fixtures are stored in that form too. Arrays may be numpy or torch.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from align3r.align.types import PairPredictions
from align3r.errors import InputError


def _tensor(value, name: str) -> Tensor:
    if isinstance(value, (list, tuple)):
        shapes = {tuple(np.shape(v)) for v in value}
        if len(shapes) > 1:
            raise InputError(f"{name} holds maps of different sizes {sorted(shapes)}; all frames must share "
                             "one network resolution (resize the frames to one size before inference)")
        value = np.stack([np.asarray(v) for v in value]) if not isinstance(value[0], Tensor) else torch.stack(value)
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, Tensor):
        raise InputError(f"{name} must be an array or tensor, got {type(value).__name__}")
    return value.detach().float()


def _indices(view: Mapping, name: str) -> Tensor:
    if "idx" not in view:
        raise InputError(f"{name} has no 'idx' entry (the frame index of every edge); keys: {sorted(view)}")
    idx = view["idx"]
    idx = torch.as_tensor(np.asarray(idx.cpu() if isinstance(idx, Tensor) else idx), dtype=torch.int64)
    return idx.reshape(-1)


def _require(d: Mapping, key: str, name: str):
    if key not in d:
        raise InputError(f"{name} has no {key!r} entry; keys: {sorted(d)}")
    return d[key]


def from_official_output(view1: Mapping, view2: Mapping, pred1: Mapping, pred2: Mapping) -> PairPredictions:
    """Official ``inference()`` output -> :class:`PairPredictions`.

    Reads ``view1['idx']``, ``view2['idx']`` (frame indices of each edge), ``pred1['pts3d']``,
    ``pred1['conf']``, ``pred2['pts3d_in_other_view']`` and ``pred2['conf']``. Frame indices must
    cover ``0..N-1`` (the official aligner requires the same).

    Raises:
        InputError: missing keys, inconsistent shapes, frames no edge refers to, non-finite values.
    """
    i = _indices(view1, "view1")
    j = _indices(view2, "view2")
    if i.shape != j.shape:
        raise InputError(f"view1 has {i.numel()} edges but view2 has {j.numel()}")
    pts_i = _tensor(_require(pred1, "pts3d", "pred1"), "pred1['pts3d']")
    pts_j = _tensor(_require(pred2, "pts3d_in_other_view", "pred2"), "pred2['pts3d_in_other_view']")
    conf_i = _tensor(_require(pred1, "conf", "pred1"), "pred1['conf']")
    conf_j = _tensor(_require(pred2, "conf", "pred2"), "pred2['conf']")
    if pts_i.dim() != 4 or pts_i.shape[0] != i.numel():
        raise InputError(f"pred1['pts3d'] must be (E, H, W, 3) with E = {i.numel()} edges, got {tuple(pts_i.shape)}")
    if i.numel() == 0:
        raise InputError("the prediction holds no edges")
    frames = torch.unique(torch.cat((i, j)))
    num_frames = int(frames.max()) + 1
    if int(frames.min()) < 0 or frames.numel() != num_frames:
        missing = sorted(set(range(num_frames)) - set(frames.tolist()))
        raise InputError(f"frame indices must cover 0..{num_frames - 1}; frames {missing[:10]} appear in no edge "
                         "(renumber the frames or add pairs that contain them)")
    try:
        preds = PairPredictions(edges=torch.stack((i, j), dim=1), pts3d_i=pts_i, pts3d_j=pts_j, conf_i=conf_i,
                                conf_j=conf_j, num_frames=num_frames)
    except ValueError as err:
        raise InputError(f"inconsistent official output: {err}") from err
    return preds
