"""Priors for many frames written as official cache files: one job per frame, resumable.

``align3r prior`` builds the jobs of a video / image folder (:func:`frame_jobs`) or of a processed
training set (:func:`dataset_jobs`) and runs them with :func:`write_prior_files`: frames are decoded
and predicted :data:`CHUNK` at a time, each result written as ``<stem>_pred_depth_<name>.npz``
(``align3r.priors.official_cache``) as soon as it is ready; a frame whose file is complete is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm.auto import tqdm

from align3r.errors import InputError
from align3r.priors.official_cache import write_official_cache

CHUNK = 16  # frames decoded and predicted together: bounds memory on long videos
logger = logging.getLogger(__name__)


def write_prior_files(prior, jobs: Iterable[PriorJob], *, total: int | None = None, overwrite: bool = False,
                      desc: str = "prior") -> tuple[int, int]:
    """Compute and write the prior of every job without a complete file (all with ``overwrite``),
    :data:`CHUNK` frames at a time, one progress step per frame. Returns (written, kept)."""
    written = kept = 0
    with tqdm(total=total, desc=desc, unit="frame") as bar:
        for chunk in chunks(jobs, CHUNK):
            todo = [job for job in chunk if overwrite or not job.done()]
            kept += len(chunk) - len(todo)
            if len(chunk) > len(todo):
                bar.update(len(chunk) - len(todo))
            if todo:
                images = [job.image() for job in todo]  # decodes, and reads the EXIF focal
                results = prior.predict_iter(images, [job.focal_px for job in todo], [job.name for job in todo])
                for job, result in zip(todo, results):  # one frame at a time, as the model's batches finish
                    write_official_cache(job.out, result, prior.name, focal_px=job.metadata_focal())
                    written += 1
                    bar.update(1)
    return written, kept


class PriorJob:
    """One frame to compute: where its pixels come from and where its prior goes."""

    def __init__(self, name: str, out: Path, model: str, *, frame=None, path: Path | None = None,
                 no_exif: bool = False, metadata: Path | None = None) -> None:
        self.name, self.out, self.model, self._path = name, out, model, path
        self._no_exif, self._metadata = no_exif, metadata
        self._image = None
        self.focal_px = None
        if frame is not None:
            self._image = frame.image
            self.focal_px = None if no_exif else frame.focal_px

    def image(self):
        if self._image is None:
            from align3r.io.folder import read_image

            self._image, focal = read_image(self._path)
            self.focal_px = None if self._no_exif else focal
        return self._image

    def frame_size(self) -> tuple[int, int]:
        if self._image is not None:
            return self._image.shape[:2]
        from align3r.io.folder import upright_size

        return upright_size(self._path)

    def done(self) -> bool:
        from align3r.priors.official_cache import official_cache_ok

        return self.out.is_file() and official_cache_ok(self.out, self.model, self.frame_size())

    def metadata_focal(self) -> float | None:
        """Ground-truth fx from the processed dataset's ``_metadata.npz`` (official training files)."""
        if self._metadata is None or not self._metadata.is_file():
            return None
        import numpy as np

        try:
            with np.load(self._metadata, allow_pickle=False) as data:
                return float(np.asarray(data["camera_intrinsics"])[0, 0])
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise InputError(f"cannot read camera_intrinsics from {self._metadata}: {exc}") from exc


def frame_jobs(source: str | Path, name: str, out: Path, *, stride: int = 1, max_frames: int | None = None,
               no_exif: bool = False) -> tuple[Iterator[PriorJob], int | None]:
    """One job per sampled frame of a video or image folder (``<out>/<frame>_pred_depth_<name>.npz``),
    and their number when the source says (None for a video of unknown length)."""
    from align3r.io.frames import iter_frames, probe
    from align3r.priors.official_cache import official_cache_path

    info = probe(source)
    frames = iter_frames(source, stride=stride, max_frames=max_frames, min_frames=1)
    total = None if info.num_frames is None else -(-info.num_frames // stride)
    if max_frames is not None:
        total = max_frames if total is None else min(total, max_frames)
    jobs = (PriorJob(frame.name, official_cache_path(frame.name, name, out), name, frame=frame, no_exif=no_exif)
            for frame in frames)
    return jobs, total


def dataset_jobs(root: Path, name: str, *, no_exif: bool = False) -> list[PriorJob]:
    """One job per ``*rgb.jpg`` / ``*rgb.png`` frame under a processed training set (recursively),
    writing beside the frame as the official ``infer_training_set.py``; Depth Anything files also
    get ``focallength_px`` from the frame's ``_metadata.npz``."""
    from natsort import natsorted

    from align3r.priors.official_cache import official_cache_path

    if not root.is_dir():
        raise InputError(f"dataset folder {root} does not exist")
    paths = natsorted((p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(("rgb.jpg", "rgb.png"))),
                      key=str)
    if not paths:
        raise InputError(f"no *rgb.jpg / *rgb.png frames under {root}; --dataset expects a processed training set")
    jobs, no_metadata = [], []
    for path in paths:
        metadata = path.with_name(path.name[: -len("rgb.jpg")] + "metadata.npz") if name == "depthanything" else None
        if metadata is not None and not metadata.is_file():
            no_metadata.append(path)
        jobs.append(PriorJob(path.stem, official_cache_path(path, name), name, path=path, no_exif=no_exif,
                         metadata=metadata))
    if no_metadata:
        shown = ", ".join(str(p.relative_to(root)) for p in no_metadata[:5])
        more = f" and {len(no_metadata) - 5} more" if len(no_metadata) > 5 else ""
        logger.warning("%d frame(s) have no _metadata.npz beside them, so their Depth Anything files get no "
                       "focallength_px (which the official training code reads): %s%s",
                       len(no_metadata), shown, more)
    return jobs


def chunks(items, size: int):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
