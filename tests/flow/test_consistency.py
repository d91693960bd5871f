"""Forward-backward validity: exact agreement with the reference masks, known values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from align3r.flow import forward_backward_residual, forward_backward_valid, lands_inside


def _constant(h, w, du, dv, b=1):
    flow = torch.empty(b, 2, h, w)
    flow[:, 0], flow[:, 1] = du, dv
    return flow


def test_reference_masks_on_fixture(fixtures_dir):
    """The reference's OccMask(th=3) on exact flows, both directions: every pixel must agree."""
    flows = np.load(fixtures_dir / "align" / "align_flow_inputs.npz")
    ref = np.load(fixtures_dir / "align" / "align_outputs.npz")
    flow_ij, flow_ji = torch.from_numpy(flows["flow_ij"]), torch.from_numpy(flows["flow_ji"])
    valid_i = forward_backward_valid(flow_ij, flow_ji)
    valid_j = forward_backward_valid(flow_ji, flow_ij)
    ref_i = torch.from_numpy(ref["flow_perfect__flow_valid_i"][:, 0])
    ref_j = torch.from_numpy(ref["flow_perfect__flow_valid_j"][:, 0])
    assert valid_i.shape == ref_i.shape == (48, 48, 64)
    assert int((valid_i != ref_i).sum()) == 0
    assert int((valid_j != ref_j).sum()) == 0
    # The fixture is not trivial: about a fifth of the pixels are invalid.
    assert 0.7 < float(ref_i.float().mean()) < 0.9


def test_fixture_masks_differ_under_a_true_norm(fixtures_dir):
    """The 'norm' option is a genuinely different test on real residuals (both ways round)."""
    flows = np.load(fixtures_dir / "align" / "align_flow_inputs.npz")
    flow_ij, flow_ji = torch.from_numpy(flows["flow_ij"]), torch.from_numpy(flows["flow_ji"])
    by_sum = forward_backward_valid(flow_ij, flow_ji)
    by_norm = forward_backward_valid(flow_ij, flow_ji, residual="norm")
    # |r_x + r_y| < 3 keeps opposite-sign residuals; ‖r‖ < 3 keeps same-sign ones up to 3/√2 each.
    assert int((by_sum & ~by_norm).sum()) > 0
    assert int((by_norm & ~by_sum).sum()) > 0
    assert int((by_sum != by_norm).sum()) < 0.01 * by_sum.numel()


def test_sum_quirk_and_norm_option():
    h, w = 6, 8
    fw = torch.zeros(1, 2, h, w)
    bw = _constant(h, w, 4.0, -4.0)  # residual (+4, -4): |sum| = 0, norm = 5.66
    assert forward_backward_valid(fw, bw).all()
    assert not forward_backward_valid(fw, bw, residual="norm").any()
    bw_small = _constant(h, w, 1.0, -2.0)  # norm 2.24 < 3
    assert forward_backward_valid(fw, bw_small, residual="norm").all()
    bw_x = _constant(h, w, 3.0, 0.0)  # exactly on the threshold: invalid (strict <)
    assert not forward_backward_valid(fw, bw_x).any()


def test_translation_is_consistent_where_it_lands_inside():
    h, w = 10, 12
    fw, bw = _constant(h, w, 2.5, -1.0), _constant(h, w, -2.5, 1.0)
    valid = forward_backward_valid(fw, bw)[0]
    residual = forward_backward_residual(fw, bw)[0]
    u = torch.arange(w).view(1, w).expand(h, w)
    v = torch.arange(h).view(h, 1).expand(h, w)
    inside = (u + 2.5 <= w - 1) & (v - 1.0 >= 0)
    assert torch.equal(valid, inside)
    assert torch.allclose(residual[:, inside], torch.zeros(2, int(inside.sum())), atol=1e-5)


def test_bounds_are_inclusive_pixel_centres():
    h, w = 4, 5
    fw = torch.zeros(1, 2, h, w)
    fw[0, 0, :, 0] = float(w - 1)    # column 0 -> last column centre: inside
    fw[0, 0, :, 1] = float(w - 1)    # column 1 -> w, beyond the last centre: outside
    fw[0, 1, 0, 2] = -1e-3           # row 0 slightly above the first centre: outside
    inside = lands_inside(fw)[0]
    assert inside[:, 0].all() and not inside[:, 1].any() and not inside[0, 2] and inside[1:, 2].all()


def test_bilinear_read_between_pixels():
    """F_bw is read bilinearly at sub-pixel targets (align_corners=True: integer = pixel centre)."""
    h, w = 3, 4
    fw = torch.zeros(1, 2, h, w)
    fw[0, 0, 1, 1] = 0.25                       # pixel (1, 1) -> (1.25, 1)
    bw = torch.zeros(1, 2, h, w)
    bw[0, 0, 1, :] = torch.tensor([0.0, -2.0, 2.0, 0.0])
    r = forward_backward_residual(fw, bw)
    assert r[0, 0, 1, 1].item() == pytest.approx(0.25 + (0.75 * -2.0 + 0.25 * 2.0))


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        forward_backward_valid(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="differ in shape"):
        forward_backward_valid(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))
    with pytest.raises(ValueError, match="residual"):
        forward_backward_valid(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), residual="l1")
