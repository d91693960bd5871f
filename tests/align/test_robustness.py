"""Robustness of the aligner to degenerate input: sane focal estimates, divergence detected."""

def test_degenerate_point_maps_give_finite_focals_not_nan():
    """An untrained network puts half its points behind the camera: the Weiszfeld focal is then
    meaningless (tiny or negative) and must not poison the parameters with NaN."""
    import torch

    from align3r.align.init import sane_focals

    f = torch.tensor([50.0, -3.0, float("nan"), 1e-4, 60.0, 1e9])
    out = sane_focals(f, 48, 64)
    assert torch.isfinite(out).all() and (out > 0).all()
    assert out[0] == 50 and out[4] == 60  # sane ones untouched
    assert torch.allclose(out[[1, 2, 3, 5]], torch.tensor(50.0))  # (lower) median of the sane ones
    assert torch.allclose(sane_focals(torch.tensor([-1.0, float("nan")]), 48, 64), torch.tensor(64.0))


def test_a_diverging_optimisation_raises_instead_of_returning_nan():
    import pytest
    import torch

    from align3r.align.optimize import AlignmentDiverged, _check_finite

    _check_finite(torch.tensor(0.3), 24)
    with pytest.raises(AlignmentDiverged, match=r"diverged by iteration 25 .*align_settings\.lr"):
        _check_finite(torch.tensor(float("nan")), 24)
