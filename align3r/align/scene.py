"""The parameters of the global alignment, as a small ``nn.Module``.

Per frame: a depth map (log-depth, or a log-scale map over a monocular depth plus a shift), a
camera-to-world pose (quaternion + signed-log1p translation) and a focal (``20 log f``, shared or
per frame; principal point fixed). Per edge: a similarity (quaternion, signed-log1p translation,
log-scale) that maps the edge's point maps into the world, with the scales normalised to a fixed
geometric mean so the global scale cannot collapse. The parametrisation is the official
optimizer's, so Adam sees the same coordinates and the official settings transfer unchanged.

Memory (float32): 3 N H W for the depth parameters and their Adam moments, plus O(N + E) for the
rest. :meth:`SceneModel.evaluate` never builds world points; the loss terms work in each frame's
camera (:meth:`SceneModel.world_points` exists for exports and tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import roma
import torch
from torch import Tensor, nn

from align3r.geometry import pose_matrix, signed_expm1, signed_log1p

# The official optimizer stores 20 log f: Adam then moves the focal by ~lr/20 in log space per step.
FOCAL_BREAK = 20.0


@dataclass
class SceneState:
    """Everything the loss terms need at one iteration (differentiable w.r.t. the parameters).

    - ``depth``: (N, H*W); ``rotations``: (N, 3, 3); ``translations``: (N, 3); ``focals``: (N,);
    - ``edge_linear``: (E, 3, 3) = s R; ``edge_offset``: (E, 3) = s t.
    """

    depth: Tensor
    rotations: Tensor
    translations: Tensor
    focals: Tensor
    edge_linear: Tensor
    edge_offset: Tensor


class SceneModel(nn.Module):
    """Optimisable scene: depth, poses and focals of N frames, similarities of E edges.

    Args:
        num_frames, num_edges: N and E.
        height, width: network resolution H x W of every frame.
        shared_focal: one focal parameter for all frames.
        parametrisation: ``"depth"`` (per-pixel log-depth) or ``"scale_map"``
            (depth = mono_depth * exp(per-pixel log-scale) + per-frame shift).
        mono_depth: (N, H, W) positive monocular depth, required for ``"scale_map"``.
        base_scale: geometric mean the effective edge scales are pinned to.
        normalise_edge_scale: pin the edge scales (off when fixed known poses set the scale).
    """

    def __init__(self, num_frames: int, num_edges: int, height: int, width: int, *, shared_focal: bool = True,
                 parametrisation: str = "depth", mono_depth: Tensor | None = None, base_scale: float = 0.5,
                 normalise_edge_scale: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        n, e, hw = num_frames, num_edges, height * width
        kw = dict(device=device, dtype=dtype)
        self.height, self.width = height, width
        self.parametrisation = parametrisation
        self.normalise_edge_scale = normalise_edge_scale
        identity_quat = torch.tensor([0.0, 0.0, 0.0, 1.0], **kw)  # roma order: xyzw

        # Log-depth, or log-scale over the monocular depth.
        self.depth_param = nn.Parameter(torch.zeros(n, hw, **kw))
        if parametrisation == "scale_map":
            if mono_depth is None:
                raise ValueError("parametrisation 'scale_map' needs mono_depth (N, H, W)")
            self.depth_shift = nn.Parameter(torch.zeros(n, **kw))
            self.register_buffer("mono_depth", mono_depth.reshape(n, hw).to(**kw), persistent=False)
        elif parametrisation == "depth":
            self.register_parameter("depth_shift", None)
            self.register_buffer("mono_depth", None, persistent=False)
        else:
            raise ValueError(f"unknown parametrisation {parametrisation!r}")

        self.pose_quat = nn.Parameter(identity_quat.repeat(n, 1))
        self.pose_trans = nn.Parameter(torch.zeros(n, 3, **kw))
        self.focal_param = nn.Parameter(torch.full((1 if shared_focal else n,), FOCAL_BREAK * math.log(max(height, width)),
                                                   **kw))
        self.edge_quat = nn.Parameter(identity_quat.repeat(e, 1))
        self.edge_trans = nn.Parameter(torch.zeros(e, 3, **kw))
        self.edge_log_scale = nn.Parameter(torch.full((e,), math.log(base_scale), **kw))

        self.register_buffer("log_base_scale", torch.tensor(math.log(base_scale), **kw), persistent=False)
        self.register_buffer("principal_point", torch.tensor([width / 2, height / 2], **kw).repeat(n, 1),
                             persistent=False)
        v, u = torch.meshgrid(torch.arange(height, **kw), torch.arange(width, **kw), indexing="ij")
        self.register_buffer("pixels", torch.stack((u.reshape(-1), v.reshape(-1))), persistent=False)  # (2, HW)

    # ----------------------------------------------------------------------------------- sizes
    @property
    def num_frames(self) -> int:
        return int(self.pose_quat.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.edge_quat.shape[0])

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by group (``depth``, ``pose``, ``focal``, ``edge``)."""
        groups = {
            "depth": [self.depth_param] + ([self.depth_shift] if self.depth_shift is not None else []),
            "pose": [self.pose_quat, self.pose_trans],
            "focal": [self.focal_param],
            "edge": [self.edge_quat, self.edge_trans, self.edge_log_scale],
        }
        return {k: [p for p in v if p.requires_grad] for k, v in groups.items()}

    # ------------------------------------------------------------------------- frame quantities
    def depth(self) -> Tensor:
        """(N, H*W) z-depth."""
        if self.parametrisation == "scale_map":
            return self.mono_depth * self.depth_param.exp() + self.depth_shift[:, None]
        return self.depth_param.exp()

    def depth_maps(self) -> Tensor:
        """(N, H, W) z-depth."""
        return self.depth().reshape(-1, self.height, self.width)

    def rotations(self) -> Tensor:
        """(N, 3, 3) camera-to-world rotations (quaternions normalised at use)."""
        return roma.unitquat_to_rotmat(roma.quat_normalize(self.pose_quat))

    def translations(self) -> Tensor:
        """(N, 3) camera centres in the world."""
        return signed_expm1(self.pose_trans)

    def cam2world(self) -> Tensor:
        """(N, 4, 4) camera-to-world poses."""
        return pose_matrix(self.rotations(), self.translations())

    def focals(self) -> Tensor:
        """(N,) focal lengths in pixels."""
        return (self.focal_param / FOCAL_BREAK).exp().expand(self.num_frames)

    def intrinsics(self, focals: Tensor | None = None) -> Tensor:
        """(N, 3, 3) pinhole intrinsics (from ``focals`` (N,) when given, e.g. a :class:`SceneState`'s)."""
        f = self.focals() if focals is None else focals
        k = torch.zeros(self.num_frames, 3, 3, dtype=f.dtype, device=f.device)
        k[:, 0, 0] = f
        k[:, 1, 1] = f
        k[:, :2, 2] = self.principal_point
        k[:, 2, 2] = 1
        return k

    def world_points(self) -> Tensor:
        """(N, 3, H*W) world coordinates of every pixel, channels first (the loss's layout)."""
        depth = self.depth()
        rays = (self.pixels[None] - self.principal_point[:, :, None]) / self.focals()[:, None, None]  # (N, 2, HW)
        cam = torch.cat((rays * depth[:, None], depth[:, None]), dim=1)  # (N, 3, HW)
        return torch.baddbmm(self.translations()[:, :, None], self.rotations(), cam)

    # ------------------------------------------------------------------------ edge quantities
    def edge_scales(self) -> Tensor:
        """(E,) effective edge scales (geometric mean pinned to the base scale when normalised)."""
        log_scale = self.edge_log_scale
        if self.normalise_edge_scale:
            log_scale = log_scale - log_scale.mean() + self.log_base_scale
        return log_scale.exp()

    def edge_similarity(self) -> tuple[Tensor, Tensor]:
        """Per-edge map ``x -> A x + b`` into the world: A (E, 3, 3) = s R, b (E, 3) = s t."""
        scale = self.edge_scales()
        rot = roma.unitquat_to_rotmat(roma.quat_normalize(self.edge_quat))
        return rot * scale[:, None, None], signed_expm1(self.edge_trans) * scale[:, None]

    # ----------------------------------------------------------------------- one evaluation
    def evaluate(self) -> SceneState:
        """All per-iteration quantities with shared intermediates: frame and edge rotations go
        through one roma call, translations through one signed-expm1 (fewer, larger kernels)."""
        n = self.num_frames
        rot = roma.unitquat_to_rotmat(roma.quat_normalize(torch.cat((self.pose_quat, self.edge_quat))))
        trans = signed_expm1(torch.cat((self.pose_trans, self.edge_trans)))
        scale = self.edge_scales()
        return SceneState(depth=self.depth(), rotations=rot[:n], translations=trans[:n], focals=self.focals(),
                          edge_linear=rot[n:] * scale[:, None, None], edge_offset=trans[n:] * scale[:, None])

    # ------------------------------------------------------------------------------- setting
    @torch.no_grad()
    def set_state(self, *, depth: Tensor | None = None, cam2world: Tensor | None = None, focals: Tensor | None = None,
                  edge_rotation: Tensor | None = None, edge_translation: Tensor | None = None,
                  edge_scale: Tensor | None = None, principal_point: Tensor | None = None) -> None:
        """Set parameters from explicit values (any subset).

        Args:
            depth: (N, H, W) positive depth. In ``scale_map`` mode each frame's log-scale starts
                at the log of the median ratio depth / mono_depth (the shape comes from the
                monocular depth, the scale from ``depth``) and the shift at 0.
            cam2world: (N, 4, 4) rigid poses.
            focals: (N,) focal lengths (their mean when the focal is shared).
            edge_rotation, edge_translation, edge_scale: (E, 3, 3), (E, 3), (E,): the effective
                similarity ``x -> s R x + t`` of each edge (``t`` already includes the scale).
            principal_point: (N, 2) pixels.
        """
        if depth is not None:
            depth = depth.reshape(self.num_frames, -1).to(self.depth_param)
            if self.parametrisation == "scale_map":
                ratio = (depth / self.mono_depth).clamp_min(1e-12).median(dim=1).values
                self.depth_param.copy_(ratio.log()[:, None].expand_as(self.depth_param))
                self.depth_shift.zero_()
            else:
                self.depth_param.copy_(depth.log().nan_to_num(nan=0.0, posinf=0.0, neginf=0.0))
        if cam2world is not None:
            cam2world = cam2world.to(self.pose_quat)
            self.pose_quat.copy_(roma.rotmat_to_unitquat(cam2world[:, :3, :3]))
            self.pose_trans.copy_(signed_log1p(cam2world[:, :3, 3]))
        if focals is not None:
            focals = focals.to(self.focal_param).reshape(-1)
            value = focals.mean().expand(1) if self.focal_param.numel() == 1 else focals
            self.focal_param.copy_(FOCAL_BREAK * value.log())
        if edge_rotation is not None:
            self.edge_quat.copy_(roma.rotmat_to_unitquat(edge_rotation.to(self.edge_quat)))
        if edge_scale is not None:
            self.edge_log_scale.copy_(edge_scale.to(self.edge_log_scale).log())
        if edge_translation is not None:
            scale = self.edge_log_scale.exp() if edge_scale is None else edge_scale.to(self.edge_trans)
            self.edge_trans.copy_(signed_log1p(edge_translation.to(self.edge_trans) / scale[:, None]))
        if principal_point is not None:
            self.principal_point.copy_(principal_point.to(self.principal_point).reshape(-1, 2))

    @torch.no_grad()
    def pin_scale_to_current(self) -> None:
        """Make the current mean edge log-scale the normalisation target (keeps given units)."""
        self.log_base_scale.copy_(self.edge_log_scale.mean())
