"""compute_pair_flow: the public entry, with DIS and with RAFT (random weights) on tiny images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from align3r.errors import InputError
from align3r.flow import PairFlow, compute_pair_flow, forward_backward_valid, load_flow_backend
from align3r.pairs import PairGraph

N, H, W = 4, 44, 60  # deliberately not multiples of 8


def _frames_u8(seed: int = 0) -> np.ndarray:
    """N smooth random RGB frames, each the previous one moved 1 px right (u8, (N, H, W, 3))."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, H // 4 + 2, (W + N) // 4 + 2, generator=g)
    wide = F.interpolate(coarse, size=(H, W + N), mode="bicubic", align_corners=False).clamp(0, 1)
    frames = [wide[0, :, :, N - k:N - k + W] for k in range(N)]
    return (torch.stack(frames).permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()


def _network(u8: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5


SYMMETRIC = [(0, 1), (2, 3), (0, 2), (1, 0), (3, 2), (2, 0)]


@pytest.fixture(scope="module")
def raft():
    torch.manual_seed(0)
    return load_flow_backend("raft-small", weights=None, num_flow_updates=3, device="cpu")


@pytest.mark.parametrize("backend", ["dis", "raft"])
def test_each_edge_gets_both_directions_of_the_backend_flow(backend, raft):
    frames = _frames_u8()
    chosen = load_flow_backend("dis") if backend == "dis" else raft
    result = compute_pair_flow(frames, torch.tensor(SYMMETRIC), backend=chosen, batch_size=3, progress=False)
    assert isinstance(result, PairFlow) and result.num_edges == len(SYMMETRIC)
    assert result.flow_ij.shape == result.flow_ji.shape == (len(SYMMETRIC), 2, H, W)
    assert result.valid_ij.shape == (len(SYMMETRIC), H, W) and result.valid_ij.dtype == torch.bool
    net = _network(frames)
    half = len(SYMMETRIC) // 2
    for e, (i, j) in enumerate(SYMMETRIC[:half]):  # the other half holds the same pairs reversed
        torch.testing.assert_close(result.flow_ij[e:e + 1], chosen(net[i:i + 1], net[j:j + 1]), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(result.flow_ji[e:e + 1], chosen(net[j:j + 1], net[i:i + 1]), rtol=1e-4, atol=1e-4)
    # A symmetric graph lists each pair twice; each directed pair is computed once and shared.
    assert torch.equal(result.flow_ij[:half], result.flow_ji[half:])
    assert torch.equal(result.valid_ij[:half], result.valid_ji[half:])
    assert torch.equal(result.valid_ij, forward_backward_valid(result.flow_ij, result.flow_ji))
    assert torch.equal(result.valid_ji, forward_backward_valid(result.flow_ji, result.flow_ij))
    assert torch.equal(result.edges, torch.tensor(SYMMETRIC))


def test_dis_sees_the_one_pixel_motion():
    result = compute_pair_flow(_frames_u8(), [(0, 1), (1, 3)], backend="dis", progress=False)
    inner = (slice(None), slice(6, -6), slice(6, -6))
    # Frame k+1 is frame k moved right by 1 px, so flow 0->1 is (+1, 0) and 1->3 is (+2, 0).
    for edge, shift in ((0, 1.0), (1, 2.0)):
        median = result.flow_ij[edge][inner].flatten(1).median(dim=1).values
        assert torch.allclose(median, torch.tensor([shift, 0.0]), atol=0.1)
        median_back = result.flow_ji[edge][inner].flatten(1).median(dim=1).values
        assert torch.allclose(median_back, torch.tensor([-shift, 0.0]), atol=0.1)
    assert not result.valid_ij[0, :, W - 1].any()  # the last column moves out of the image


def test_batch_sizes_agree(raft):
    frames = _frames_u8(1)
    edges = [(0, 1), (0, 3)]
    big = compute_pair_flow(frames, edges, backend=raft, batch_size=8, progress=False)
    small = compute_pair_flow(frames, edges, backend=raft, batch_size=1, progress=False)
    torch.testing.assert_close(big.flow_ij, small.flow_ij, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(big.flow_ji, small.flow_ji, rtol=1e-4, atol=1e-4)


def test_uint8_numpy_torch_and_float_inputs_agree(raft):
    frames = _frames_u8(2)
    edges = PairGraph.from_pairs([(0, 1), (1, 0)], num_frames=N, name="test", symmetric=True)
    results = [compute_pair_flow(images, edges, backend=raft, progress=False)
               for images in (frames, torch.from_numpy(frames), _network(frames), _network(frames).numpy())]
    for other in results[1:]:
        assert torch.equal(other.flow_ij, results[0].flow_ij)


def test_backend_by_name_with_options():
    frames = _frames_u8(3)
    result = compute_pair_flow(frames, [(0, 1)], backend="raft-small", weights=None, num_flow_updates=2,
                               device="cpu", progress=False)
    assert result.flow_ij.shape == (1, 2, H, W) and result.flow_ij.device.type == "cpu"
    assert torch.isfinite(result.flow_ij).all()


def test_self_pair_and_empty_graph():
    frames = _frames_u8(4)
    same = compute_pair_flow(frames, [(2, 2)], backend="dis", progress=False)
    assert float(same.flow_ij.abs().max()) < 0.05 and same.valid_ij.all()
    empty = compute_pair_flow(frames, torch.zeros(0, 2, dtype=torch.int64), backend="dis", progress=False)
    assert empty.num_edges == 0 and empty.flow_ij.shape == (0, 2, H, W)


def test_bad_input_is_explained():
    frames = _frames_u8()
    with pytest.raises(InputError, match=r"only 4 frames"):
        compute_pair_flow(frames, [(0, 4)], backend="dis", progress=False)
    with pytest.raises(InputError, match=r"\(E, 2\)"):
        compute_pair_flow(frames, [0, 1], backend="dis", progress=False)
    with pytest.raises(InputError, match="integer"):
        compute_pair_flow(frames, [(0.0, 1.0)], backend="dis", progress=False)
    with pytest.raises(InputError, match=r"\[-1, 1\].*uint8"):
        compute_pair_flow(_network(frames) * 127.5 + 127.5, [(0, 1)], backend="dis", progress=False)
    with pytest.raises(InputError, match="channels last"):
        compute_pair_flow(frames.astype(np.float32) / 255, [(0, 1)], backend="dis", progress=False)
    with pytest.raises(InputError, match="RGB"):
        compute_pair_flow(frames[..., :2], [(0, 1)], backend="dis", progress=False)
    nan = _network(frames)
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        compute_pair_flow(nan, [(0, 1)], backend="dis", progress=False)
    with pytest.raises(InputError, match="unknown flow backend"):
        compute_pair_flow(frames, [(0, 1)], backend="farneback", progress=False)
    with pytest.raises(InputError, match="residual"):
        compute_pair_flow(frames, [(0, 1)], backend="dis", residual="l2", progress=False)
    with pytest.raises(InputError, match="batch_size"):
        compute_pair_flow(frames, [(0, 1)], backend="dis", batch_size=0, progress=False)
    with pytest.raises(InputError, match="only apply when backend is a name"):
        compute_pair_flow(frames, [(0, 1)], backend=load_flow_backend("dis"), preset="fast", progress=False)


def test_options_of_the_wrong_backend_are_named():
    with pytest.raises(InputError, match=r"'dis' has no option weights; its options are preset, num_workers"):
        compute_pair_flow(_frames_u8(), [(0, 1)], backend="dis", weights=None, progress=False)
    with pytest.raises(InputError, match=r"'raft-small' has no option preset"):
        load_flow_backend("raft-small", preset="fast")


def test_pair_flow_to_device_keeps_values():
    result = compute_pair_flow(_frames_u8(5), [(0, 1), (1, 0)], backend="dis", progress=False)
    moved = result.to("cpu")
    assert moved is not result and moved.num_edges == 2
    for name in ("edges", "flow_ij", "flow_ji", "valid_ij", "valid_ji"):
        assert torch.equal(getattr(moved, name), getattr(result, name))
