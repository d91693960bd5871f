"""Training and test criteria (official ``dust3r/losses.py``, ``ConfLoss``, ``Regr3D`` and
``Regr3D_ScaleShiftInv``).

Both compare the network's two point maps, expressed in view 1's camera, with the GT points of
both views moved into view 1's camera (``inv(pose1) · X_world``), on the pixels where
``valid_mask`` holds.

- :class:`ConfLoss` (training, the reference's ``ConfLoss(Regr3D(L21, norm_mode='avg_dis'),
  alpha=0.2)``): prediction and GT are each divided by their mean distance to the origin over the
  valid pixels of both views (``avg_dis``); per pixel ℓ = ‖x̂ − x‖₂; per view the mean over all
  valid pixels of the batch of ``ℓ·c − α·log c`` with c the predicted confidence; sum of views.
- :class:`ScaleShiftInvLoss` (test, ``Regr3D_ScaleShiftInv(L21, gt_scale=True)``): only the
  prediction is ``avg_dis``-normalised; both then have their joint median depth subtracted from z;
  the prediction is rescaled to the GT's median distance to the joint median point
  (clipped ratio); the loss is the mean ℓ per view, summed.

Inputs: ``view{1,2}`` hold ``pts3d`` (B, H, W, 3) world GT, ``camera_pose`` (B, 4, 4)
camera-to-world and ``valid_mask`` (B, H, W, 2) bool, of which channel 0 (0 < depth < 400) is used
(the reference's ``valid_mask[..., 0]``); ``pred1["pts3d"]``,
``pred2["pts3d_in_other_view"]`` (B, H, W, 3) and ``pred{1,2}["conf"]`` (B, H, W). Losses are
computed in float32 whatever the autocast state.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from align3r.geometry import invert_pose, transform_points

NORM_MODES = ("avg_dis",)


def gt_points_in_view1(view1: dict[str, Any], view2: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """GT point maps of both views in view 1's camera frame, (B, H, W, 3) each."""
    world_to_cam1 = invert_pose(view1["camera_pose"].float())
    return (transform_points(world_to_cam1, view1["pts3d"].float()),
            transform_points(world_to_cam1, view2["pts3d"].float()))


def avg_dis_normalize(pts1: Tensor, pts2: Tensor, valid1: Tensor, valid2: Tensor) -> tuple[Tensor, Tensor]:
    """Divide both point maps by their mean distance to the origin over the valid pixels.

    Args:
        pts1, pts2: (B, H, W, 3). valid1, valid2: (B, H, W) bool.
    Returns:
        The two maps divided by the per-sample factor Σ‖x‖ / (n₁ + n₂ + 1e-8), clamped ≥ 1e-8.
    """
    # where, not a product: invalid pixels may hold non-finite GT points (NaN · 0 = NaN)
    dist = (torch.where(valid1, pts1.norm(dim=-1), 0).flatten(1).sum(1)
            + torch.where(valid2, pts2.norm(dim=-1), 0).flatten(1).sum(1))
    count = valid1.flatten(1).sum(1) + valid2.flatten(1).sum(1)
    factor = (dist / (count + 1e-8)).clamp(min=1e-8)[:, None, None, None]
    return pts1 / factor, pts2 / factor


def _masked_nanmedian(values: Tensor, mask: Tensor) -> Tensor:
    """Per-sample median over masked entries (B, N) → (B,) (torch's lower median for even counts)."""
    return torch.where(mask, values, torch.full_like(values, float("nan"))).nanmedian(dim=1).values


def _joint(a: Tensor, b: Tensor) -> Tensor:
    """Concatenate two (B, H, W, ...) maps into (B, N1 + N2, ...)."""
    return torch.cat((a.flatten(1, 2), b.flatten(1, 2)), dim=1)


