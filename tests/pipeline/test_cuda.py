"""`align3r infer` and the pair predictor on a CUDA device: bf16 autocast end to end, and a real
(not simulated) out-of-memory error that the predictor backs off from. Skipped without CUDA (CI)."""

from __future__ import annotations

import pytest
import torch

from align3r import load_reconstruction
from align3r.cli import main

pytestmark = pytest.mark.cuda


def test_infer_on_cuda_with_bf16_autocast(tmp_path, clip, fast_overrides):
    out = tmp_path / "lady"
    assert main(["infer", str(clip), "--out", str(out), "--quiet", *fast_overrides("device=cuda")]) == 0
    saved = load_reconstruction(out)
    rec = saved.reconstruction
    assert rec.depth.shape == (6, 224, 224)
    assert bool(torch.isfinite(rec.depth).all()) and bool((rec.depth > 0).all())
    assert bool(torch.isfinite(rec.cam2world).all()) and bool(torch.isfinite(rec.intrinsics).all())
    settings = saved.manifest["settings"]["pipeline"]
    assert settings["device"] == "cuda" and settings["precision"] == "auto"


def test_real_out_of_memory_halves_the_batch_and_gives_the_same_predictions(tiny_net_dir):
    """Cap this process's CUDA memory so that a batch of 64 pairs cannot fit but a few can: the
    predictor must catch the allocator's real error, halve, and produce what batch size 2 produces."""
    from align3r.inference import PairPredictor
    from align3r.model import load_model
    from align3r.pairs import make_graph

    torch.manual_seed(0)
    n, h, w = 12, 288, 512
    net = load_model(tiny_net_dir).cuda()
    inputs = (torch.rand(n, 3, h, w) * 2 - 1, torch.tensor([[h, w]] * n), torch.rand(n, h, w, 3))
    graph = make_graph("complete", n)  # 132 edges

    def run(batch_size: int) -> tuple[PairPredictor, object]:
        predictor = PairPredictor(net, *inputs, device="cuda", precision="fp32", batch_size=batch_size,
                                  output_device="cpu", progress=False)
        return predictor, predictor(graph)

    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    _, reference = run(2)
    per_two = torch.cuda.max_memory_allocated() - base
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    # room for about four batches of two on top of what is resident; a batch of 64 needs ~32
    torch.cuda.set_per_process_memory_fraction(min(1.0, (torch.cuda.memory_reserved() + 4 * per_two) / total))
    try:
        predictor, preds = run(64)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert predictor.batch_size < 64
    assert preds.edges.tolist() == reference.edges.tolist()
    for name in ("pts3d_i", "pts3d_j", "conf_i", "conf_j"):
        ours, ref = getattr(preds, name), getattr(reference, name)
        # batching changes only the summation order (the parity tests' measure, 10x tighter)
        assert float((ours - ref).abs().max() / ref.abs().max()) < 1e-5, name
