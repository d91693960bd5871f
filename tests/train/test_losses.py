"""Criteria against values computed independently (numpy) and invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from align3r.train.losses import ConfLoss, Regr3D, ScaleShiftInvLoss, avg_dis_normalize


def random_pose(rng) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    pose = np.eye(4)
    pose[:3, :3] = q
    pose[:3, 3] = rng.normal(size=3)
    return pose


def make_batch(b=2, h=6, w=8, seed=0, invalid_fraction=0.2):
    """Views with world GT points and the matching points in camera 1 (what a perfect net predicts).

    ``valid_mask`` is (B, H, W, 2) as the datasets make it; channel 1 (depth > 0) is set
    everywhere, so a loss that read it instead of channel 0 would count the invalid pixels.
    """
    rng = np.random.default_rng(seed)
    views, cam1 = [], []
    poses1 = np.stack([random_pose(rng) for _ in range(b)])
    for _ in range(2):
        local = rng.normal(size=(b, h, w, 3)) + np.array([0, 0, 4.0])
        world = np.einsum("bij,bhwj->bhwi", poses1[:, :3, :3], local) + poses1[:, None, None, :3, 3]
        valid = rng.random((b, h, w)) > invalid_fraction
        views.append({"pts3d": torch.tensor(world, dtype=torch.float32),
                      "camera_pose": torch.tensor(poses1, dtype=torch.float32),
                      "valid_mask": torch.tensor(np.stack((valid, np.ones_like(valid)), axis=-1))})
        cam1.append(local)
    return views[0], views[1], cam1


def loss_mask(view) -> np.ndarray:
    return view["valid_mask"].numpy()[..., 0]


def preds(p1, p2, c1=None, c2=None):
    p1, p2 = torch.tensor(p1, dtype=torch.float32), torch.tensor(p2, dtype=torch.float32)
    c1 = torch.full(p1.shape[:-1], 2.0) if c1 is None else torch.tensor(c1, dtype=torch.float32)
    c2 = torch.full(p2.shape[:-1], 2.0) if c2 is None else torch.tensor(c2, dtype=torch.float32)
    return {"pts3d": p1, "conf": c1}, {"pts3d_in_other_view": p2, "conf": c2}


def avg_dis_np(p1, p2, v1, v2):
    out1, out2 = p1.copy(), p2.copy()
    for i in range(len(p1)):
        norms = np.concatenate([np.linalg.norm(p1[i][v1[i]], axis=-1), np.linalg.norm(p2[i][v2[i]], axis=-1)])
        f = max(norms.sum() / (len(norms) + 1e-8), 1e-8)
        out1[i], out2[i] = p1[i] / f, p2[i] / f
    return out1, out2


def test_perfect_prediction_leaves_only_the_confidence_term():
    v1, v2, (l1, l2) = make_batch()
    p1, p2 = preds(l1, l2)
    dist1, dist2, _, _ = Regr3D()(v1, v2, p1, p2)
    assert dist1.abs().max() < 1e-5 and dist2.abs().max() < 1e-5
    loss, details = ConfLoss(alpha=0.2)(v1, v2, p1, p2)
    assert loss.item() == pytest.approx(2 * (-0.2 * np.log(2.0)), abs=1e-5)
    assert details["regr3d_1"] < 1e-5


def test_avg_dis_makes_the_loss_scale_invariant():
    v1, v2, (l1, l2) = make_batch(seed=1)
    p1, p2 = preds(3.7 * l1, 3.7 * l2)
    dist1, dist2, _, _ = Regr3D("avg_dis")(v1, v2, p1, p2)
    assert dist1.abs().max() < 1e-5 and dist2.abs().max() < 1e-5
    d_raw, _, _, _ = Regr3D(None)(v1, v2, p1, p2)
    assert d_raw.mean() > 1  # without normalisation the scale error shows


def test_conf_loss_matches_an_independent_computation():
    v1, v2, (l1, l2) = make_batch(seed=2)
    rng = np.random.default_rng(3)
    q1, q2 = l1 * 1.3 + rng.normal(scale=0.1, size=l1.shape), l2 * 1.3 + rng.normal(scale=0.1, size=l2.shape)
    c1, c2 = 1 + rng.exponential(size=l1.shape[:-1]), 1 + rng.exponential(size=l2.shape[:-1])
    m1, m2 = loss_mask(v1), loss_mask(v2)
    # invalid pixels must not matter at all
    q1[~m1] = 1e6
    loss, _ = ConfLoss(alpha=0.2)(v1, v2, *preds(q1, q2, c1, c2))
    g1, g2 = avg_dis_np(l1, l2, m1, m2)
    r1, r2 = avg_dis_np(np.where(m1[..., None], q1, 0), q2, m1, m2)
    expected = 0.0
    for r, g, c, m in ((r1, g1, c1, m1), (r2, g2, c2, m2)):
        dist = np.linalg.norm(r[m] - g[m], axis=-1)
        expected += np.mean(dist * c[m] - 0.2 * np.log(c[m]))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_avg_dis_factor_known_value():
    p1 = torch.zeros(1, 1, 2, 3)
    p1[0, 0, 0] = torch.tensor([3.0, 4.0, 0.0])  # norm 5
    p1[0, 0, 1] = torch.tensor([0.0, 0.0, 100.0])  # invalid
    p2 = torch.zeros(1, 1, 1, 3)
    p2[0, 0, 0, 2] = 1.0  # norm 1
    n1, n2 = avg_dis_normalize(p1, p2, torch.tensor([[[True, False]]]), torch.tensor([[[True]]]))
    assert n2[0, 0, 0, 2].item() == pytest.approx(1 / 3)  # factor (5 + 1) / 2
    assert n1[0, 0, 0].tolist() == pytest.approx([1.0, 4 / 3, 0.0])


def test_gradients_reach_points_and_confidence():
    v1, v2, (l1, l2) = make_batch(seed=4)
    p1, p2 = preds(l1 + 0.1, l2)
    p1["pts3d"].requires_grad_(True)
    p1["conf"].requires_grad_(True)
    loss, _ = ConfLoss(alpha=0.2)(v1, v2, p1, p2)
    loss.backward()
    assert p1["pts3d"].grad.abs().sum() > 0 and p1["conf"].grad.abs().sum() > 0
    assert torch.all(p1["pts3d"].grad[~v1["valid_mask"][..., 0]] == 0)


def test_non_finite_gt_points_at_invalid_pixels_do_not_matter():
    """The datasets mark non-finite GT points invalid; the losses must then ignore them entirely."""
    v1, v2, (l1, l2) = make_batch(seed=9)
    p1, p2 = preds(1.2 * l1, l2 + 0.1)
    expected = [ConfLoss(alpha=0.2)(v1, v2, p1, p2)[0].item(), ScaleShiftInvLoss()(v1, v2, p1, p2)[0].item()]
    for view in (v1, v2):
        view["pts3d"][~view["valid_mask"][..., 0]] = float("nan")
    losses = [ConfLoss(alpha=0.2)(v1, v2, p1, p2)[0].item(), ScaleShiftInvLoss()(v1, v2, p1, p2)[0].item()]
    assert losses == pytest.approx(expected, rel=1e-6)


def test_empty_view_contributes_zero():
    v1, v2, (l1, l2) = make_batch(seed=5)
    v2["valid_mask"][:] = False
    loss, details = ConfLoss(alpha=0.2)(v1, v2, *preds(l1, l2))
    assert details["conf_loss_2"] == 0.0 and torch.isfinite(loss)


def lower_median(x):
    return np.sort(x)[(len(x) - 1) // 2]


def test_scale_shift_invariant_loss_ignores_scale_and_depth_shift():
    v1, v2, (l1, l2) = make_batch(seed=6)
    shift = np.array([0, 0, 2.5])
    loss, _ = ScaleShiftInvLoss()(v1, v2, *preds(0.4 * l1 + shift, 0.4 * l2 + shift))
    assert loss.item() < 1e-5


def test_scale_shift_invariant_loss_known_value():
    v1, v2, (l1, l2) = make_batch(b=1, seed=7)
    rng = np.random.default_rng(8)
    q1, q2 = l1 + rng.normal(scale=0.3, size=l1.shape), l2 + rng.normal(scale=0.3, size=l2.shape)
    loss, _ = ScaleShiftInvLoss()(v1, v2, *preds(q1, q2))
    m1, m2 = loss_mask(v1)[0], loss_mask(v2)[0]
    # independent numpy version (gt_scale=True: only the prediction is avg_dis-normalised)
    r1, r2 = avg_dis_np(q1, q2, loss_mask(v1), loss_mask(v2))
    gt = np.concatenate([l1[0][m1], l2[0][m2]])
    pr = np.concatenate([r1[0][m1], r2[0][m2]])
    gt[:, 2] -= lower_median(gt[:, 2])
    pr[:, 2] -= lower_median(pr[:, 2])

    def spread(p):
        centre = np.array([lower_median(p[:, i]) for i in range(3)])
        return lower_median(np.linalg.norm(p - centre, axis=1))

    pr *= spread(gt) / np.clip(spread(pr), 1e-3, 1e3)
    dist = np.linalg.norm(pr - gt, axis=1)
    n1 = m1.sum()
    expected = dist[:n1].mean() + dist[n1:].mean()
    assert loss.item() == pytest.approx(expected, rel=1e-5)
