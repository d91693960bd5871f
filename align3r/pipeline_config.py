"""Every setting of a reconstruction (:func:`align3r.reconstruct`), in one dataclass.

``configs/infer.yaml`` holds the same settings for ``align3r infer``; the command converts its
values to these fields' types (``align3r.typed_values``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import torch
from torch import Tensor

from align3r.errors import check_known_fields


@dataclass
class PipelineConfig:
    """Every setting of :func:`reconstruct` (defaults: the paper's method, the official demo's graph).

    Inputs:
        stride, fps, start, max_frames: frame sampling (see ``align3r.io.iter_frames``).
        folder_fps: frame rate of an image folder (timestamps, ``fps`` sampling, the preview
            video's rate); None: a folder has no timestamps. Videos use their own timestamps.
        size: network resolution (512: long side 512; 224: square). The released networks were
            trained at 512 (``dust3r-224-linear`` at 224); other values work like 512 with that
            long side, both sides rounded down to multiples of 16 (the patch size), and log a
            warning with the resulting size.
        crop: centred crop to the network size (the official inference); False resizes the
            whole frame (the depth evaluation's variant, 512 only).
        prior_input: ``"auto"`` (the representation the network was fine-tuned with, as
            ``align3r train`` records it in ``final_model/config.json``; ``"pointmap"`` for the
            released networks and unknown checkpoints), ``"pointmap"`` or ``"depthmap"`` (supp.
            Table 2 ablation: only for a network trained on depth-map priors). A value that
            contradicts the recorded one logs a warning.
        prior_resize: a prior at another resolution than the frame (e.g. a file): ``"official"``
            builds its point map at its own resolution and resizes it with the image (the official
            loader; the released networks' numbers), ``"frame"`` resamples the depth to the frame
            first, ``"auto"`` is official where well-defined (the prior's own resize lands on the
            view) and frame otherwise, with a note (``align3r.priors.pointmap``, ``docs/priors.md``).
    Network:
        model: released short name (``align3r checkpoints``), ``.pth`` / folder path or Hub id.
        prior: ``"auto"`` (the one the model was trained with: released names, and local
            ``align3r train`` outputs from what they record), ``"depthpro"``,
            ``"depthanything[-small|-base|-large]"``, ``"external:<folder>"``,
            ``"official-cache:<name>"`` or ``"none"`` (DUSt3R / MonST3R networks).
        prior_model: Hub id or folder overriding the prior's default weights.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:1"``, ...
        precision: ``"auto"`` (bf16 on CUDA, fp32 on CPU), ``"fp32"``, ``"bf16"``, ``"fp16"``.
        batch_size: pairs per forward (``"auto"``: from free GPU memory, halved on OOM).
    Pairs and alignment:
        graph: ``"grouped"`` (= ``"grouped-official"``, keyframes + clips aligned clip by clip:
            the long-video mode), ``"grouped-paper"``, or any ``align3r.pairs.make_graph`` name
            (``"swinstride-5-noncyclic"``, ``"complete"``, ...) aligned in one problem.
        flow: ``"raft"`` / ``"raft-large"``, ``"raft-small"``, ``"dis"`` (no weights) or ``"none"``.
        flow_weights: RAFT weights (``"DEFAULT"``, a local ``.pth``).
        flow_iterations: RAFT refinement iterations (the reference: 20).
        align: preset name of ``align3r.align.PRESETS`` (``"paper"``, ``"demo"``, ...).
        align_overrides: ``AlignConfig`` fields to change (e.g. ``{"iterations": 100}``).
        intrinsics: known ``(fx, fy, cx, cy)`` in original-frame pixels (held fixed by default).
        poses: known camera-to-world poses: a TUM trajectory, a COLMAP ``images.txt`` /
            ``images.bin`` or an (N, 4, 4) ``.npy``, matched to the frames by name or timestamp
            (``align3r.io.poses``); they set the reconstruction's units.
        poses_fixed: hold the known poses fixed (True) or only start from them (False).
        masks: folder of per-frame dynamic masks (non-zero = moving, named after the frames)
            replacing the self-motion masks.
        scale: ``"auto"`` (the known poses' units; else metres with a metric prior; else
            relative), ``"metric"`` (rescale to the metric prior's metres: ``align3r.align.metric``)
            or ``"relative"`` (the aligner's own units).
        prior_metric: the user depth of ``prior=external:<folder>`` is metric depth in metres.
    Outputs:
        formats: ``"all"`` or a list of ``align3r.export.FORMATS`` (the core is always written).
        min_conf: confidence threshold of the point clouds.
        overwrite: replace an existing output directory (atomically).
        cache_dir: run cache (priors, predictions, flow); default ``<out>.cache``; ``"none"`` off.
        keep_cache: keep the run cache after a successful export (a rerun with other alignment
            or export settings then skips priors, inference and flow); False deletes it.
        keep_original_gib: keep original frames in memory up to this size, for full-resolution
            COLMAP images; longer videos export at network resolution plus resampled depth.
        progress: align3r's tqdm bars (the Hugging Face libraries' own bars are theirs to set;
            ``align3r infer --quiet`` turns them off too).
    """

    model: str = "align3r-depthpro"
    prior: str = "auto"
    prior_model: str | None = None
    size: int = 512
    crop: bool = True
    prior_input: Literal["auto", "pointmap", "depthmap"] = "auto"
    prior_resize: Literal["auto", "official", "frame"] = "auto"
    stride: int = 1
    fps: float | None = None
    folder_fps: float | None = None
    start: int = 0
    max_frames: int | None = None
    device: str = "auto"
    precision: str = "auto"
    batch_size: int | Literal["auto"] = "auto"
    graph: str = "grouped"
    flow: str = "raft"
    flow_weights: str | None = "DEFAULT"
    flow_iterations: int = 20
    align: str = "paper"
    align_overrides: dict[str, Any] = field(default_factory=dict)
    intrinsics: tuple[float, float, float, float] | None = None
    poses: str | None = None
    poses_fixed: bool = True
    masks: str | None = None
    scale: Literal["auto", "metric", "relative"] = "auto"
    prior_metric: bool = False
    formats: str | list[str] = "all"
    min_conf: float = 3.0
    overwrite: bool = True
    cache_dir: str | None = None
    keep_cache: bool = True
    keep_original_gib: float = 2.0
    progress: bool = True

    def replace(self, **changes) -> PipelineConfig:
        check_known_fields(self, changes, "pipeline setting(s)")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def align_config(self):
        """The ``AlignConfig``: preset ``align`` with ``poses_fixed`` and ``align_overrides`` applied."""
        from align3r.align import preset

        return preset(self.align).replace(**{"known_poses_fixed": self.poses_fixed, **self.align_overrides})

    def network_intrinsics(self, views) -> Tensor | None:
        """``intrinsics`` as (3, 3) K at the network resolution of ``views``, or None."""
        if self.intrinsics is None:
            return None
        fx, fy, cx, cy = (float(v) for v in self.intrinsics)
        return views.to_network_intrinsics(torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]],
                                                     dtype=torch.float32))

    def check(self, source=None) -> None:
        """Everything about these settings that can be checked without loading weights or decoding frames:
        the alignment preset and settings, output formats, graph name, prior representation, precision,
        batch size and, given a ``source`` (probed, not decoded), the network size for its frames.

        A ``size`` other than 512 / 224 logs a warning with the view size it gives."""
        from align3r.export.writer import resolve_formats
        from align3r.inference import check_batch_size, resolve_precision
        from align3r.io import probe
        from align3r.io.frames import check_folder_fps
        from align3r.io.view_geometry import check_network_size
        from align3r.pairs import check_graph_name
        from align3r.priors.pointmap import check_prior_input

        self.align_config()
        resolve_formats(self.formats)
        check_graph_name(self.graph)
        if self.prior_input != "auto":
            check_prior_input(self.prior_input)
        resolve_precision(self.precision, torch.device("cpu"))
        check_batch_size(self.batch_size)
        check_folder_fps(self.folder_fps)
        if source is not None:  # unreadable / empty / non-video input, or a size its frames cannot take
            check_network_size(*probe(source, folder_fps=self.folder_fps).size, self.size, crop=self.crop)
