"""Bad input raises an InputError that says what is wrong and what to do."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from align3r.align import AlignConfig, PairPredictions, align, from_official_output, preset
from align3r.align.synthetic import synthetic_scene
from align3r.errors import InputError


@pytest.fixture(scope="module")
def small():
    scene = synthetic_scene(4, 6, 8, loops=0.05)
    edges = torch.tensor([[0, 1], [1, 2], [2, 3], [1, 0], [2, 1], [3, 2]])
    return scene, scene.predictions(edges, noise=0.01)


def _official(preds: PairPredictions):
    return ({"idx": preds.edges[:, 0].numpy()}, {"idx": preds.edges[:, 1].tolist()},
            {"pts3d": preds.pts3d_i.numpy(), "conf": preds.conf_i.numpy()},
            {"pts3d_in_other_view": preds.pts3d_j, "conf": preds.conf_j})


def test_from_official_output_accepts_numpy_lists_and_tensors(small):
    _, preds = small
    again = from_official_output(*_official(preds))
    assert torch.equal(again.edges, preds.edges) and torch.equal(again.pts3d_i, preds.pts3d_i)
    v1, v2, p1, p2 = _official(preds)
    p1 = {"pts3d": list(preds.pts3d_i.numpy()), "conf": list(preds.conf_i.numpy())}
    assert torch.equal(from_official_output(v1, v2, p1, p2).conf_i, preds.conf_i)


def test_from_official_output_errors(small):
    _, preds = small
    v1, v2, p1, p2 = _official(preds)
    with pytest.raises(InputError, match="pts3d_in_other_view"):
        from_official_output(v1, v2, p1, {"conf": p2["conf"]})
    with pytest.raises(InputError, match="idx"):
        from_official_output({}, v2, p1, p2)
    with pytest.raises(InputError, match=r"appear in no edge"):
        from_official_output({"idx": v1["idx"] * 2}, {"idx": [2 * i for i in v2["idx"]]}, p1, p2)
    mixed = {"pts3d": [np.zeros((6, 8, 3), np.float32)] * 5 + [np.zeros((6, 9, 3), np.float32)], "conf": p1["conf"]}
    with pytest.raises(InputError, match="one network resolution"):
        from_official_output(v1, v2, mixed, p2)


def _replace(preds: PairPredictions, **kw) -> PairPredictions:
    fields = dict(edges=preds.edges, pts3d_i=preds.pts3d_i, pts3d_j=preds.pts3d_j, conf_i=preds.conf_i,
                  conf_j=preds.conf_j, num_frames=preds.num_frames)
    fields.update(kw)
    return PairPredictions(**fields)


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: {"pts3d_i": p.pts3d_i.clone().index_fill_(0, torch.tensor([1]), float("nan"))}, "NaN"),
    (lambda p: {"conf_j": torch.ones_like(p.conf_j)}, "conf_override"),
    (lambda p: {"num_frames": 6}, "appear in no edge"),
    (lambda p: {"edges": torch.tensor([[0, 1], [2, 3], [2, 3], [1, 0], [3, 2], [3, 2]])}, "not connected"),
])
def test_align_rejects_bad_predictions(small, change, message):
    _, preds = small
    with pytest.raises(InputError, match=message):
        align(_replace(preds, **change(preds)), preset("paper", iterations=1), progress=False)


def test_align_rejects_bad_known_quantities(small):
    scene, preds = small
    cfg = preset("paper", iterations=1)
    with pytest.raises(InputError, match="known_intrinsics"):
        align(preds, cfg, known_intrinsics=torch.eye(4), progress=False)
    with pytest.raises(InputError, match="positive focal"):
        align(preds, cfg, known_intrinsics=-torch.eye(3), progress=False)
    with pytest.raises(InputError, match="known_poses"):
        align(preds, cfg, known_poses=scene.cam2world[:2], progress=False)
    sheared = scene.cam2world.clone()
    sheared[:, 0, 1] += 0.5
    with pytest.raises(InputError, match="rigid"):
        align(preds, cfg, known_poses=sheared, progress=False)
    with pytest.raises(InputError, match="dynamic_mask"):
        align(preds, cfg, dynamic_mask=torch.zeros(4, 3, 3, dtype=torch.bool), progress=False)


def test_config_errors():
    with pytest.raises(InputError, match="unknown alignment preset"):
        preset("nope")
    with pytest.raises(InputError, match="schedule"):
        AlignConfig(schedule="exp")
    with pytest.raises(InputError, match="unknown AlignConfig field"):
        preset("paper", learning_rate=0.1)
    with pytest.raises(InputError, match="lr_scales"):
        AlignConfig(lr_scales=(("poses", 0.1),))


def test_presets_are_the_official_settings():
    demo, depth_test = preset("demo"), preset("depth_test")
    assert (demo.lr, demo.schedule, demo.lr_min) == (0.01, "linear", 1e-3)
    assert (depth_test.conf_override, depth_test.shared_focal, depth_test.lr_min) == (10.0, False, 1e-6)
    assert depth_test.flow_weight == 0 and depth_test.temporal_weight == 0
    paper = preset("paper")
    assert (paper.iterations, paper.lr, paper.schedule, paper.adam_betas) == (300, 0.05, "cosine", (0.9, 0.9))
    assert preset("pose_test").flow_threshold == 40
