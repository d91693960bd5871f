"""The scale-map parametrisation: depth = mono_depth * exp(per-pixel log-scale) + per-frame shift."""

from __future__ import annotations

import pytest
import torch

from align3r.align import align, preset
from align3r.align.synthetic import synthetic_scene
from align3r.errors import InputError


@pytest.fixture(scope="module")
def problem():
    scene = synthetic_scene(8, 24, 32, loops=0.1)
    pairs = [(a, b) for a in range(8) for b in range(a + 1, min(8, a + 3))]
    preds = scene.predictions(torch.tensor(pairs + [(b, a) for a, b in pairs]), noise=0.05)
    mono = scene.depth * torch.linspace(2, 3, 8)[:, None, None]  # exact shape, its own scale per frame
    return scene, preds, mono


def test_initial_depth_has_the_monocular_shape(problem, metrics):
    scene, preds, mono = problem
    start = preset("paper", iterations=0)
    by_scale = align(preds, start.replace(parametrisation="scale_map"), mono_depth=mono, progress=False)
    by_depth = align(preds, start, progress=False)
    ratio = by_scale.depth / mono
    assert float((ratio.std(dim=(1, 2)) / ratio.mean(dim=(1, 2))).max()) < 1e-5  # D = s_n * D_mono per frame
    # the network's noisy depth (5 %) vs the prior's exact shape
    assert metrics.absrel(by_scale.depth, scene.depth) < 0.6 * metrics.absrel(by_depth.depth, scene.depth)


def test_scale_map_optimises_as_well_as_log_depth(problem, metrics):
    scene, preds, mono = problem
    cfg = preset("fast", iterations=60)
    by_scale = align(preds, cfg.replace(parametrisation="scale_map"), mono_depth=mono, progress=False)
    by_depth = align(preds, cfg, progress=False)
    assert by_scale.loss_history[-1] <= by_depth.loss_history[-1] * 1.01
    assert metrics.absrel(by_scale.depth, scene.depth) <= metrics.absrel(by_depth.depth, scene.depth) * 1.1


def test_scale_map_needs_a_valid_monocular_depth(problem):
    _, preds, mono = problem
    cfg = preset("paper", iterations=1, parametrisation="scale_map")
    with pytest.raises(InputError, match="mono_depth"):
        align(preds, cfg, progress=False)
    with pytest.raises(InputError, match="mono_depth"):
        align(preds, cfg, mono_depth=mono[:, :10], progress=False)
    bad = mono.clone()
    bad[0, 0, 0] = 0
    with pytest.raises(InputError, match="> 0"):
        align(preds, cfg, mono_depth=bad, progress=False)
