"""The network on a CUDA device: the same numbers as the official forward in float32, and a bf16
autocast forward that stays close to them. Skipped where there is no CUDA device (CI)."""

from __future__ import annotations

import copy

import pytest
import torch

from align3r.inference import PairPredictor
from align3r.pairs import make_graph

from .test_parity import CASES, OUTPUTS, TOL

pytestmark = pytest.mark.cuda


def _on_cuda(view: dict) -> dict:
    return {k: v.cuda() for k, v in view.items()}


@pytest.fixture(scope="module")
def cuda_net(official_net):
    """``cuda_net(name)``: a CUDA copy of the official tiny network (the CPU one stays untouched)."""
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = copy.deepcopy(official_net(name)).cuda()
        return cache[name]

    return get


@pytest.mark.parametrize(("checkpoint", "name"), CASES)
def test_float32_forward_on_cuda_matches_official(cuda_net, case, rel_err, outputs_of, checkpoint, name):
    c = case(checkpoint, name)
    view1, view2 = (_on_cuda(v) for v in c.views())
    ours = outputs_of(cuda_net(checkpoint), view1, view2)
    for key in OUTPUTS:
        assert ours[key].is_cuda and ours[key].dtype == torch.float32
        assert rel_err(ours[key], c[key]) < TOL, key


@pytest.mark.parametrize(("checkpoint", "name"), [("a3r_tiny_a", "landscape_64x96_b1"),
                                                  ("a3r_tiny_b", "oddgrid_48x80_b1")])
def test_bf16_autocast_forward_stays_close(cuda_net, case, rel_err, outputs_of, checkpoint, name):
    """bf16 keeps 8 mantissa bits (~4e-3 relative per rounding); the heads return float32."""
    c = case(checkpoint, name)
    view1, view2 = (_on_cuda(v) for v in c.views())
    with torch.autocast("cuda", dtype=torch.bfloat16):
        ours = outputs_of(cuda_net(checkpoint), view1, view2)
    for key in ("pts3d1", "pts3d_in_other_view2"):
        assert bool(torch.isfinite(ours[key]).all())
        assert rel_err(ours[key].float(), c[key]) < 5e-2, key
    assert bool((ours["conf1"] > 1).all()) and bool((ours["conf2"] > 1).all())


def test_batched_pair_inference_on_cuda_equals_one_pair_at_a_time(cuda_net, case, rel_err):
    """The predictor's automatic batch size (from free GPU memory) changes nothing but speed."""
    c = case("a3r_tiny_a", "square_64x64_b2")
    img = torch.from_numpy(c["img1"][:1]).repeat(5, 1, 1, 1) + 0.1 * torch.arange(5.0).view(5, 1, 1, 1)
    true_shape = torch.tensor([[64, 64]]).repeat(5, 1)
    prior = torch.from_numpy(c["pred_depth1"][:1]).repeat(5, 1, 1, 1)
    graph = make_graph("complete", 5)
    outputs = {}
    for batch_size in ("auto", 1):
        predictor = PairPredictor(cuda_net("a3r_tiny_a"), img, true_shape, prior, device="cuda", precision="fp32",
                                  batch_size=batch_size, output_device="cpu", progress=False)
        if batch_size == "auto":
            assert predictor.batch_size > 1
        outputs[batch_size] = predictor(graph)
    auto, single = outputs["auto"], outputs[1]
    assert auto.edges.tolist() == single.edges.tolist() == graph.edges.tolist()
    for name in ("pts3d_i", "pts3d_j", "conf_i", "conf_j"):
        # batching changes only the kernels' summation order: the parity tests' 1e-4 measure, 10x tighter
        assert rel_err(getattr(auto, name), getattr(single, name).numpy()) < 1e-5, name
