"""``align3r prior``: compute depth priors and store them as the official ``_pred_depth_<name>.npz`` files."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

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
    from align3r.priors.jobs import dataset_jobs, frame_jobs, write_prior_files

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
        job_list = dataset_jobs(args.dataset, prior.name, no_exif=args.no_exif)
        jobs, total, where = iter(job_list), len(job_list), args.dataset
    else:
        jobs, total = frame_jobs(args.frames, prior.name, where, stride=args.stride, max_frames=args.max_frames,
                                 no_exif=args.no_exif)
    written, kept = write_prior_files(prior, jobs, total=total, overwrite=args.overwrite, desc=args.model)
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


def _out_dir(args: argparse.Namespace) -> Path:
    if args.out is not None:
        return args.out
    source = Path(args.frames)
    if source.is_dir():
        return source
    raise InputError("give --out DIR for the priors of a video")
