"""The grouped keyframe scheme against upstream my_make_pairs (fixtures/pairs/pairs.json)."""

from __future__ import annotations

import json

import pytest
import torch

from align3r.errors import InputError
from align3r.pairs import make_grouped_graph, official_clip_size

# fixture key -> our variant
SCHEMES = {
    "demo.my_make_pairs": "official",
    "pose_test.my_make_pairs": "official",
    "demo.my_make_pairs2": "official_dense",
    "depth_test.my_make_pairs": "depth_test",
}
LOOP_START = {"demo": 10, "demo_h1": 10, "pose_test": 10, "depth_test": 50}


@pytest.fixture(scope="module")
def hierarchical(fixtures_dir):
    return json.loads((fixtures_dir / "pairs" / "pairs.json").read_text())["hierarchical"]


def _tuples(pairs):
    return [tuple(p) for p in pairs]


def test_clip_size_rule_matches_every_script(hierarchical):
    for n, entry in hierarchical.items():
        for script, ref in entry["clip_size_loop"].items():
            ours = official_clip_size(int(n), LOOP_START[script])
            if ref["error"]:
                assert "ZeroDivisionError" in ref["error"] and ours is None, (n, script)
            else:
                assert ours == ref["clip_size"], (n, script)


def test_every_field_of_every_scheme(hierarchical):
    checked = 0
    for n, entry in hierarchical.items():
        for key, variant in SCHEMES.items():
            ref = entry[key]
            if "error" in ref:
                continue
            g = make_grouped_graph(int(n), variant)
            assert g.clip_size == ref["clip_size"]
            assert g.keyframe_ids.tolist() == ref["keyframes_id"]
            assert g.keyframes.graph.as_tuples() == _tuples(ref["keyframe_pairs_global"])
            assert g.keyframes.local_graph().as_tuples() == _tuples(ref["keyframe_pairs_local"])
            assert [c.frame_ids.tolist() for c in g.clips] == ref["clips_frame_ids"]
            assert [c.graph.as_tuples() for c in g.clips] == [_tuples(p) for p in ref["clip_pairs_global"]]
            assert [c.local_graph().as_tuples() for c in g.clips] == [_tuples(p) for p in ref["clip_pairs_local"]]
            assert g.keyframes.graph.num_edges == ref["n_keyframe_pairs"]
            assert [c.graph.num_edges for c in g.clips] == ref["n_clip_pairs"]
            assert g.num_edges == ref["n_total"]
            union = g.all_edges()
            assert sorted(union.as_tuples()) == sorted(set(g.keyframes.graph.as_tuples()).union(
                *(c.graph.as_tuples() for c in g.clips)))
            if variant != "official_dense":  # the groups share no edge
                assert union.num_edges == g.num_edges
            # upstream renumbers frame k to its position in its clip, in place; ours is the
            # local graph's numbering, with no side effect
            local_index = torch.cat([torch.arange(len(c)) for c in g.clips])
            assert local_index.tolist() == ref["frame_idx_after_call"]
            checked += 1
    assert checked == 6 * 4


def test_official_scheme_gives_136_pairs_for_30_frames_and_paper_scheme_138(fixtures_dir):
    check = json.loads((fixtures_dir / "pairs" / "pairs.json").read_text())["paper_check_30_frames"]
    official = make_grouped_graph(30, "official")
    detail = check["hierarchical_demo_detail"]
    assert official.num_edges == check["code_counts_symmetrized"]["hierarchical demo/pose_test"] == 136
    assert official.keyframe_ids.tolist() == detail["keyframes"]
    assert [c.graph.num_edges for c in official.clips] == detail["n_clip_pairs"]
    assert make_grouped_graph(30, "official_dense").num_edges == 214
    assert make_grouped_graph(30, "depth_test").num_edges == 380

    paper = make_grouped_graph(30, "paper")
    assert paper.num_edges == check["paper_claims"]["Align3R"] == 138
    assert paper.clip_size == 10 and paper.keyframe_ids.tolist() == [0, 10, 20]
    assert paper.keyframes.graph.num_edges == 3
    assert [c.graph.num_edges for c in paper.clips] == [45, 45, 45]
    assert not paper.all_edges().symmetric


