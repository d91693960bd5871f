"""Geometry from exact point maps, and user-given intrinsics and poses (fixed or initial values)."""

from __future__ import annotations

import pytest
import torch

from align3r.align import align, preset
from align3r.align.synthetic import synthetic_scene
from align3r.geometry import intrinsics_from_focal, invert_pose

# A gentle schedule: these tests are about what is held fixed or recovered, not about the
# paper's learning rate (whose first steps throw the initial state away; see test_fast_preset).
GENTLE = preset("paper", iterations=40, lr=0.005, temporal_weight=0.0)


def window_edges(n: int, k: int) -> torch.Tensor:
    pairs = [(a, b) for a in range(n) for b in range(a + 1, min(n, a + k + 1))]
    return torch.tensor(pairs + [(b, a) for a, b in pairs])


@pytest.fixture(scope="module")
def scene():
    return synthetic_scene(8, 24, 32, loops=0.1)


@pytest.fixture(scope="module")
def exact(scene):
    # exact point maps, each edge at its own random scale
    return scene.predictions(window_edges(8, 2), noise=0.0)


def relative_poses(cam2world: torch.Tensor) -> torch.Tensor:
    return invert_pose(cam2world[:-1]) @ cam2world[1:]


@pytest.mark.parametrize(("iterations", "tol"), [(0, 1e-4), (40, 1e-2)])
def test_known_poses_recovered_from_exact_point_maps(scene, exact, metrics, iterations, tol):
    # The initialisation is exact. Adam then moves every parameter by about the learning rate per
    # step even at the optimum (the L1 residual's gradient has unit size), hence the looser bound.
    extent = float((scene.cam2world[:, :3, 3] - scene.cam2world[0, :3, 3]).norm(dim=1).max())
    rec = align(exact, GENTLE.replace(iterations=iterations), progress=False)
    assert metrics.ate(rec.cam2world, scene.cam2world) < tol * extent
    rel, gt_rel = relative_poses(rec.cam2world), relative_poses(scene.cam2world)
    assert torch.allclose(rel[:, :3, :3], gt_rel[:, :3, :3], atol=tol)
    assert abs(float(rec.focals[0]) - scene.focal) < tol * scene.focal
    assert metrics.absrel(rec.depth, scene.depth) < tol


def test_known_intrinsics_fixed_are_kept_even_when_wrong(scene, exact):
    wrong = intrinsics_from_focal(torch.tensor(scene.focal * 1.1), 24, 32)
    rec = align(exact, GENTLE, known_intrinsics=wrong, progress=False)
    assert torch.allclose(rec.intrinsics, wrong.expand(8, 3, 3))


def test_known_intrinsics_as_initial_values_are_refined(scene, exact):
    wrong = intrinsics_from_focal(torch.tensor(scene.focal * 1.1), 24, 32)
    rec = align(exact, GENTLE.replace(known_intrinsics_fixed=False, iterations=150, lr=0.01), known_intrinsics=wrong,
                progress=False)
    error = abs(float(rec.focals[0]) - scene.focal)
    assert error < 0.8 * (0.1 * scene.focal)  # moved towards the truth (20 log f moves ~lr per step)


def test_known_principal_point_is_kept(scene, exact):
    k = intrinsics_from_focal(torch.tensor(scene.focal), 24, 32)
    k[0, 2] += 1.5
    rec = align(exact, GENTLE.replace(iterations=2), known_intrinsics=k, progress=False)
    assert torch.allclose(rec.intrinsics[:, 0, 2], torch.full((8,), 16 + 1.5))


def test_known_poses_fixed_are_kept_and_set_the_units(scene, exact):
    rec = align(exact, GENTLE, known_poses=scene.cam2world, progress=False)
    assert torch.allclose(rec.cam2world, scene.cam2world, atol=1e-6)
    raw_absrel = float(((rec.depth - scene.depth).abs() / scene.depth).mean())
    assert raw_absrel < 0.01  # metric depth, no rescaling


def test_known_poses_as_initial_values_keep_their_units(scene, exact):
    noisy = scene.cam2world.clone()
    noisy[:, :3, 3] += 0.02 * torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    rec = align(exact, GENTLE.replace(known_poses_fixed=False), known_poses=noisy, progress=False)
    assert not torch.allclose(rec.cam2world, noisy, atol=1e-4)  # optimised ...
    assert float((rec.cam2world[:, :3, 3] - scene.cam2world[:, :3, 3]).norm(dim=1).max()) < 0.05  # ... in its units
    raw_absrel = float(((rec.depth - scene.depth).abs() / scene.depth).mean())
    assert raw_absrel < 0.03


@pytest.mark.parametrize("flip", [False, True])
def test_one_directional_graph_is_initialised_exactly(scene, metrics, flip):
    # the last (or first) frame is never the first frame of an edge: no point map in its own camera
    pairs = torch.tensor([(a, b) for a in range(8) for b in range(a + 1, min(8, a + 3))])
    preds = scene.predictions(pairs.flip(1) if flip else pairs, noise=0.0)
    rec = align(preds, GENTLE.replace(iterations=0), progress=False)
    extent = float((scene.cam2world[:, :3, 3] - scene.cam2world[0, :3, 3]).norm(dim=1).max())
    assert metrics.ate(rec.cam2world, scene.cam2world) < 1e-4 * extent
    assert abs(float(rec.focals[0]) - scene.focal) < 1e-4 * scene.focal
