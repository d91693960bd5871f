"""PointOdyssey val and FlyingThings3D TEST: raw downloads -> the processed layout.

The processing itself (principal-point crop, rescale to a 384 short side, ``_rgb.jpg`` /
``_depth.pfm`` / ``_mask.png`` / ``_metadata.npz``; official
``datasets_preprocess/preprocess_PointOdyssey.py`` and ``preprocess_Flythings3D.py``) is the training-data
preparation of :mod:`align3r.data.prepare`; the evaluation only needs its test splits, so these
functions select them (and, for PointOdyssey, optionally just the first frames the depth
benchmark reads) and delegate.
"""

from __future__ import annotations

from pathlib import Path

from align3r.errors import InputError


def _select(sequences, names, split: str, dataset: str):
    if names is None:
        return sequences
    wanted = {f"{split}/{n}" for n in names}
    chosen = [s for s in sequences if s.name in wanted]
    missing = sorted(wanted - {s.name for s in chosen})
    if missing:
        raise InputError(f"{dataset}: raw sequence(s) {', '.join(missing)} not found.")
    return chosen


def prepare_pointodyssey(raw_root: str | Path, out_root: str | Path, *, split: str = "val",
                         sequences=None, max_frames: int | None = None, progress: bool = False) -> int:
    """Process ``<raw_root>/<split>/<seq>/`` into ``<out_root>/<split>/<seq>/``.

    Args:
        sequences: names; None for every sequence of the split.
        max_frames: process only the first frames of each sequence (the depth benchmark reads
            110); None for all, as the official script.
    Returns:
        The number of frames written (frames already complete are skipped).
    """
    from align3r.data.prepare import prepare_sequences
    from align3r.data.prepare.pointodyssey import raw_sequences

    chosen = _select(raw_sequences(raw_root, splits=(split,)), sequences, split, "PointOdyssey")
    if max_frames is not None:
        for seq in chosen:
            seq.frames = seq.frames[:max_frames]
    return prepare_sequences(chosen, out_root, progress=progress)


def prepare_flyingthings3d(raw_root: str | Path, out_root: str | Path, *, split: str = "TEST",
                           progress: bool = False) -> int:
    """Process ``<raw_root>/frames_finalpass/<split>/...`` into ``<out_root>/<split>/{A,B,C}/<seq>/{left,right}``.

    Returns:
        The number of frames written.
    """
    from align3r.data.prepare import prepare_sequences
    from align3r.data.prepare.flyingthings3d import raw_sequences

    return prepare_sequences(raw_sequences(raw_root, splits=(split,)), out_root, progress=progress)
