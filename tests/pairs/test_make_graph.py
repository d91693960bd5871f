"""Named pair graphs against the official make_pairs outputs (fixtures/pairs/pairs.json)."""

from __future__ import annotations

import json

import pytest
import torch

from align3r.errors import InputError
from align3r.pairs import PairGraph, clamp_window, make_graph, parse_graph_name


@pytest.fixture(scope="module")
def pairs_json(fixtures_dir):
    return json.loads((fixtures_dir / "pairs" / "pairs.json").read_text())


def _tuples(pairs):
    return [tuple(p) for p in pairs]


def _assert_symmetric_layout(graph: PairGraph) -> None:
    e = graph.num_edges
    assert e % 2 == 0
    assert torch.equal(graph.edges[e // 2:], graph.edges[: e // 2].flip(1))


def test_every_fixture_graph_matches_as_a_set_and_in_structure(pairs_json):
    checked = 0
    for n, graphs in pairs_json["make_pairs"].items():
        for name, ref in graphs.items():
            graph = make_graph(name, int(n))
            expected = _tuples(ref["pairs"])
            assert graph.num_edges == ref["count"] == len(expected), (n, name)
            assert sorted(graph.as_tuples()) == sorted(expected), (n, name)
            assert graph.symmetric
            _assert_symmetric_layout(graph)
            # the unique halves hold the same pairs (the reversed halves then follow)
            half = ref["count"] // 2
            assert sorted(graph.as_tuples()[: graph.num_edges // 2]) == sorted(expected[:half]), (n, name)
            checked += 1
    assert checked == 8 * 11


def test_reference_order_reproduces_upstream_exactly(pairs_json):
    for n, graphs in pairs_json["make_pairs"].items():
        for name, ref in graphs.items():
            assert make_graph(name, int(n), order="reference").as_tuples() == _tuples(ref["pairs"]), (n, name)


@pytest.mark.parametrize("name", ["complete", "oneref-0"])
def test_complete_and_oneref_have_upstream_order_by_default(pairs_json, name):
    for n, graphs in pairs_json["make_pairs"].items():
        assert make_graph(name, int(n)).as_tuples() == _tuples(graphs[name]["pairs"])


def test_sorted_order_is_lexicographic_without_duplicates():
    graph = make_graph("swinstride-5-noncyclic", 47)
    half = graph.edges[: graph.num_edges // 2]
    keys = half[:, 0] * 47 + half[:, 1]
    assert torch.all(keys[1:] > keys[:-1])  # strictly increasing: sorted and unique
    assert torch.all(half[:, 0] < half[:, 1])


def test_unsymmetrized_and_prefiltered_graphs(pairs_json):
    extra = pairs_json["make_pairs_extra"]
    complete = make_graph("complete", 10, symmetrize=False)
    assert complete.as_tuples() == _tuples(extra["N10_complete_symmetrize_False"])
    assert not complete.symmetric
    swin = make_graph("swin-5", 10, symmetrize=False, order="reference")
    assert swin.as_tuples() == _tuples(extra["N10_swin-5_symmetrize_False"])
    for pre in ("seq3", "cyc3"):
        graph = make_graph("complete", 10, prefilter=pre)
        assert graph.as_tuples() == _tuples(extra[f"N10_complete_prefilter_{pre}"])
        _assert_symmetric_layout(graph)


def test_cyclic_window_wider_than_the_video_gives_self_pairs_as_upstream(pairs_json):
    graph = make_graph("swin-5", 2)
    assert sorted(graph.as_tuples()) == sorted(_tuples(pairs_json["make_pairs"]["2"]["swin-5"]["pairs"]))
    assert graph.as_tuples() == [(0, 0), (0, 1), (1, 1), (0, 0), (1, 0), (1, 1)]


def test_pose_test_window_clamp(pairs_json):
    for n, ref in pairs_json["pose_test_window_clamp"]["swinstride-5-noncyclic"].items():
        name = clamp_window("swinstride-5-noncyclic", int(n), official=True)
        assert name == ref["effective_graph"]
        assert make_graph(name, int(n), order="reference").as_tuples() == _tuples(ref["pairs"])
    # our default keeps the suffix upstream drops
    assert clamp_window("swinstride-5-noncyclic", 9) == "swinstride-4-noncyclic"
    assert clamp_window("swin-5", 9) == "swin-4"
    assert clamp_window("complete", 3) == "complete"


def test_counts_quoted_in_the_paper_check(pairs_json):
    counts = pairs_json["paper_check_30_frames"]["code_counts_symmetrized"]
    assert make_graph("complete", 30).num_edges == counts["complete"] == 870
    assert make_graph("swin-10", 30).num_edges == counts["swin-10 (cyclic)"] == 600
    assert make_graph("swinstride-5-noncyclic", 30).num_edges == counts["swinstride-5-noncyclic"] == 250
    assert make_graph("swin-5-noncyclic", 30).num_edges == counts["swin-5-noncyclic"] == 270
    assert make_graph("swinstride-5", 30).num_edges == 300
    assert make_graph("logwin-3-noncyclic", 30).num_edges == 166


def test_window_graphs_scale_to_10000_frames():
    n = 10_000
    # non-cyclic swin-K: K·N − K(K+1)/2 unique pairs; cyclic swinstride-K: K·N
    assert make_graph("swin-5-noncyclic", n).num_edges == 2 * (5 * n - 15)
    assert make_graph("swinstride-5", n).num_edges == 2 * 5 * n
    assert make_graph("swin2stride-4-noncyclic", n).num_edges == 2 * sum(n - o for o in (1, 4, 7, 10))
    assert make_graph("logwin-4", n).num_edges == 2 * 4 * n
    graph = make_graph("swin-5-noncyclic", n, order="reference")
    assert graph.num_edges == 2 * (5 * n - 15)
    assert int((graph.edges[:, 0] - graph.edges[:, 1]).abs().max()) == 5


def test_name_parsing_defaults_like_upstream():
    assert parse_graph_name("swin").window == 3
    assert parse_graph_name("swin-noncyclic") == parse_graph_name("swin-3-noncyclic")
    assert parse_graph_name("oneref").window == 0
    assert not parse_graph_name("logwin-2-noncyclic").cyclic


@pytest.mark.parametrize(("call", "message"), [
    (lambda: make_graph("swin-5", 1), "at least 2 frames"),
    (lambda: make_graph("sliding-5", 10), "unknown pair graph"),
    (lambda: make_graph("swin-0", 10), "at least 1"),
    (lambda: make_graph("oneref-12", 10), "does not exist"),
    (lambda: make_graph("complete", 10, prefilter="near3"), "unknown prefilter"),
    (lambda: make_graph("oneref-0", 10, prefilter="seq0"), "no edges"),
    (lambda: make_graph("complete", 10, order="random"), "order"),
])
def test_bad_graph_requests_raise_clear_errors(call, message):
    with pytest.raises(InputError, match=message):
        call()


def test_pair_graph_validates_and_reindexes():
    with pytest.raises(ValueError, match="reverse"):
        PairGraph.from_pairs([(0, 1), (1, 2)], 3, "bad", symmetric=True)
    with pytest.raises(ValueError, match="lie in"):
        PairGraph.from_pairs([(0, 3)], 3, "bad", symmetric=False)
    graph = make_graph("swin-2-noncyclic", 6)
    rev = graph.reverse_index()
    assert torch.equal(graph.edges[rev], graph.edges.flip(1))
    sub = PairGraph.from_pairs([(10, 12), (12, 10)], 20, "sub", symmetric=True)
    local = sub.to_local(torch.tensor([10, 11, 12]))
    assert local.as_tuples() == [(0, 2), (2, 0)] and local.num_frames == 3
    assert graph.frames_used().all()
