"""Grouped (keyframes + clips) alignment as the outputs document it: labelled progress bars and
loss_history.npz holding the keyframe problem's total and each clip's total."""

from __future__ import annotations

import numpy as np


def test_grouped_bars_name_their_problem_and_loss_history_holds_per_clip_totals(monkeypatch, tmp_path):
    import align3r.align.optimize as optimize
    from align3r.align import align_grouped, preset
    from align3r.align.synthetic import synthetic_scene
    from align3r.export import load_reconstruction, write_reconstruction
    from align3r.pairs import make_grouped_graph

    labels: list[str] = []
    real = optimize.tqdm

    def recording_tqdm(*args, **kwargs):
        if not kwargs.get("disable"):
            labels.append(kwargs["desc"])
        return real(*args, **{**kwargs, "disable": True})

    monkeypatch.setattr(optimize, "tqdm", recording_tqdm)
    n = 30
    scene = synthetic_scene(n, 12, 16, loops=0.6, seed=2)
    graph = make_grouped_graph(n, "official")
    clips = len(graph.clip_graphs)
    assert clips > 1
    rec = align_grouped(graph, lambda g: scene.predictions(g.edges, noise=0.005), preset("paper", iterations=4),
                        progress=True)
    assert labels == [f"global alignment (keyframes: {len(graph.keyframe_ids)} frames)",
                      *(f"global alignment (clip {c + 1} of {clips})" for c in range(clips))]

    out = write_reconstruction(tmp_path / "out", rec, rgb=np.zeros((n, 12, 16, 3), np.uint8), formats=[])
    losses = np.load(out / "loss_history.npz")
    assert set(losses.files) == {"total", *(f"term_clip_{c}" for c in range(clips))}
    assert all(len(losses[name]) == 4 for name in losses.files)  # totals, one per iteration
    assert load_reconstruction(out).reconstruction.loss_terms.keys() == {f"clip_{c}" for c in range(clips)}
