"""``align3r prior``: compute depth priors and store them as the official ``_pred_depth_<name>.npz`` files."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from pathlib import Path

from tqdm.auto import tqdm

from align3r.errors import InputError

HELP = "compute depth priors for frames or a processed dataset"
DESCRIPTION = """\
Compute Depth Pro or Depth Anything V2 priors and save them in the official layout
(<stem>_pred_depth_<depthpro|depthanything>.npz, readable by the official code and by
`align3r infer ... prior=official-cache:<name>`), at each frame's original resolution.

  align3r prior video.mp4 --model depthpro --out priors/
  align3r prior frames/ --model depthanything --out frames/        (beside the frames)
  align3r prior --dataset data/PointOdyssey_proc --model depthpro   (training layout)

--dataset writes beside every *rgb.jpg / *rgb.png under the folder (recursively), as the official
infer_training_set.py; Depth Anything files there also get focallength_px = fx from the frame's
_metadata.npz (frames without one are named in a warning); --out, --stride and --max-frames apply
to FRAMES only. Runs are resumable: a complete output for the frame is kept unless --overwrite,
whichever model wrote it (the files do not record it): after switching models, use --overwrite.
Depth Pro uses an image's EXIF 35 mm focal when it has one (as the official loader), unless --no-exif.
"""

MODELS = ("depthpro", "depthanything", "depthanything-small", "depthanything-base", "depthanything-large")
CHUNK = 16  # frames decoded and predicted together: bounds memory on long videos
logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("frames", nargs="?", help="video file or image folder")
    parser.add_argument("--dataset", type=Path, help="processed training-set folder (instead of FRAMES)")
    parser.add_argument("--model", default="depthpro", choices=MODELS, help="prior model (default: depthpro)")
    parser.add_argument("--out", type=Path, help="output folder for FRAMES (default: beside an image folder)")
    parser.add_argument("--weights", help="Hub id or local folder overriding the model's default weights")
    parser.add_argument("--revision", help="Hub branch, tag or commit of the weights")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"),
                        help="network precision (default: float16 on CUDA, float32 on CPU)")
    parser.add_argument("--batch-size", type=int, help="frames per forward pass (default: 4 on CUDA, 1 on CPU)")
    parser.add_argument("--stride", type=int, default=1, help="keep every N-th frame of FRAMES")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames of FRAMES")
    parser.add_argument("--cache-dir", type=Path,
                        help="also keep a content-keyed prior cache there (reused by `align3r infer`)")
    parser.add_argument("--overwrite", action="store_true", help="recompute outputs that already exist")
    parser.add_argument("--no-exif", action="store_true", help="ignore EXIF focal lengths")


def run(args: argparse.Namespace) -> int:
    from align3r.atomic import check_output_folder
    from align3r.commands._logging import setup_logging
    from align3r.priors.official_cache import write_official_cache

    if (args.frames is None) == (args.dataset is None):
        raise InputError("give either FRAMES (a video or image folder) or --dataset PROCESSED_DIR")
    if args.dataset is not None:
        frames_only = [flag for flag, given in (("--out", args.out is not None), ("--stride", args.stride != 1),
                                                ("--max-frames", args.max_frames is not None)) if given]
        if frames_only:
            raise InputError(f"{' and '.join(frames_only)} apply to FRAMES only: --dataset writes beside every "
                             "frame of the processed dataset, all of them")
    if args.stride < 1 or (args.max_frames is not None and args.max_frames < 1):
        raise InputError("--stride and --max-frames must be at least 1")
    setup_logging(logging.WARNING, "%(levelname)s %(name)s: %(message)s")
    if args.dataset is None:  # before any work: a file where the folder should be
        where = _out_dir(args)
        check_output_folder(where)
    prior = _build_prior(args)
    if args.dataset is not None:
        job_list = _dataset_jobs(args.dataset, prior.name, args.no_exif)
        jobs, total, where = iter(job_list), len(job_list), args.dataset
    else:
        jobs, total = _frame_jobs(args, prior.name, where)
    written = kept = 0
    with tqdm(total=total, desc=args.model, unit="frame") as bar:
        for chunk in _chunks(jobs, CHUNK):
            todo = [job for job in chunk if args.overwrite or not job.done()]
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
    note = ""
    if kept:
        note = (" (existing files are kept whichever model wrote them, the files do not record it; "
                "--overwrite recomputes them)")
    print(f"{prior.name}: wrote {written} prior file(s), kept {kept} complete one(s){note}, in {where}")
    return 0


def _build_prior(args: argparse.Namespace):
    from align3r.device import resolve_device
    from align3r.priors.cache import PriorCache
    from align3r.priors.registry import load_prior

    device = resolve_device(args.device, "--device")  # errors in this command's syntax
    settings = dict(device=device, dtype=args.dtype, batch_size=args.batch_size, revision=args.revision,
                    progress=False)
    if args.weights:
        settings["model"] = args.weights
    prior = load_prior(args.model, **settings)
    return prior if args.cache_dir is None else PriorCache(prior, args.cache_dir)


class _Job:
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


def _frame_jobs(args: argparse.Namespace, name: str, out: Path) -> tuple[Iterator[_Job], int | None]:
    from align3r.io.frames import iter_frames, probe
    from align3r.priors.official_cache import official_cache_path

    info = probe(args.frames)
    frames = iter_frames(args.frames, stride=args.stride, max_frames=args.max_frames, min_frames=1)
    total = None if info.num_frames is None else -(-info.num_frames // args.stride)
    if args.max_frames is not None:
        total = args.max_frames if total is None else min(total, args.max_frames)
    jobs = (_Job(frame.name, official_cache_path(frame.name, name, out), name, frame=frame, no_exif=args.no_exif)
            for frame in frames)
    return jobs, total


def _out_dir(args: argparse.Namespace) -> Path:
    if args.out is not None:
        return args.out
    source = Path(args.frames)
    if source.is_dir():
        return source
    raise InputError("give --out DIR for the priors of a video")


def _dataset_jobs(root: Path, name: str, no_exif: bool) -> list[_Job]:
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
        jobs.append(_Job(path.stem, official_cache_path(path, name), name, path=path, no_exif=no_exif,
                         metadata=metadata))
    if no_metadata:
        shown = ", ".join(str(p.relative_to(root)) for p in no_metadata[:5])
        more = f" and {len(no_metadata) - 5} more" if len(no_metadata) > 5 else ""
        logger.warning("%d frame(s) have no _metadata.npz beside them, so their Depth Anything files get no "
                       "focallength_px (which the official training code reads): %s%s",
                       len(no_metadata), shown, more)
    return jobs


def _chunks(items, size: int):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
