"""Write a :class:`~align3r.align.types.Reconstruction` and everything derived from it to a directory.

Entry points:

- :func:`write_reconstruction` — a complete output directory from a reconstruction (the
  pipeline's last step).
- :func:`export_formats` — (re)write some formats of a saved directory (``align3r export``).

Both stage the whole directory beside the target and swap it in at the end
(:mod:`align3r.atomic`): an existing output is never half-overwritten, and a full disk
raises :class:`~align3r.errors.OutputError` with the previous output intact.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from align3r.align.types import Reconstruction
from align3r.atomic import (
    absolute_path,
    atomic_path,
    check_destination,
    staged_directory,
    write_bytes,
    write_text,
)
from align3r.errors import InputError
from align3r.export import colmap as colmap_files
from align3r.export import images, layout
from align3r.export.cameras import format_tum, intrinsics_json
from align3r.export.manifest import caller_sections, dumps, library_versions, now_iso
from align3r.export.nerfstudio import depth_file, transforms_json
from align3r.export.original import OriginalResolution
from align3r.export.pointcloud import (
    PointSet,
    camera_colors,
    default_frustum_depth,
    default_voxel_size,
    frustum_segments,
    fuse_static_scene,
    glb_bytes,
    iter_frame_points,
    ply_bytes,
    voxel_downsample,
)
from align3r.export.rerun_recording import check_rerun, write_recording
from align3r.export.sequence import SequenceData, sequence_from_reconstruction
from align3r.export.video import fps_from_timestamps, pick_encoder, side_by_side, write_video

log = logging.getLogger(__name__)

#: Optional formats, in writing order. The core (depth/confidence .npy, masks, RGB, cameras,
#: manifest) is always written: it is what :func:`load_reconstruction` reads back.

FORMATS = ("depth_png", "depth_preview", "confidence_png", "original_depth", "ply", "glb", "colmap", "colmap_bin",
           "nerfstudio", "rerun", "video")
#: Formats that need an optional extra: written only when named, never as part of "all".
EXTRA_FORMATS = ("rerun",)
#: Formats sharing one folder: rewriting one rewrites the others already there, so they agree.
_SHARED_FOLDER = {"colmap": "colmap_bin", "colmap_bin": "colmap"}

DEPTH_UNITS = ("reconstruction units: metres up to one unknown global scale per sequence "
               "(z-depth along the optical axis; the same units as camera translations and points)")


def depth_units(scale: dict | None) -> str:
    """The manifest's ``depth_units``: :data:`DEPTH_UNITS`, or the units a metric rescale or known
    poses gave the run (``scale``: the manifest's ``scale`` record)."""
    if not scale or scale.get("mode", "relative") == "relative":
        return DEPTH_UNITS
    return f"{scale['units']} (z-depth along the optical axis; the same units as camera translations and points)"


@dataclass(frozen=True)
class ExportOptions:
    """Settings of the derived outputs (recorded in the manifest).

    - ``min_conf``: raw-confidence threshold (conf > 1) for point clouds; 3.0 is DUSt3R's demo
      default.
    - ``voxel_size``: voxel edge of the fused static cloud, reconstruction units; None = one
      pixel's footprint at the median depth.
    - ``frustum_depth``: size of the drawn camera frusta; None = 10 % of the median depth.
    - ``video_fps``: preview frame rate; None = from the timestamps (10 if none).
    - ``durable``: fsync every file and directory before the swap (power-loss safe).
    - ``workers``: threads encoding per-frame files (PNG/zlib release the GIL).
    - ``chunk_frames``: frames processed together when making point clouds / resampling.
    """

    min_conf: float = 3.0
    voxel_size: float | None = None
    frustum_depth: float | None = None
    video_fps: float | None = None
    durable: bool = True
    workers: int = min(4, os.cpu_count() or 1)
    chunk_frames: int = 16


# --------------------------------------------------------------------------- the writer run
class _Run:
    """One staged write: shared per-sequence values, the writers, the manifest records."""

    def __init__(self, stage: Path, seq: SequenceData, opts: ExportOptions):
        self.stage, self.seq, self.opts = stage, seq, opts
        self.record: dict = {}  # per-format manifest entries
        self.timings: dict[str, float] = {}
        self._static: tuple[PointSet, float] | None = None
        self._png_scale: float | None = None
        self._inv_range: tuple[float, float] | None = None
        self._frame_png_dirs: dict[bool, str] = {}  # original resolution? -> first folder written

    # -- helpers
    def put(self, rel: str, data: bytes) -> None:
        write_bytes(self.stage / rel, data, durable=self.opts.durable)

    def put_npy(self, rel: str, array: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        self.put(rel, buf.getvalue())

    def per_frame(self, job: Callable[[int], None]) -> None:
        """Run ``job(i)`` for every frame on a few threads; the first error cancels the rest."""
        n = len(self.seq)
        if self.opts.workers <= 1 or n < 2:
            for i in range(n):
                job(i)
            return
        pool = ThreadPoolExecutor(max_workers=self.opts.workers)
        try:
            for future in [pool.submit(job, i) for i in range(n)]:
                future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # no thread may still write into the stage
            raise
        pool.shutdown(wait=True)

    @property
    def png_scale(self) -> float:
        if self._png_scale is None:
            self._png_scale = images.depth_png_scale(self.seq.depth)
        return self._png_scale

    @property
    def inv_range(self) -> tuple[float, float]:
        if self._inv_range is None:
            self._inv_range = images.inverse_depth_range(self.seq.depth)
        return self._inv_range

    @property
    def static(self) -> tuple[PointSet, float]:
        if self._static is None:
            s = self.seq
            self._static = fuse_static_scene(s.depth, s.intrinsics, s.cam2world, s.conf, s.rgb, s.dynamic_mask,
                                             min_conf=self.opts.min_conf, voxel_size=self.opts.voxel_size,
                                             chunk=self.opts.chunk_frames)
        return self._static

    def timed(self, name: str, fn: Callable[[], None]) -> None:
        t0 = time.perf_counter()
        fn()
        self.timings[name] = round(time.perf_counter() - t0, 4)

    # -- the core: what load_reconstruction reads
    def write_core(self) -> None:
        s = self.seq

        def frame(i: int) -> None:
            stem = s.stems[i]
            self.put_npy(layout.frame_file(layout.DEPTH_DIR, stem, "npy"), s.depth[i])
            self.put_npy(layout.frame_file(layout.CONFIDENCE_DIR, stem, "npy"), s.conf[i])
            self.put(layout.frame_file(layout.MASK_DIR, stem, "png"), images.encode_png(images.mask_png(s.dynamic_mask[i])))
            self.put(layout.frame_file(layout.RGB_DIR, stem, "png"), images.encode_png(s.rgb[i]))

        self.per_frame(frame)
        self.put_npy(layout.CAM2WORLD, s.cam2world)
        self.put_npy(layout.INTRINSICS_NPY, s.intrinsics)
        buf = io.BytesIO()
        np.savez(buf, total=np.asarray(s.loss_history, np.float64),
                 **{f"term_{name}": np.asarray(v, np.float64) for name, v in s.loss_terms.items()})
        self.put(layout.LOSS_HISTORY, buf.getvalue())
        self.put(layout.TRAJECTORY_TUM, format_tum(s.timestamps, s.cam2world).encode())
        orig = s.original
        self.put(layout.INTRINSICS_JSON, intrinsics_json(
            s.intrinsics, s.size_hw, s.stems,
            orig.intrinsics(s.intrinsics) if orig is not None else None,
            orig.size if orig is not None else None).encode())

    # -- optional formats
    def depth_png(self) -> None:
        s, scale = self.seq, self.png_scale
        self.per_frame(lambda i: self.put(layout.frame_file(layout.DEPTH_DIR, s.stems[i], "png"),
                                          images.encode_png(images.encode_depth_png16(s.depth[i], scale))))
        self.record["depth_png"] = {"scale": scale, "decode": "depth = png / scale; 0 = invalid", "dtype": "uint16"}

    def depth_preview(self) -> None:
        s, rng = self.seq, self.inv_range
        self.per_frame(lambda i: self.put(layout.frame_file(layout.DEPTH_PREVIEW_DIR, s.stems[i], "png"),
                                          images.encode_png(images.colorize_depth(s.depth[i], rng))))
        self.record["depth_preview"] = {"colormap": images.DEPTH_COLORMAP, "inverse_depth_range": list(rng),
                                        "note": "inverse depth, 2nd-98th percentile of the sequence; near = bright"}

    def confidence_png(self) -> None:
        s = self.seq
        rng = images.log_confidence_range(s.conf)
        self.per_frame(lambda i: self.put(layout.frame_file(layout.CONFIDENCE_DIR, s.stems[i], "png"),
                                          images.encode_png(images.confidence_preview(s.conf[i], rng))))
        self.record["confidence_png"] = {"log_conf_range": list(rng),
                                         "decode": "log(conf) ~= lo + png / 255 * (hi - lo) (preview, 8-bit)"}

    def original_depth(self) -> None:
        orig = self.seq.original
        if orig is None:
            return
        scale = self.png_scale if orig.depth is None else images.depth_png_scale(orig.depth)
        for stem, depth in self._depth_at(use_original=True):
            self.put_npy(layout.frame_file(layout.DEPTH_ORIGINAL_DIR, stem, "npy"), depth)
            self.put(layout.frame_file(layout.DEPTH_ORIGINAL_DIR, stem, "png"),
                     images.encode_png(images.encode_depth_png16(depth, scale)))
        self.record["original_depth"] = {
            "size_hw": list(orig.size), "png_scale": scale,
            "source": "supplied by the caller" if orig.depth is not None else "bilinear resampling of network depth",
            "invalid": "NaN in .npy (outside the network's field of view), 0 in .png"}

    def ply(self) -> None:
        s, opts = self.seq, self.opts
        voxel = opts.voxel_size if opts.voxel_size is not None else default_voxel_size(s.depth, s.intrinsics)
        counts = []

        def write_frames_yield_static():
            # World points are computed once: each frame's PLY, then its static part is fused.
            frames = iter_frame_points(s.depth, s.intrinsics, s.cam2world, s.conf, s.rgb, min_conf=opts.min_conf,
                                       dynamic_mask=s.dynamic_mask, chunk=opts.chunk_frames)
            for stem, points in zip(s.stems, frames, strict=True):
                self.put(layout.frame_file(layout.FRAME_PLY_DIR, stem, "ply"), ply_bytes(points))
                counts.append(len(points))
                yield points.static_part()

        static = voxel_downsample(write_frames_yield_static(), voxel)
        self._static = (static, voxel)
        self.put(layout.STATIC_PLY, ply_bytes(static))
        self.record["ply"] = {"min_conf": opts.min_conf, "voxel_size": voxel, "static_points": len(static),
                              "frame_points": counts}

    def glb(self) -> None:
        s = self.seq
        static, _ = self.static
        frusta = frustum_segments(s.cam2world, s.intrinsics, s.size_hw,
                                  self.opts.frustum_depth or default_frustum_depth(s.depth))
        self.put(layout.SCENE_GLB, glb_bytes(static, frusta, camera_colors(len(s)), s.stems))
        self.record["glb"] = {"static_points": len(static), "cameras": len(s),
                              "axes": "root node rotates OpenCV (y down) to glTF (y up)"}

    def frame_images(self, folder: str) -> tuple[np.ndarray, tuple[int, int], bool]:
        """Write every frame as ``<folder>/<stem>.png`` for a client format: the original frames
        when the pipeline gave them, else the network-resolution frames (hard links to ``rgb/``).
        An image already written for another format in this run is linked, not encoded again.

        Returns:
            (N, 3, 3) K of those images (our convention), their (H, W), whether they are original.
        """
        s, orig = self.seq, self.seq.original
        use_original = orig is not None and orig.frames is not None
        first = self._frame_png_dirs.get(use_original)
        if first == folder:  # both COLMAP forms share colmap/images
            pass
        elif first is None and use_original:
            self.per_frame(lambda i: self.put(f"{folder}/{s.stems[i]}.png",
                                              images.encode_png(np.asarray(orig.frames[i], np.uint8))))
        else:  # same bytes as an earlier folder (or as rgb/): link instead of a second copy
            (self.stage / folder).mkdir(parents=True, exist_ok=True)
            for stem in s.stems:
                src = self.stage / (f"{first}/{stem}.png" if first else layout.frame_file(layout.RGB_DIR, stem, "png"))
                dst = self.stage / folder / f"{stem}.png"
                dst.unlink(missing_ok=True)
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
        self._frame_png_dirs.setdefault(use_original, folder)
        if use_original:
            return orig.intrinsics(s.intrinsics), tuple(orig.size), True
        return s.intrinsics, s.size_hw, False

    def _colmap_model(self, form: str) -> None:
        s = self.seq
        static, _ = self.static
        k, size, use_original = self.frame_images(layout.COLMAP_IMAGES_DIR)
        model = colmap_files.colmap_model(s.cam2world, k, size, [f"{stem}.png" for stem in s.stems],
                                          static.points, static.colors)
        files = colmap_files.text_files(model) if form == "colmap" else colmap_files.binary_files(model)
        for name, data in files.items():
            self.put(f"{layout.COLMAP_MODEL_DIR}/{name}", data.encode() if isinstance(data, str) else data)
        self.record[form] = {"resolution": "original" if use_original else "network", "size_hw": list(size),
                             "points": len(static), "camera_model": "PINHOLE", "files": sorted(files)}

    def colmap(self) -> None:
        self._colmap_model("colmap")

    def colmap_bin(self) -> None:
        self._colmap_model("colmap_bin")

    def _depth_at(self, use_original: bool):
        """Yield ``(stem, depth)`` for every frame at network or original resolution, a few
        frames at a time (bounded memory). Original: the supplied depth, else bilinear
        resampling of the network depth (NaN outside the network's view)."""
        s, orig = self.seq, self.seq.original
        if not use_original:
            yield from zip(s.stems, s.depth, strict=True)
            return
        chunk = max(1, self.opts.chunk_frames)
        for start in range(0, len(s), chunk):
            stop = min(len(s), start + chunk)
            block = (orig.depth[start:stop].astype(np.float32) if orig.depth is not None
                     else orig.resample_depth(s.depth[start:stop]))
            yield from zip(s.stems[start:stop], block, strict=True)

    def nerfstudio(self) -> None:
        s = self.seq
        static, _ = self.static
        k, size, use_original = self.frame_images(f"{layout.NERFSTUDIO_DIR}/{layout.NERFSTUDIO_IMAGES}")
        for stem, depth in self._depth_at(use_original):
            self.put_npy(f"{layout.NERFSTUDIO_DIR}/{layout.NERFSTUDIO_DEPTH}/{stem}.npy", depth_file(depth))
        self.put(f"{layout.NERFSTUDIO_DIR}/{layout.NERFSTUDIO_PLY}", ply_bytes(static))
        doc = transforms_json(s.cam2world, k, size, [f"{layout.NERFSTUDIO_IMAGES}/{stem}.png" for stem in s.stems],
                              [f"{layout.NERFSTUDIO_DEPTH}/{stem}.npy" for stem in s.stems], layout.NERFSTUDIO_PLY)
        write_text(self.stage / layout.NERFSTUDIO_TRANSFORMS, json.dumps(doc, indent=1), durable=self.opts.durable)
        self.record["nerfstudio"] = {"resolution": "original" if use_original else "network", "size_hw": list(size),
                                     "camera_axes": "OpenGL (x right, y up, z back)",
                                     "depth_file_scale": "depth x 1000 (nerfstudio's default depth_unit_scale_factor "
                                                         "1e-3 gives reconstruction units)",
                                     "points": len(static)}

    def rerun(self) -> None:
        s, opts = self.seq, self.opts
        static, _ = self.static
        frames = iter_frame_points(s.depth, s.intrinsics, s.cam2world, s.conf, s.rgb, min_conf=opts.min_conf,
                                   dynamic_mask=s.dynamic_mask, chunk=opts.chunk_frames)
        with atomic_path(self.stage / layout.RERUN_RECORDING, durable=opts.durable) as tmp:
            info = write_recording(tmp, s, static, frames,
                                   frustum_depth=opts.frustum_depth or default_frustum_depth(s.depth))
        self.record["rerun"] = {**info, "min_conf": opts.min_conf}

    def video(self) -> None:
        s, rng = self.seq, self.inv_range
        fps = self.opts.video_fps or (fps_from_timestamps(s.timestamps) if s.timestamps_are_seconds else 10.0)
        frames = (side_by_side(s.rgb[i], images.colorize_depth(s.depth[i], rng),
                               images.mask_overlay(s.rgb[i], s.dynamic_mask[i])) for i in range(len(s)))
        encoder = pick_encoder()
        with atomic_path(self.stage / layout.PREVIEW_VIDEO, durable=self.opts.durable) as tmp:
            write_video(tmp, frames, fps, encoder=encoder)
        self.record["video"] = {"encoder": encoder, "fps": fps, "panels": ["rgb", "depth", "dynamic_mask"]}

    def write_manifest(self, caller: dict, formats: list[str], previous: dict | None = None) -> None:
        s = self.seq
        manifest = dict(previous or {})
        manifest.update({
            "format": layout.FORMAT_NAME,
            "format_version": layout.FORMAT_VERSION,
            "created": manifest.get("created", now_iso()),
            "versions": manifest.get("versions", library_versions()),
        })
        manifest.update(caller if previous is None else {})
        timings = manifest.setdefault("timings", {})
        timings["export_s"] = {**timings.get("export_s", {}), **self.timings}
        manifest.update({
            "frames": [{"index": i, "name": s.names[i], "stem": s.stems[i], "timestamp": float(s.timestamps[i]),
                        "frame_id": None if s.frame_ids is None else int(s.frame_ids[i])} for i in range(len(s))],
            "timestamps": "seconds" if s.timestamps_are_seconds else "frame index (the input had no timestamps)",
            "network_size_hw": list(s.size_hw),
            "depth_units": depth_units(manifest.get("scale")),
            "original": None if s.original is None else s.original.to_json(),
        })
        outputs = dict(manifest.get("outputs", {}))
        outputs.update(self.record)
        manifest["outputs"] = outputs
        manifest["export"] = {"formats": formats, "options": asdict(self.opts), "updated": now_iso()}
        manifest["files"] = sorted(str(p.relative_to(self.stage)) for p in self.stage.rglob("*") if p.is_file())
        write_text(self.stage / layout.MANIFEST, dumps(manifest), durable=self.opts.durable)


def resolve_formats(formats: str | Iterable[str]) -> list[str]:
    """``"all"`` or names from :data:`FORMATS` -> list in writing order (``InputError`` on unknown,
    or on a format whose optional extra is not installed). ``"all"`` (alone or in a list) means every
    format except :data:`EXTRA_FORMATS`, which are written only when named."""
    names = {formats} if isinstance(formats, str) else set(formats)
    wanted = (names - {"all"}) | (set(FORMATS) - set(EXTRA_FORMATS) if "all" in names else set())
    unknown = wanted - set(FORMATS)
    if unknown:
        raise InputError(f"unknown output formats {sorted(unknown)}; choose from {', '.join(FORMATS)}, or all "
                         "(the core is always written)")
    if "rerun" in wanted:
        check_rerun()
    return [f for f in FORMATS if f in wanted]


def _expected_bytes(seq: SequenceData, formats: list[str]) -> int:
    """Rough size of the outputs (quoted in the disk-full message)."""
    n, (h, w) = len(seq), seq.size_hw
    per_pixel = 4 + 4 + 4  # depth + confidence .npy, RGB / mask PNGs (compressed, roughly)
    per_pixel += sum({"depth_png": 2, "depth_preview": 2, "confidence_png": 1, "ply": 16, "colmap": 3,
                      "nerfstudio": 4, "rerun": 36}.get(f, 0) for f in formats)
    total = n * h * w * per_pixel
    if seq.original is not None:
        # original-resolution depth (npy + png), nerfstudio's depth files
        per_original = 6 * ("original_depth" in formats) + 4 * ("nerfstudio" in formats)
        total += n * seq.original.size[0] * seq.original.size[1] * per_original
    return int(total)


def _run_formats(run: _Run, formats: list[str], progress: bool = False) -> None:
    from tqdm.auto import tqdm

    for name in tqdm(formats, desc="export", unit="format", disable=not progress, leave=False):
        run.timed(name, getattr(run, name))


def check_output_dir(out_dir: str | os.PathLike, *, overwrite: bool) -> Path:
    """Raise :class:`~align3r.errors.OutputError` now if :func:`write_reconstruction` would refuse
    ``out_dir`` (an existing file, an existing output without ``overwrite``, a non-empty folder that
    is not an align3r output, the current directory); returns the absolute directory. The same
    rules the writer applies, for callers that check before hours of work (``align3r infer``)."""
    return check_destination(out_dir, overwrite=overwrite, marker=layout.MANIFEST)


def write_reconstruction(out_dir: str | os.PathLike, recon: Reconstruction, *, rgb, names: Sequence[str] | None = None,
                         timestamps: Sequence[float] | None = None, original: OriginalResolution | None = None,
                         manifest: Mapping | None = None, formats: str | Iterable[str] = "all",
                         overwrite: bool = False, options: ExportOptions | None = None,
                         progress: bool = False) -> Path:
    """Write a reconstruction and its derived formats to ``out_dir``, atomically.

    Args:
        out_dir: output directory; created, or replaced as a whole if ``overwrite``.
        recon: depth, poses, intrinsics, confidence, masks at network resolution (any device).
        rgb: (N, H, W, 3) uint8 frames at network resolution (numpy or torch).
        names: N input frame names (file stems name the per-frame files); default frame ids.
        timestamps: N times in seconds (TUM trajectory, video rate); default frame indices.
        original: mapping to the input's original resolution (+ optional original frames or
            depth); enables ``depth_original/`` and a full-resolution COLMAP model.
        manifest: ``{"inputs": [paths or dicts], "settings": {...}, "timings": {...}}``; input
            paths are hashed (sha256) into the manifest.
        formats: ``"all"`` or a subset of :data:`FORMATS`; the core is always written.
        overwrite: replace an existing output directory (only one of ours, or an empty one).
        options: :class:`ExportOptions`.
        progress: a tqdm bar over the formats.
    Returns:
        The absolute output directory.
    Raises:
        ValueError: inconsistent shapes, or unknown formats (``InputError``); nothing is written.
        OutputError: target exists (without ``overwrite``), disk full, no permission — any
            previous output is left intact.
    """
    opts = options or ExportOptions()
    wanted = resolve_formats(formats)
    seq = sequence_from_reconstruction(recon, rgb, names, timestamps, original)
    caller = caller_sections(manifest)
    target = absolute_path(out_dir)
    with staged_directory(target, overwrite=overwrite, marker=layout.MANIFEST, durable=opts.durable,
                          expected_bytes=_expected_bytes(seq, wanted)) as stage:
        run = _Run(stage, seq, opts)
        run.timed("core", run.write_core)
        _run_formats(run, wanted, progress)
        written = [f for f in wanted if f in run.record]
        run.write_manifest(caller, written)
    return target


#: Formats that name image files at the original resolution when the frames are known.
_IMAGE_FORMATS = ("colmap", "colmap_bin", "nerfstudio")
_IMAGE_DIRS = (layout.COLMAP_IMAGES_DIR, f"{layout.NERFSTUDIO_DIR}/{layout.NERFSTUDIO_IMAGES}")


def _with_saved_frames(saved, orig: OriginalResolution) -> OriginalResolution:
    """``orig`` with the original-resolution frames that an earlier COLMAP or nerfstudio export
    left in its ``images/`` (the directory keeps no other copy), so a rewrite stays at full
    resolution; without them those formats fall back to network resolution, with a warning."""
    import dataclasses

    for folder in _IMAGE_DIRS:
        paths = [saved.path / folder / f"{stem}.png" for stem in saved.stems]
        if not all(p.is_file() for p in paths):
            continue
        first = images.read_png(paths[0])
        if first.shape[:2] == tuple(orig.size) and first.ndim == 3:
            frames = np.stack([first, *(images.read_png(p) for p in paths[1:])])
            if frames.shape[1:3] == tuple(orig.size):
                return dataclasses.replace(orig, frames=frames[..., :3])
    h, w = saved.reconstruction.depth.shape[-2:]
    log.warning("the COLMAP / nerfstudio images are written at network resolution (%dx%d), not the original "
                "%dx%d: %s keeps no original-resolution frames; rerun `align3r infer` with colmap or nerfstudio in "
                "formats for full-resolution images", w, h, orig.size[1], orig.size[0], saved.path)
    return orig


def export_formats(src_dir: str | os.PathLike, formats: str | Iterable[str], *, out_dir: str | os.PathLike | None = None,
                   overwrite: bool = False, options: ExportOptions | None = None,
                   original: OriginalResolution | None = None) -> Path:
    """(Re)write ``formats`` of a saved reconstruction, keeping its other files.

    Writes into ``src_dir`` itself (default) or into a new ``out_dir`` (a copy plus the new
    formats). Atomic like :func:`write_reconstruction`. ``original`` may add original frames or
    depth; otherwise the saved mapping (if any) is used.
    """
    from align3r.export.reader import load_reconstruction

    saved = load_reconstruction(src_dir)
    opts = options or ExportOptions()
    wanted = resolve_formats(formats)
    written_before = set(saved.manifest.get("export", {}).get("formats", []))
    wanted = [f for f in FORMATS if f in wanted or (_SHARED_FOLDER.get(f) in wanted and f in written_before)]
    orig = original if original is not None else saved.original
    if any(f in _IMAGE_FORMATS for f in wanted) and orig is not None and orig.frames is None:
        orig = _with_saved_frames(saved, orig)
    seq = sequence_from_reconstruction(saved.reconstruction, saved.rgb, saved.names,
                                       saved.timestamps if saved.timestamps_are_seconds else None, orig)
    target = absolute_path(out_dir if out_dir is not None else src_dir)
    with staged_directory(target, overwrite=overwrite, marker=layout.MANIFEST, seed_from=saved.path,
                          durable=opts.durable, expected_bytes=_expected_bytes(seq, wanted)) as stage:
        run = _Run(stage, seq, opts)
        _run_formats(run, wanted)
        previous = dict(saved.manifest)
        done = sorted(set(previous.get("export", {}).get("formats", [])) | set(run.record),
                      key=FORMATS.index)
        run.write_manifest({}, done, previous=previous)
    return target
