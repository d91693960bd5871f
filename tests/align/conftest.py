"""Shared setup of the alignment tests: the official-optimizer fixture and small metrics."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import roma
import torch

from align3r.align import from_official_output
from align3r.flow.types import PairFlow


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These problems are tiny: parallel regions cost more than they save, and on a shared 2-core
    machine an oversubscribed OpenMP pool makes each small op 10-20x slower. Module scope: it must be
    active before the module-scoped fixtures that run whole alignments."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def align_fixture(fixtures_dir):
    """The ``align/`` golden fixture: inputs, reference outputs, metadata and our PairPredictions."""
    folder = fixtures_dir / "align"
    inputs = dict(np.load(folder / "align_inputs.npz"))
    outputs = dict(np.load(folder / "align_outputs.npz"))
    flows = dict(np.load(folder / "align_flow_inputs.npz"))
    meta = json.loads((folder / "align.json").read_text())
    preds = from_official_output(
        {"idx": inputs["view1_idx"]}, {"idx": inputs["view2_idx"]},
        {"pts3d": inputs["pred1_pts3d"], "conf": inputs["pred1_conf"]},
        {"pts3d_in_other_view": inputs["pred2_pts3d_in_other_view"], "conf": inputs["pred2_conf"]})
    flow = PairFlow(edges=preds.edges, flow_ij=torch.from_numpy(flows["flow_ij"]),
                    flow_ji=torch.from_numpy(flows["flow_ji"]),
                    valid_ij=torch.from_numpy(outputs["flow_perfect__flow_valid_i"][:, 0]),
                    valid_ji=torch.from_numpy(outputs["flow_perfect__flow_valid_j"][:, 0]))
    return SimpleNamespace(inputs=inputs, outputs=outputs, meta=meta, preds=preds, flow=flow)


def ate_sim3(pred_cam2world, gt_cam2world) -> float:
    """RMSE of camera centres after a Sim(3) Umeyama alignment (evo's ATE with correct_scale)."""
    pred = torch.as_tensor(pred_cam2world, dtype=torch.float64)[:, :3, 3]
    gt = torch.as_tensor(gt_cam2world, dtype=torch.float64)[:, :3, 3]
    rot, trans, scale = roma.rigid_points_registration(pred, gt, compute_scaling=True)
    return float((pred @ (scale * rot).T + trans - gt).square().sum(-1).mean().sqrt())


def absrel_median(pred_depth, gt_depth) -> float:
    """Abs Rel after one scale for the whole sequence, the median of gt / pred (the fixture's metric)."""
    pred = np.asarray(torch.as_tensor(pred_depth, dtype=torch.float64))
    gt = np.asarray(torch.as_tensor(gt_depth, dtype=torch.float64))
    scaled = pred * np.median(gt / pred)
    return float(np.mean(np.abs(scaled - gt) / gt))


@pytest.fixture(scope="session")
def metrics():
    return SimpleNamespace(ate=ate_sim3, absrel=absrel_median)
