"""The ``graph`` setting of ``align3r infer`` / ``eval``: make_graph names and the grouped modes."""

from __future__ import annotations

import pytest

from align3r.errors import InputError
from align3r.pairs import GROUPED_GRAPHS, GroupedGraph, PairGraph, build_graph, check_graph_name


def test_grouped_names_build_grouped_graphs_and_others_one_graph():
    for name in GROUPED_GRAPHS:
        check_graph_name(name)
        assert isinstance(build_graph(name, 40), GroupedGraph)
    check_graph_name("swinstride-5-noncyclic")
    graph = build_graph("swin-2-noncyclic", 6)
    assert isinstance(graph, PairGraph) and graph.num_frames == 6


def test_an_unknown_graph_name_says_what_is_accepted():
    with pytest.raises(InputError, match=r"graph=swin-two: .*unknown pair graph.*or a grouped keyframe mode: grouped"):
        check_graph_name("swin-two")
