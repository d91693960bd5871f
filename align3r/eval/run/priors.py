"""Depth priors of a benchmark sequence: the official cache files, or computed by the prior model.

The official evaluation reads one cached prior per frame at a dataset-specific path
(``Sequence.prior_path``, official ``dust3r/utils/image_pose.py``,
``load_images``, and ``tool/depth_test.py``, ``load_images_my``): Depth Pro caches hold metric depth and
``focallength_px``, Depth Anything caches hold relative disparity (no focal: the point map uses
200 px, which cancels). :class:`CacheFilesPrior` reads exactly those files, one per frame, in the
protocol's order. When they are missing the prior model computes the priors instead (cached under
the results folder, keyed by content and model).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from align3r.errors import CheckpointError, InputError
from align3r.eval.datasets.base import OFFICIAL_CACHE_PRIORS
from align3r.priors.base import PriorSource, check_image
from align3r.priors.external import check_fits, fill_invalid, read_depth_file
from align3r.priors.official_cache import OFFICIAL_KINDS
from align3r.priors.types import DepthPrior


class CacheFilesPrior(PriorSource):
    """One given prior file per frame (``.npz`` with ``depth`` and optionally ``focallength_px``),
    returned at the file's own resolution (the frame's aspect ratio is checked): the views bring it
    to the frame as ``make_views(prior_resize="auto")`` decides, the official way where that is
    well-defined (``docs/priors.md``).

    Args:
        paths: N files, frame order.
        kind: ``"depth"`` or ``"disparity"``.
    """

    name = "official-cache"
    cacheable = False

    def __init__(self, paths: Sequence[Path], kind: str) -> None:
        if kind not in ("depth", "disparity"):
            raise InputError(f"kind must be 'depth' or 'disparity', got {kind!r}")
        self.paths = [Path(p) for p in paths]
        self.kind = kind

    @property
    def identity(self) -> str:
        return f"official-cache|{self.kind}|{self.paths[0].parent if self.paths else ''}"

    def predict_iter(self, images, focal_px=None, frame_names=None, frame_indices=None) -> Iterator[DepthPrior]:
        if len(images) != len(self.paths):
            raise InputError(f"{len(self.paths)} prior files for {len(images)} frames")
        for i, (image, path) in enumerate(zip(images, self.paths)):
            frame_hw = check_image(image, i).shape[:2]
            depth, focal = read_depth_file(path)
            depth = fill_invalid(depth, self.kind, path)
            check_fits(depth.shape, frame_hw, path)  # at its own size: make_views(prior_resize=...) decides
            yield DepthPrior(depth=np.ascontiguousarray(depth, dtype=np.float32), focal_px=focal,
                             kind=self.kind, source=str(path))


def official_prior_files(seq, prior: str, count: int) -> list[Path]:
    """The official cache path of each of the first ``count`` frames of ``seq``."""
    if prior not in OFFICIAL_CACHE_PRIORS:
        raise InputError(f"official prior caches exist for {', '.join(OFFICIAL_CACHE_PRIORS)}, not {prior!r}")
    return [seq.prior_path(i, prior) for i in range(count)]


def choose_prior_source(seq, prior: str, count: int, policy: str) -> str:
    """``"official-cache"`` or ``"computed"``: where the priors of ``seq`` will come from.

    ``policy``: ``"official"`` (every file must exist, else ``InputError`` naming the first
    missing one and how to make them), ``"compute"``, or ``"auto"`` (official when every file
    exists).
    """
    if policy == "compute":
        return "computed"
    files = official_prior_files(seq, prior, count)
    missing = [p for p in files if not p.is_file()]
    if not missing:
        return "official-cache"
    if policy == "official":
        raise InputError(f"{len(missing)} official {prior} prior file(s) missing for {seq.dataset}/{seq.name}, "
                         f"e.g. {missing[0]}. Put the official cache files there (the official "
                         "third_party/ml-depth-pro/infer.sh layout), or pass priors=auto (or compute) to compute "
                         "them with the prior model during the evaluation; `align3r prior` computes the same "
                         "priors for a folder of frames")
    return "computed"


def load_sequence_priors(seq, prior: str, count: int, source: str, images: Sequence[np.ndarray],
                         *, model_source=None, focal_px=None) -> list[DepthPrior]:
    """The N priors of ``seq``'s first ``count`` frames.

    Args:
        source: from :func:`choose_prior_source`.
        images: the N decoded frames (uint8 RGB, original resolution).
        model_source: the ``PriorSource`` computing priors when ``source == "computed"``.
        focal_px: N EXIF focals (or None) for the model.
    """
    if source == "official-cache":
        return CacheFilesPrior(official_prior_files(seq, prior, count), OFFICIAL_KINDS[prior]).predict(images)
    if model_source is None:
        raise InputError(f"no prior model to compute the {prior} priors of {seq.dataset}/{seq.name}")
    names = [str(p) for p in seq.frame_paths[:count]]
    try:
        return model_source.predict(images, focal_px=focal_px, frame_names=names)
    except CheckpointError as exc:  # the model's weights are missing or of another kind: say why it is needed
        raise type(exc)(f"{exc}. {computed_prior_reason(seq, prior, count)}") from exc


def computed_prior_reason(seq, prior: str, count: int) -> str:
    """Why the prior model runs for ``seq`` and how to give it weights or avoid it (for errors)."""
    files = official_prior_files(seq, prior, count) if prior in OFFICIAL_CACHE_PRIORS else []
    missing = next((p for p in files if not p.is_file()), None)
    why = (f"the official {prior} cache file {missing} is missing (priors=auto computes the priors then)"
           if missing is not None else "priors=compute was given")
    return (f"The {prior} prior model computes the priors of {seq.dataset}/{seq.name} because {why}. Give its "
            f"weights with prior_models.{prior}=<Hub id or folder> (or prior_model=<...> when the run uses one prior "
            f"kind only), or put the official cache files in place (priors=official then requires them)")
