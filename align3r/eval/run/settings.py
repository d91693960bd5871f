"""What one evaluation run is: the protocol settings, the dataset, the runtime.

An :class:`Experiment` is one table cell group — one method (a table row) on one dataset (a
table column group) — evaluated sequence by sequence. Its :class:`EvalSettings` hold everything
that decides a sequence's result; they are written into every result file and hashed into its
fingerprint, so a result computed with other settings is never reused. :class:`Runtime` holds what
does not change a result (device, batch size, progress bars, where results go).

Library code: plain dataclasses, no Hydra. ``align3r eval`` builds them from the configs in
``align3r/configs/eval`` and ``align3r/configs/experiment``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from align3r.errors import InputError, check_known_fields
from align3r.pairs import GROUPED_GRAPHS as GROUPED_GRAPHS  # graph names -> grouped variants
from align3r.priors.pointmap import check_prior_input

TASKS = ("depth", "pose")
PRIOR_KINDS = ("depthpro", "depthanything")
"""Prior kinds a row may use (besides ``none``); ``Runtime.prior_models`` keys."""
PRIOR_POLICIES = ("auto", "official", "compute")

CLAMP_MODES = ("none", "official", "keep-suffix")


@dataclass(frozen=True)
class EvalSettings:
    """Every setting that decides a sequence's result.

    Task and network:
        task: ``"depth"`` (video depth metrics) or ``"pose"`` (ATE / RPE).
        model: released name, ``.pth``, folder or Hub id (``align3r.model.load_model``).
        prior: ``"depthpro"``, ``"depthanything"`` or ``"none"`` (networks without prior branch).
        prior_input: ``"pointmap"`` or ``"depthmap"`` (``align3r.priors.pointmap.PRIOR_INPUTS``).
        precision: ``"fp32"`` (the official scripts), ``"bf16"``, ``"fp16"`` or ``"auto"``.
    Frames and views:
        size: network resolution (512 or 224).
        crop: centred crop (pose protocol) or resize without crop (depth protocol).
        max_frames: keep at most this many of the protocol's frames (None: all).
    Pairs:
        graph: ``align3r.pairs.make_graph`` name (``swin-5-noncyclic``, ``complete``, ...) or a
            grouped graph (:data:`GROUPED_GRAPHS`; ``grouped-depth-test`` is depth_test.py's).
        symmetrize: add every pair's reverse (``make_graph`` graphs; upstream always does).
        clamp_window: cap a window graph's K at ceil((N-1)/2) as pose_test.py does:
            ``"official"`` (upstream, which also drops ``-noncyclic``), ``"keep-suffix"``, ``"none"``.
        clip_size_start: start of the clip-size search of grouped graphs (None: the variant's).
        carry_clip_size: reproduce depth_test.py (paper era), which never resets the clip size
            between sequences: sequence k starts its search from the size sequence k-1 chose.
        grouped_fit_scale: fit clips onto the keyframes with a Sim(3) (else rigidly, as upstream).
    Flow and alignment:
        flow: ``"raft"``, ``"raft-small"``, ``"dis"`` or ``"none"``; flow_weights, flow_iterations.
        align: ``align3r.align.PRESETS`` name; align_overrides: ``AlignConfig`` fields to change.
    Metrics:
        depth_alignment, depth_max, depth_protocol: ``evaluate_video_depth`` arguments
            (``alignment``, ``depth_max``, ``protocol``).
        depth_per_frame: one alignment per frame instead of per sequence (MonST3R's per-frame mode).
        depth_post_clip: clip the aligned depth at depth_max (None: the protocol's default, always
            for ``"align3r"``, never for ``"monst3r"``).
        rpe_delta: RPE frame gap; rpe_all_pairs: every pair (i, i + delta) instead of evo's
            default (0, d), (d, 2d), ... (the same pairs at delta 1; ``evaluate_trajectory``).
    Per sequence:
        sequence_overrides: sequence name -> changes of the fields above (e.g. pose_test.py's
            flow threshold 10 for ``temple_3``); nested ``align_overrides`` are merged.
    """

    task: str = "depth"
    model: str | None = "align3r-depthpro"
    prior: str = "depthpro"
    prior_input: str = "pointmap"
    precision: str = "fp32"
    size: int = 512
    crop: bool = True
    max_frames: int | None = None
    graph: str = "swin-5-noncyclic"
    symmetrize: bool = True
    clamp_window: str = "none"
    clip_size_start: int | None = None
    carry_clip_size: bool = False
    grouped_fit_scale: bool = True
    flow: str = "none"
    flow_weights: str | None = "DEFAULT"
    flow_iterations: int = 20
    align: str = "paper"
    align_overrides: Mapping[str, Any] = field(default_factory=dict)
    depth_alignment: str = "lad"
    depth_max: float | None = 70.0
    depth_protocol: str = "align3r"
    depth_per_frame: bool = False
    depth_post_clip: bool | None = None
    rpe_delta: int = 1
    rpe_all_pairs: bool = False
    sequence_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"task must be one of {TASKS}, got {self.task!r}")
        check_prior_input(self.prior_input)
        if self.clamp_window not in CLAMP_MODES:
            raise InputError(f"clamp_window must be one of {CLAMP_MODES}, got {self.clamp_window!r}")
        if self.max_frames is not None and self.max_frames < 2:
            raise InputError(f"max_frames must be at least 2 (or null), got {self.max_frames}")
        if self.carry_clip_size and self.graph not in GROUPED_GRAPHS:
            raise InputError(f"carry_clip_size needs a grouped graph ({', '.join(GROUPED_GRAPHS)}), "
                             f"not {self.graph!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalSettings:
        """Build from a plain mapping; unknown keys raise ``InputError`` naming the known ones."""
        if "prior_model" in data or "prior_models" in data:
            raise InputError("the prior model is not a row setting: set its weights per prior kind for the whole "
                             "command, prior_models.depthpro=PATH / prior_models.depthanything=PATH (each row "
                             "uses the one of its prior; prior_model=PATH when the run needs one kind only)")
        check_known_fields(cls, data, "evaluation setting(s)")
        values = dict(data)
        values["align_overrides"] = dict(values.get("align_overrides") or {})
        values["sequence_overrides"] = {str(k): dict(v) for k, v in (values.get("sequence_overrides") or {}).items()}
        return cls(**values)

    def for_sequence(self, name: str) -> EvalSettings:
        """These settings with ``sequence_overrides[name]`` applied (and no per-sequence table left)."""
        changes = dict(self.sequence_overrides.get(name, {}))
        if "align_overrides" in changes:
            changes["align_overrides"] = {**self.align_overrides, **dict(changes["align_overrides"])}
        try:
            return replace(self, **changes, sequence_overrides={})
        except TypeError as exc:
            raise InputError(f"bad sequence_overrides for {name!r}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["align_overrides"] = dict(self.align_overrides)
        out["sequence_overrides"] = {k: dict(v) for k, v in self.sequence_overrides.items()}
        return out


@dataclass(frozen=True)
class DatasetSpec:
    """A benchmark as ``align3r.eval.datasets.load_benchmark`` reads it.

    - ``name``: benchmark name (``sintel``, ``bonn``, ``tum``, ``pointodyssey``, ``flyingthings3d``).
    - ``root``: its folder (docs/reproducing.md).
    - ``options``: reader options (``sequences``, ``pass_name``, ``association``, ``split``).
    """

    name: str
    root: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "root": str(self.root), "options": dict(self.options)}


@dataclass(frozen=True)
class Experiment:
    """One method on one dataset: ``name`` is a path-like id (``<table>/<row>/<dataset>``) under
    which its per-sequence results are stored."""

    name: str
    dataset: DatasetSpec
    settings: EvalSettings

    def __post_init__(self) -> None:
        parts = self.name.split("/")
        if not self.name or any(p in ("", ".", "..") for p in parts):
            raise InputError(f"experiment name {self.name!r} must be a relative path like table/row/dataset")


@dataclass(frozen=True)
class Runtime:
    """Settings that do not change a result.

    - ``results``: root folder of the result files.
    - ``device``: ``"auto"`` (CUDA when available; ``cuda:<LOCAL_RANK>`` under torchrun), ``"cpu"``, ...
    - ``batch_size``: pairs per forward (``"auto"``).
    - ``priors``: ``"auto"`` (the official cache files when every one exists, else computed),
      ``"official"`` (required) or ``"compute"`` (always computed with the prior model, cached
      under ``<results>/.cache/priors``).
    - ``prior_models``: prior kind (``depthpro``, ``depthanything``) -> weights of its model when
      priors are computed (Hub id or folder; None: the default weights).
    - ``prior_model``: weights for the kinds ``prior_models`` leaves unset (convenient when a run
      needs one prior kind only; a table whose rows use both kinds needs ``prior_models``).
    - ``overwrite``: recompute sequences that already have a result.
    - ``progress``: tqdm bars.
    """

    results: str = "results"
    device: str = "auto"
    batch_size: int | str = "auto"
    priors: str = "auto"
    prior_model: str | None = None
    overwrite: bool = False
    progress: bool = True
    prior_models: Mapping[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.priors not in PRIOR_POLICIES:
            raise InputError(f"priors must be one of {PRIOR_POLICIES}, got {self.priors!r}")
        unknown = sorted(set(self.prior_models) - set(PRIOR_KINDS))
        if unknown:
            raise InputError(f"prior_models has unknown prior kind(s) {unknown}; kinds: {', '.join(PRIOR_KINDS)}")

    def prior_model_for(self, prior: str) -> str | None:
        """Weights of the model computing ``prior``'s priors: ``prior_models[prior]``, else
        ``prior_model``, else None (the default weights)."""
        chosen = self.prior_models.get(prior)
        return str(chosen) if chosen else (str(self.prior_model) if self.prior_model else None)


def fingerprint(payload: Mapping[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable mapping (keys sorted)."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
