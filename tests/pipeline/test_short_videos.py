"""The default (grouped) graph on videos of 2 to 4 frames, shorter than one clip."""

from __future__ import annotations

import pytest

import align3r
from align3r.cli import main


@pytest.mark.parametrize("frames", [2, 3])
def test_default_graph_reconstructs_two_and_three_frames(tmp_path, clip, fast_overrides, frames):
    settings = [o for o in fast_overrides(f"max_frames={frames}") if not o.startswith(("graph=", "max_frames=6"))]
    out = tmp_path / "short"
    assert main(["infer", str(clip), "--out", str(out), "--quiet", *settings]) == 0
    rec = align3r.load_reconstruction(out).reconstruction
    assert rec.num_frames == frames and bool((rec.depth > 0).all())
    assert align3r.load_reconstruction(out).manifest["settings"]["pipeline"]["graph"] == "grouped"