@pytest.mark.parametrize(("n", "start", "total"), [(30, 20, 236), (110, 20, 1010), (50, 20, 428)])
def test_paper_era_depth_test_start_is_a_parameter(n, start, total):
    # counts of official `tool/depth_test.py`, `my_make_pairs` (paper-era depth_test starts the clip
    # search at 20)
    assert make_grouped_graph(n, "depth_test", clip_size_start=start).num_edges == total


def test_official_110_frames():
    # official `tool/pose_test.py`, `my_make_pairs`
    assert make_grouped_graph(110, "official").num_edges == 638


def _check_partition(g, n):
    frames = torch.cat([c.frame_ids for c in g.clips])
    assert torch.equal(frames, torch.arange(n))  # contiguous, every frame exactly once
    assert all(len(c) >= 2 for c in g.clips)
    starts = torch.stack([c.frame_ids[0] for c in g.clips])
    if g.variant == "official_dense":  # clip starts plus extra keyframes
        assert torch.isin(starts, g.keyframe_ids).all()
    else:
        assert torch.equal(g.keyframe_ids, starts)
    clip_of_frame = g.clip_of_frame()
    for k, clip in enumerate(g.clips):
        assert (clip_of_frame[clip.graph.edges] == k).all()  # clip edges stay in the clip
    edges = g.all_edges().edges
    assert torch.unique(edges[:, 0] * n + edges[:, 1]).numel() == edges.shape[0]  # no duplicate edge


@pytest.mark.parametrize("variant", ["official", "official_dense", "paper", "depth_test"])
def test_any_length_from_two_frames_works(variant):
    for n in [*range(2, 80), 2520, 2521]:
        g = make_grouped_graph(n, variant)
        _check_partition(g, n)
        if g.all_edges().symmetric:
            e = g.all_edges()
            assert torch.equal(e.edges[e.num_edges // 2:], e.edges[: e.num_edges // 2].flip(1))


def test_where_upstream_divides_by_zero_we_use_one_clip_or_the_start_size():
    for n in (2, 3, 4):
        g = make_grouped_graph(n, "official")
        assert official_clip_size(n) is None
        assert len(g.clips) == 1 and g.keyframe_ids.tolist() == [0] and g.keyframes.graph.num_edges == 0
    assert make_grouped_graph(2, "official").clips[0].graph.as_tuples() == [(0, 1), (1, 0)]
    assert make_grouped_graph(3, "official").clips[0].graph.as_tuples() == [(0, 1), (1, 2), (1, 0), (2, 1)]
    # N = 2521 ≡ 1 (mod every c in 3..10): clips of 10, the lone last frame joins the last clip
    g = make_grouped_graph(2521, "official")
    assert official_clip_size(2521) is None and g.clip_size == 10
    assert len(g.clips[-1]) == 11 and len(g.clips) == 252


def test_fixed_clip_size_and_bad_arguments():
    g = make_grouped_graph(25, "paper", clip_size=8)
    assert [len(c) for c in g.clips] == [8, 8, 9]  # 25 = 8+8+8+1: the lone frame is merged
    # the flat view the grouped aligner reads (keyframe_graph, clip_frame_ids, clip_graphs)
    assert g.keyframe_graph is g.keyframes.graph
    assert [ids.tolist() for ids in g.clip_frame_ids] == [list(range(0, 8)), list(range(8, 16)), list(range(16, 25))]
    assert [c.num_edges for c in g.clip_graphs] == [28, 28, 36]
    with pytest.raises(InputError, match="at least 2 frames"):
        make_grouped_graph(1)
    with pytest.raises(InputError, match="variant"):
        make_grouped_graph(30, "fancy")
    with pytest.raises(InputError, match="clip_size"):
        make_grouped_graph(30, "official", clip_size=1)


def test_grouped_graph_scales_to_10000_frames():
    g = make_grouped_graph(10_000, "paper")
    assert len(g.clips) == 1000 and g.num_edges == 1000 * 999 // 2 + 1000 * 45
    _check_partition(g, 10_000)
