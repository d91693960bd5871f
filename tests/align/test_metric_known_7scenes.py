"""Metric scale and known poses on the real 7-Scenes clip, with oracle predictions.

Pair predictions are computed exactly from the clip's ground-truth depth and poses (times a
random per-edge scale, with 1 % noise: ``align3r.align.synthetic``), so the aligner recovers the
geometry up to one global scale and the metric-scale and known-pose rules are what is tested.
Twelve frames (every 8th), downscaled 10x (64 x 48): a few seconds on a CPU.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from align3r.align import align, preset
from align3r.align.metric import metric_scale_factor
from align3r.align.synthetic import SyntheticScene
from align3r.eval.pose_metrics import evaluate_trajectory
from align3r.pairs import make_graph
from align3r.priors.pointmap import repair_depth

FRAMES = range(0, 96, 8)
DOWN = 10  # 640 x 480 -> 64 x 48
FOCAL = 585.0 / DOWN


@pytest.fixture(scope="module")
def seven_scenes(data_dir):
    """(poses (N, 4, 4) metres, sensor depth (N, H, W) metres with 0 = hole, hole-filled depth)."""
    folder = data_dir / "seven_scenes_redkitchen_tsdf" / "data"
    poses, raw, filled = [], [], []
    for k in FRAMES:
        poses.append(np.loadtxt(folder / f"frame-{k:06d}.pose.txt"))
        mm = cv2.imread(str(folder / f"frame-{k:06d}.depth.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 1000
        small = mm[DOWN // 2::DOWN, DOWN // 2::DOWN]  # nearest: no mixing across holes or edges
        raw.append(small)
        filled.append(repair_depth(small, max_invalid_fraction=0.5)[0])
    to = lambda a: torch.from_numpy(np.stack(a)).float()  # noqa: E731
    return to(poses), to(raw), to(filled)


def _oracle(poses, depth):
    scene = SyntheticScene(cam2world=poses, depth=depth, focal=FOCAL)
    graph = make_graph("swin-3-noncyclic", len(poses))
    return scene.predictions(graph.edges, noise=0.01, log_scale_range=0.5, seed=3)


def _config():
    return preset("paper", iterations=150, temporal_weight=0.0, flow_weight=0.0)


def path_length(cam2world: torch.Tensor) -> float:
    return float(cam2world[1:, :3, 3].sub(cam2world[:-1, :3, 3]).norm(dim=-1).sum())


def test_metric_scale_puts_depth_and_path_in_metres(seven_scenes):
    poses, raw, filled = seven_scenes
    rec = align(_oracle(poses, filled), _config(), progress=False)
    scale = metric_scale_factor(rec.depth, filled, rec.conf, rec.dynamic_mask)
    metric = rec.scaled(scale.factor)
    valid = raw > 0
    ratio = float((metric.depth[valid] / raw[valid]).median())
    length, gt_length = path_length(metric.cam2world), path_length(poses)
    print(f"factor {scale.factor:.4f}, spread {scale.spread:.4f}, pixels {scale.pixels_used}/{scale.pixels_total}, "
          f"depth ratio {ratio:.4f}, path {length:.4f} m vs {gt_length:.4f} m")
    assert abs(ratio - 1) < 0.02
    assert abs(length / gt_length - 1) < 0.05
    assert scale.pixels_used > 0.5 * scale.pixels_total
    assert scale.spread < 0.05 and len(scale.frame_factors) == len(poses)
    # the relative reconstruction was not in metres (base_scale units): the factor did the work
    assert abs(float((rec.depth[valid] / raw[valid]).median()) - 1) > 0.1


def test_fixed_known_poses_are_written_as_given(seven_scenes):
    poses, _, filled = seven_scenes
    rec = align(_oracle(poses, filled), _config().replace(known_poses_fixed=True), known_poses=poses,
                progress=False)
    torch.testing.assert_close(rec.cam2world, poses, rtol=0, atol=1e-6)


def test_known_poses_as_initialisation_do_not_worsen_ate(seven_scenes):
    poses, _, filled = seven_scenes
    preds = _oracle(poses, filled)
    without = align(preds, _config(), progress=False)
    with_init = align(preds, _config().replace(known_poses_fixed=False), known_poses=poses, progress=False)
    ate_without = evaluate_trajectory(without.cam2world.double().numpy(), poses.double().numpy()).ate
    ate_with = evaluate_trajectory(with_init.cam2world.double().numpy(), poses.double().numpy()).ate
    print(f"ATE without poses {ate_without * 1000:.2f} mm, initialised with them {ate_with * 1000:.2f} mm")
    assert ate_with <= ate_without * 1.05 + 1e-4
