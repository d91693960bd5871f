"""Settings of the global alignment and the named presets.

Defaults are the paper's (supplementary: 300 iterations, Adam lr 0.05, cosine schedule) with the
MonST3R flow term and temporal smoothing the official video scripts use. Presets name the
settings of the official scripts so their results can be reproduced on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from align3r.errors import InputError, check_known_fields


@dataclass(frozen=True)
class AlignConfig:
    """Every knob of :func:`align3r.align.align`.

    Optimisation:
        iterations: Adam steps (paper: 300).
        lr, lr_min: learning rate at the start and at the end of the schedule. ``lr_min`` is
            1e-3 as in the official flow aligner (the non-flow copy uses 1e-6: preset
            ``"depth_test"``).
        schedule: ``"cosine"`` (paper) or ``"linear"`` (official demo).
        warmup_iterations: linear ramp of the learning rate from ``lr / warmup`` to the schedule
            over the first iterations (0 = none, as the official code). Used by preset ``"fast"``.
        adam_betas: Adam's (beta1, beta2); the official aligner uses (0.9, 0.9).
        lr_scales: per-parameter-group multipliers of the learning rate, keys among ``depth``,
            ``pose``, ``focal``, ``edge`` (1 when absent).

    Parametrisation:
        parametrisation: ``"depth"`` (per-pixel log-depth) or ``"scale_map"`` (depth =
            mono_depth * exp(per-pixel log-scale) + per-frame shift; needs ``mono_depth``).
        shared_focal: one focal for the whole video (official video scripts) or one per frame.
        base_scale: geometric mean the per-edge scales are pinned to (fixes the global scale).

    Loss:
        min_conf_thr: raw confidence above which a pixel is trusted for PnP (initialisation and
            self-motion masks); the 3-D loss itself weights every pixel by log(conf).
        conf_override: when set, every raw confidence above 1 is replaced by this value before
            alignment (official ``depth_test.py`` uses 10, i.e. uniform weights).
        temporal_weight, translation_weight: temporal smoothness of consecutive camera poses,
            ``sum ||R_rel - I||_F + translation_weight * ||t_rel||``.
        flow_weight: weight of the MonST3R flow loss (active only when a flow is given).
        flow_start: fraction of the iterations after which the flow loss is switched on.
        flow_threshold: an iteration whose (unweighted) flow loss exceeds this uses 0 instead.
        flow_pixel_cutoff: per-pixel smooth-L1 values at or above this are ignored.
        motion_mask_threshold: normalised ego-flow error above which a pixel is dynamic.

    Initialisation:
        mst_stale_focal: reproduce the official MST quirk that estimates a newly met frame's
            focal from the previously processed edge (needed to match the official initial state
            bit for bit; it changes the initial focals by < 0.1 %).
        pnp_iterations: RANSAC iterations of the PnP that poses frames no tree edge reaches.
        motion_pnp_iterations: RANSAC iterations of the two-view PnP behind the motion masks.

    Known quantities:
        known_intrinsics_fixed: user intrinsics are held fixed (True) or only initialise (False).
        known_poses_fixed: user poses are held fixed (True) or only initialise (False).
    """

    iterations: int = 300
    lr: float = 0.05
    lr_min: float = 1e-3
    schedule: Literal["cosine", "linear"] = "cosine"
    warmup_iterations: int = 0
    adam_betas: tuple[float, float] = (0.9, 0.9)
    lr_scales: tuple[tuple[str, float], ...] = ()

    parametrisation: Literal["depth", "scale_map"] = "depth"
    shared_focal: bool = True
    base_scale: float = 0.5

    min_conf_thr: float = 3.0
    conf_override: float | None = None
    temporal_weight: float = 0.01
    translation_weight: float = 1.0
    flow_weight: float = 0.01
    flow_start: float = 0.1
    flow_threshold: float = 25.0
    flow_pixel_cutoff: float = 50.0
    motion_mask_threshold: float = 0.35

    mst_stale_focal: bool = True
    pnp_iterations: int = 10
    motion_pnp_iterations: int = 100

    known_intrinsics_fixed: bool = True
    known_poses_fixed: bool = True

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise InputError(f"iterations must be >= 0, got {self.iterations}")
        if self.lr < 0 or self.lr_min < 0:
            raise InputError(f"learning rates must be >= 0, got lr={self.lr}, lr_min={self.lr_min}")
        if self.schedule not in ("cosine", "linear"):
            raise InputError(f"schedule must be 'cosine' or 'linear', got {self.schedule!r}")
        if self.parametrisation not in ("depth", "scale_map"):
            raise InputError(f"parametrisation must be 'depth' or 'scale_map', got {self.parametrisation!r}")
        if self.base_scale <= 0:
            raise InputError(f"base_scale must be > 0, got {self.base_scale}")
        unknown = {k for k, _ in self.lr_scales} - {"depth", "pose", "focal", "edge"}
        if unknown:
            raise InputError(f"lr_scales keys must be among depth, pose, focal, edge; got {sorted(unknown)}")

    def lr_scale(self, group: str) -> float:
        return dict(self.lr_scales).get(group, 1.0)

    def replace(self, **changes) -> AlignConfig:
        """A copy with some fields changed (unknown names raise)."""
        check_known_fields(self, changes, "AlignConfig field(s)")
        return replace(self, **changes)


PRESETS: dict[str, AlignConfig] = {
    # Paper (supplementary): 300 iterations, lr 0.05, cosine; MonST3R flow + temporal terms.
    "paper": AlignConfig(),
    # Official tool/demo.py: lr 0.01, linear schedule, flow threshold 25.
    "demo": AlignConfig(lr=0.01, schedule="linear"),
    # Official tool/pose_test.py: as the demo with the flow threshold at 40.
    "pose_test": AlignConfig(lr=0.01, schedule="linear", flow_threshold=40.0),
    # Official tool/depth_test.py (non-flow aligner): conf -> 10, per-frame focal, no temporal or
    # flow term, lr_min 1e-6.
    "depth_test": AlignConfig(conf_override=10.0, shared_focal=False, temporal_weight=0.0, flow_weight=0.0,
                              lr_min=1e-6),
    # Ours: a 30-iteration warm-up and smaller steps for poses, edge similarities (x0.2) and depth
    # (x0.5) keep the spanning-tree initialisation instead of throwing it away in the first Adam
    # steps; half the iterations for an equal or lower loss (docs/align.md has the measurements).
    "fast": AlignConfig(iterations=150, warmup_iterations=30,
                        lr_scales=(("pose", 0.2), ("edge", 0.2), ("depth", 0.5))),
}


def preset(name: str, **overrides) -> AlignConfig:
    """The named preset (``paper``, ``demo``, ``pose_test``, ``depth_test``, ``fast``), optionally changed."""
    if name not in PRESETS:
        raise InputError(f"unknown alignment preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]
