"""Long-video mode: keyframes, then clips fitted onto them by a Sim(3)."""

from __future__ import annotations

import pytest
import torch

from align3r.align import align_grouped, preset
from align3r.align.grouped import window_keyframe_graph
from align3r.align.synthetic import synthetic_scene
from align3r.errors import InputError
from align3r.pairs import PairGraph, make_grouped_graph

CFG = preset("fast", iterations=60, temporal_weight=0.0)


@pytest.fixture(scope="module")
def video():
    """72 frames at 12x16, official grouped graph (clip size 9: 8 clips, 8 keyframes)."""
    scene = synthetic_scene(72, 12, 16, loops=0.6, seed=2)
    graph = make_grouped_graph(72, "official")
    calls: list[PairGraph] = []

    def predict(g: PairGraph):
        calls.append(g)
        # exact point maps up to a random scale per edge, 0.5 % noise
        return scene.predictions(g.edges, noise=0.005)

    return scene, graph, predict, calls


@pytest.fixture(scope="module")
def results(video):
    _, graph, predict, calls = video
    calls.clear()
    with_scale = align_grouped(graph, predict, CFG, progress=False)
    seen = list(calls)
    rigid = align_grouped(graph, predict, CFG, fit_scale=False, progress=False)
    return with_scale, rigid, seen


def test_grouped_result_is_consistent_across_clips(video, results, metrics):
    scene, graph, _, _ = video
    with_scale, rigid, _ = results
    extent = float((scene.cam2world[:, :3, 3] - scene.cam2world[:, :3, 3].mean(0)).norm(dim=1).max())
    ate = metrics.ate(with_scale.cam2world, scene.cam2world)
    assert ate < 0.02 * extent
    # one global scale fits every clip's depth
    assert metrics.absrel(with_scale.depth, scene.depth) < 0.01
    # without the scale fit every clip keeps its own scale (the official behaviour)
    assert metrics.ate(rigid.cam2world, scene.cam2world) > 3 * ate
    assert metrics.absrel(rigid.depth, scene.depth) > 3 * metrics.absrel(with_scale.depth, scene.depth)
    assert with_scale.num_frames == 72 and with_scale.frame_ids.tolist() == list(range(72))
    assert torch.allclose(with_scale.focals, torch.full((72,), scene.focal), rtol=0.01)
    assert set(with_scale.loss_terms) == {f"clip_{k}" for k in range(len(graph.clips))}


def test_predictions_are_requested_one_group_at_a_time(video, results):
    _, graph, _, _ = video
    _, _, seen = results
    assert len(seen) == 1 + len(graph.clips)
    assert torch.equal(seen[0].edges, graph.keyframe_graph.edges)  # 8 keyframes: the window changes nothing
    for got, clip in zip(seen[1:], graph.clip_graphs):
        assert torch.equal(got.edges, clip.edges)
    assert max(g.num_edges for g in seen) < graph.num_edges / 3


def test_keyframe_window_keeps_the_keyframe_graph_linear():
    graph = make_grouped_graph(1000, "official")
    k = graph.keyframe_ids.numel()
    windowed = window_keyframe_graph(graph.keyframe_graph, graph.keyframe_ids, 5)
    assert graph.keyframe_graph.num_edges == k * (k - 1)
    assert windowed.num_edges == 2 * sum(min(5, k - 1 - a) for a in range(k))
    half = windowed.num_edges // 2
    assert torch.equal(windowed.edges[:half], windowed.edges[half:].flip(1))  # still symmetric


def test_grouped_input_errors(video):
    _, graph, predict, _ = video
    grouped, group = type(graph), type(graph.clips[0])
    cfg = CFG.replace(iterations=1)
    missing = grouped(graph.num_frames, graph.variant, graph.clip_size, graph.keyframes, graph.clips[:-1])
    with pytest.raises(InputError, match="in no clip"):
        align_grouped(missing, predict, cfg, progress=False)
    clip = graph.clips[1]
    no_key = grouped(graph.num_frames, graph.variant, graph.clip_size, graph.keyframes,
                     (graph.clips[0], group(clip.frame_ids[1:], clip.graph), *graph.clips[2:]))
    with pytest.raises(InputError, match="no keyframe"):
        align_grouped(no_key, predict, cfg, progress=False)


@pytest.mark.parametrize(("n", "variant"), [(2, "official"), (3, "official"), (4, "official"), (3, "paper"),
                                            (4, "depth_test")])
def test_videos_no_longer_than_a_clip_are_one_flat_problem(n, variant, metrics):
    """N = 2..4 leaves one keyframe and one clip holding every frame: nothing to anchor, so the
    clip is aligned alone (the network is asked for that clip's edges only)."""
    scene = synthetic_scene(n, 12, 16, loops=0.1, seed=4)
    graph = make_grouped_graph(n, variant)
    assert graph.keyframe_ids.tolist() == [0] and len(graph.clips) == 1
    calls: list[PairGraph] = []

    def predict(g: PairGraph):
        calls.append(g)
        return scene.predictions(g.edges, noise=0.0)

    rec = align_grouped(graph, predict, CFG, progress=False)
    assert [g.edges.tolist() for g in calls] == [graph.clips[0].graph.edges.tolist()]
    assert rec.num_frames == n and rec.frame_ids.tolist() == list(range(n))
    assert bool(torch.isfinite(rec.depth).all()) and bool((rec.depth > 0).all())
    assert metrics.absrel(rec.depth, scene.depth) < 0.01


def _grouped_known(fixed: bool):
    scene = synthetic_scene(30, 12, 16, loops=0.3, seed=4)
    graph = make_grouped_graph(30, "official")
    masks = torch.zeros(30, 12, 16, dtype=torch.bool)
    masks[:, :3, :4] = True  # a "moving" corner in every frame, given by the user
    rec = align_grouped(graph, lambda g: scene.predictions(g.edges, noise=0.005),
                        CFG.replace(known_poses_fixed=fixed), known_poses=scene.cam2world, dynamic_mask=masks,
                        progress=False)
    return scene, masks, rec


def test_fixed_known_poses_hold_for_every_frame_of_every_clip():
    scene, masks, rec = _grouped_known(True)
    assert len(make_grouped_graph(30, "official").clip_graphs) > 1  # keyframes and several clips
    torch.testing.assert_close(rec.cam2world, scene.cam2world, rtol=0, atol=1e-6)
    assert torch.equal(rec.dynamic_mask, masks)  # the given masks, not self-motion ones
    # the depth follows the poses' units (metres here): median ratio to the truth is 1
    assert abs(float((rec.depth / scene.depth).median()) - 1) < 0.02


def test_known_poses_initialise_every_problem_in_their_units():
    scene, _, rec = _grouped_known(False)
    err = (rec.cam2world[:, :3, 3] - scene.cam2world[:, :3, 3]).norm(dim=-1)
    assert float(err.max()) < 0.05  # same frame and units as the given poses (a 2 m circle), no Sim(3) needed
    assert abs(float((rec.depth / scene.depth).median()) - 1) < 0.02
