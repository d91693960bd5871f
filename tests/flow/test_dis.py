"""DIS recovers known translations of a real textured image (a DAVIS frame)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from align3r.flow import compute_pair_flow, load_flow_backend
from align3r.flow.dis import to_grey_uint8

H, W = 96, 128
MARGIN = 8  # DIS is least reliable at the borders, where part of the patch content is missing


@pytest.fixture(scope="module")
def frame(data_dir) -> np.ndarray:
    bgr = cv2.imread(str(data_dir / "davis_lady_running" / "demo_data" / "lady-running" / "00000.jpg"))
    assert bgr is not None and bgr.shape == (480, 854, 3)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _shifted_pair(frame, dx: int, dy: int, factor: int) -> np.ndarray:
    """Two H x W views of the frame, the second's window moved by (dx, dy) full-resolution pixels.

    Area-downsampling both windows by ``factor`` gives an exact translation of the box-filtered
    image by (dx, dy) / factor pixels: content at (u, v) in the first is at (u, v) - (dx, dy) / factor
    in the second.
    """
    y0, x0 = 40, 40
    windows = [frame[y0 + oy:y0 + oy + H * factor, x0 + ox:x0 + ox + W * factor] for ox, oy in ((0, 0), (dx, dy))]
    return np.stack([cv2.resize(w, (W, H), interpolation=cv2.INTER_AREA) for w in windows])


def _interior(flow: torch.Tensor) -> torch.Tensor:
    return flow[..., MARGIN:-MARGIN, MARGIN:-MARGIN]


@pytest.mark.parametrize(("dx", "dy", "factor"), [(5, -3, 1), (1, 3, 4), (6, 2, 4), (-3, 5, 4)])
def test_medium_recovers_translation(frame, dx, dy, factor):
    images = _shifted_pair(frame, dx, dy, factor)
    flow = compute_pair_flow(images, [[0, 1]], backend="dis", preset="medium", progress=False)
    expected = torch.tensor([-dx / factor, -dy / factor]).view(2, 1, 1)
    epe_ij = torch.linalg.vector_norm(_interior(flow.flow_ij[0]) - expected, dim=0)
    epe_ji = torch.linalg.vector_norm(_interior(flow.flow_ji[0]) + expected, dim=0)
    # Measured 0.03-0.06 px mean end-point error on these shifts.
    assert float(epe_ij.mean()) < 0.1 and float(epe_ji.mean()) < 0.1
    assert float(epe_ij.quantile(0.95)) < 0.25
    median = _interior(flow.flow_ij[0]).flatten(1).median(dim=1).values
    assert torch.allclose(median, expected.flatten(), atol=0.06)
    # Pixels whose true target leaves the image are never valid; most interior ones are.
    if dx < 0:
        assert not flow.valid_ij[0, :, W - 1].any()
    if dy > 0:
        assert not flow.valid_ij[0, 0, :].any()
    assert float(_interior(flow.valid_ij[0].float()).mean()) > 0.95


def test_presets_trade_accuracy(frame):
    images = _shifted_pair(frame, 8, -4, 4)
    expected = torch.tensor([-2.0, 1.0]).view(2, 1, 1)
    epe = {}
    for preset in ("ultrafast", "fast", "medium"):
        flow = compute_pair_flow(images, [[0, 1]], backend="dis", preset=preset, progress=False)
        epe[preset] = float(torch.linalg.vector_norm(_interior(flow.flow_ij[0]) - expected, dim=0).mean())
    # Measured: ultrafast 0.24, fast 0.11, medium 0.04 px.
    assert epe["medium"] < epe["ultrafast"] and epe["ultrafast"] < 0.4


def test_grey_conversion_matches_opencv(frame):
    rgb = frame[:H, :W]
    net = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255).sub(0.5).div(0.5)
    ours = to_grey_uint8(net)[0].astype(int)
    assert np.abs(ours - cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(int)).max() <= 1


def test_parallel_batch_equals_one_at_a_time(frame):
    images = np.stack([_shifted_pair(frame, dx, 0, 2)[1] for dx in (0, 2, 4, 6)])
    net = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5)
    dis = load_flow_backend("dis", num_workers=4)
    source, target = net[[0, 1, 2, 3]], net[[1, 2, 3, 0]]
    together = dis(source, target)
    alone = torch.cat([dis(source[k:k + 1], target[k:k + 1]) for k in range(4)])
    assert together.shape == (4, 2, H, W) and together.dtype == torch.float32
    assert torch.equal(together, alone)


def test_unknown_preset():
    with pytest.raises(ValueError, match="medium"):
        load_flow_backend("dis", preset="slow")