class Regr3D(nn.Module):
    """Per-pixel 3-D regression distances after normalisation (the reference's ``Regr3D(L21)``).

    Args:
        norm_mode: ``"avg_dis"`` (or None for no normalisation).
        gt_scale: normalise the prediction only (the GT keeps its metric scale).
    """

    def __init__(self, norm_mode: str | None = "avg_dis", gt_scale: bool = False):
        super().__init__()
        if norm_mode is not None and norm_mode not in NORM_MODES:
            raise ValueError(f"norm_mode must be one of {NORM_MODES} or None, got {norm_mode!r}")
        self.norm_mode = norm_mode
        self.gt_scale = gt_scale

    def aligned_points(self, view1, view2, pred1, pred2):
        """(gt1, gt2, pr1, pr2, valid1, valid2), all in view 1's camera, normalised."""
        gt1, gt2 = gt_points_in_view1(view1, view2)
        valid1, valid2 = view1["valid_mask"][..., 0].bool(), view2["valid_mask"][..., 0].bool()
        pr1, pr2 = pred1["pts3d"].float(), pred2["pts3d_in_other_view"].float()
        if self.norm_mode:
            pr1, pr2 = avg_dis_normalize(pr1, pr2, valid1, valid2)
            if not self.gt_scale:
                gt1, gt2 = avg_dis_normalize(gt1, gt2, valid1, valid2)
        return gt1, gt2, pr1, pr2, valid1, valid2

    def forward(self, view1, view2, pred1, pred2) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Distances (N1,), (N2,) over the valid pixels of the batch, and the masks (B, H, W)."""
        gt1, gt2, pr1, pr2, valid1, valid2 = self.aligned_points(view1, view2, pred1, pred2)
        return (pr1[valid1] - gt1[valid1]).norm(dim=-1), (pr2[valid2] - gt2[valid2]).norm(dim=-1), valid1, valid2


class ConfLoss(nn.Module):
    """Confidence-weighted regression: per view mean(ℓ·c − α·log c) over valid pixels, summed.

    A view without any valid pixel contributes 0.
    """

    def __init__(self, pixel_loss: Regr3D | None = None, alpha: float = 0.2):
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        self.pixel_loss = pixel_loss if pixel_loss is not None else Regr3D("avg_dis")
        self.alpha = float(alpha)

    def forward(self, view1, view2, pred1, pred2) -> tuple[Tensor, dict[str, float]]:
        with torch.autocast(device_type=pred1["conf"].device.type, enabled=False):
            dist1, dist2, valid1, valid2 = self.pixel_loss(view1, view2, pred1, pred2)
            terms = []
            for dist, conf, valid in ((dist1, pred1["conf"], valid1), (dist2, pred2["conf"], valid2)):
                c = conf.float()[valid]
                term = dist * c - self.alpha * torch.log(c)
                terms.append(term.mean() if term.numel() else dist.new_zeros(()))
            loss = terms[0] + terms[1]
        details = {
            "conf_loss_1": float(terms[0].detach()),
            "conf_loss_2": float(terms[1].detach()),
            "regr3d_1": float(dist1.detach().mean()) if dist1.numel() else 0.0,
            "regr3d_2": float(dist2.detach().mean()) if dist2.numel() else 0.0,
        }
        return loss, details


class ScaleShiftInvLoss(nn.Module):
    """The test criterion: shift- (median z) and scale- (median norm) invariant mean distance."""

    def __init__(self, gt_scale: bool = True):
        super().__init__()
        self.regr = Regr3D("avg_dis", gt_scale=gt_scale)
        self.gt_scale = gt_scale

    @torch.no_grad()
    def forward(self, view1, view2, pred1, pred2) -> tuple[Tensor, dict[str, float]]:
        with torch.autocast(device_type=pred1["conf"].device.type, enabled=False):
            gt1, gt2, pr1, pr2, valid1, valid2 = self.regr.aligned_points(view1, view2, pred1, pred2)
            valid = _joint(valid1, valid2)
            gt, pr = _joint(gt1, gt2).clone(), _joint(pr1, pr2).clone()
            # shift invariance: subtract the joint median depth from z, separately for GT and prediction
            gt[..., 2] -= _masked_nanmedian(gt[..., 2], valid)[:, None]
            pr[..., 2] -= _masked_nanmedian(pr[..., 2], valid)[:, None]
            # scale invariance: median distance to the per-axis median point
            gt_scale = self._median_spread(gt, valid)
            pr_scale = self._median_spread(pr, valid).clamp(1e-3, 1e3)
            if self.gt_scale:
                pr = pr * (gt_scale / pr_scale)[:, None, None]
            else:
                gt, pr = gt / gt_scale[:, None, None], pr / pr_scale[:, None, None]
            dist = (pr - gt).norm(dim=-1)
            n1 = valid1.flatten(1).shape[1]
            d1, d2 = dist[:, :n1][valid[:, :n1]], dist[:, n1:][valid[:, n1:]]
            l1 = d1.mean() if d1.numel() else dist.new_zeros(())
            l2 = d2.mean() if d2.numel() else dist.new_zeros(())
        return l1 + l2, {"regr3d_ssi_1": float(l1), "regr3d_ssi_2": float(l2)}

    @staticmethod
    def _median_spread(pts: Tensor, valid: Tensor) -> Tensor:
        """(B,) median over valid points of ‖x − median point‖ (median taken per coordinate)."""
        masked = torch.where(valid[..., None], pts, torch.full_like(pts, float("nan")))
        centre = masked.nanmedian(dim=1, keepdim=True).values
        return _masked_nanmedian((pts - centre).norm(dim=-1), valid)
