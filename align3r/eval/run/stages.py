"""Pair graph → inference → flow → alignment for one sequence, with the protocol's exact graph.

The evaluation protocols need graphs the pipeline's names do not cover (depth_test.py's grouped
graph with a carried clip size, unsymmetrised graphs, the pose protocol's capped window): this
module builds them and hands them to ``align3r.pipeline.align_views``, the stage composition
``align3r infer`` uses too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from align3r.eval.run.settings import EvalSettings
from align3r.pairs import (
    GROUPED_GRAPHS,
    GroupedGraph,
    PairGraph,
    clamp_window,
    make_graph,
    make_grouped_graph,
    official_clip_size,
)


def clip_size_chain(frame_counts: list[int], start: int, carry: bool) -> list[int]:
    """Clip size of each sequence under depth_test.py's search (official ``tool/depth_test.py``,
    its ``__main__`` block, before ``my_make_pairs``).

    Upstream decrements c from ``start`` while ``N % c`` is 0 or 1 or ``c > N``; the paper-era
    script never resets c between sequences (``carry``), so each search starts where the previous
    sequence's stopped. Where upstream would divide by zero (N ≤ 4) c = min(start, N) is used.
    """
    sizes = []
    current = int(start)
    for n in frame_counts:
        c = official_clip_size(n, current) or min(current, n)
        sizes.append(c)
        if carry:
            current = c
    return sizes


@dataclass
class GraphInfo:
    """What the result file records about the pairs: name, mode, pair count, clip layout."""

    name: str
    mode: str
    num_pairs: int
    clip_size: int | None = None
    keyframes: list[int] | None = None
    clips: list[list[int]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def build_eval_graph(settings: EvalSettings, num_frames: int, clip_size: int | None = None
                     ) -> tuple[PairGraph | GroupedGraph, GraphInfo]:
    """The graph the settings name over ``num_frames`` frames, and its description.

    A grouped graph with a single clip (short sequences) is returned as that clip's
    ``PairGraph``: aligning it as one problem is what the grouped scheme does then.
    """
    name = settings.graph
    if name in GROUPED_GRAPHS:
        grouped = make_grouped_graph(num_frames, GROUPED_GRAPHS[name], clip_size=clip_size,
                                     clip_size_start=settings.clip_size_start)
        if len(grouped.clips) == 1:
            graph = grouped.clips[0].graph
            return graph, GraphInfo(name, "one problem (single clip)", graph.num_edges, grouped.clip_size)
        info = GraphInfo(name, "grouped: keyframes, then clips fitted onto them", grouped.num_edges,
                         grouped.clip_size, grouped.keyframe_ids.tolist(),
                         [[int(c.frame_ids[0]), int(c.frame_ids[-1]) + 1] for c in grouped.clips])
        return grouped, info
    if settings.clamp_window != "none":
        name = clamp_window(name, num_frames, official=settings.clamp_window == "official")
    graph = make_graph(name, num_frames, symmetrize=settings.symmetrize)
    return graph, GraphInfo(name, "one problem", graph.num_edges)


def run_graph_stages(views, net, graph: PairGraph | GroupedGraph, settings: EvalSettings, *, device: torch.device,
                     batch_size, timer, mono_depth: Tensor | None = None, progress: bool = False):
    """Inference, flow and alignment of ``views`` over ``graph``.

    Args:
        views: ``align3r.io.Views`` of the sequence.
        net: the loaded network (eval mode, on ``device``).
        graph: from :func:`build_eval_graph`.
        timer: ``align3r.pipeline.StageTimer``; gets ``inference``, ``flow``, ``align``.
        mono_depth: (N, H, W) for ``parametrisation="scale_map"``.
    Returns:
        (``Reconstruction``, pairs run through the network, the ``AlignConfig`` used).
    """
    from align3r.align import preset
    from align3r.flow.cached import load_pair_flow
    from align3r.pipeline import align_views

    aconf = preset(settings.align).replace(**dict(settings.align_overrides))
    flow_fn = load_pair_flow(settings.flow, views.rgb, weights=settings.flow_weights,
                             iterations=settings.flow_iterations, device=device, progress=progress)
    rec, pairs_run = align_views(views, net, graph, aconf, device=device, precision=settings.precision,
                                 batch_size=batch_size, flow_fn=flow_fn,
                                 mono_depth=mono_depth, fit_scale=settings.grouped_fit_scale, timer=timer,
                                 progress=progress)
    return rec, pairs_run, aconf
