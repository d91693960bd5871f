"""16-bit depth PNGs, colour previews, confidence and mask PNGs."""

import json

import cv2
import numpy as np

from align3r.export import images


def test_png16_scale_maps_the_largest_depth_to_65535_and_round_trips():
    depth = np.array([[0.5, 2.0], [7.25, 30.0]], np.float32)
    scale = images.depth_png_scale(depth)
    png = images.encode_depth_png16(depth, scale)
    assert png.dtype == np.uint16 and png.max() == 65535
    back = images.decode_depth_png16(images.read_png_bytes(images.encode_png(png)), scale)
    assert np.abs(back - depth).max() <= 0.5 / scale + 1e-6


def test_png16_never_wraps_and_keeps_invalid_apart():
    depth = np.array([[1.0, 1e9, np.nan], [-1.0, 0.0, 1e-9]], np.float32)
    png = images.encode_depth_png16(depth, scale=1000.0)
    # Too far saturates (the official uint8 cast wraps around); invalid is 0; tiny-but-valid is 1.
    assert png.tolist() == [[1000, 65535, 0], [0, 0, 1]]
    decoded = images.decode_depth_png16(png, 1000.0)
    assert np.isnan(decoded[0, 2]) and np.isnan(decoded[1, 0]) and decoded[0, 0] == 1.0


def test_colour_preview_is_brighter_when_nearer_and_black_when_invalid():
    depth = np.array([[1.0, 2.0, 4.0, np.nan]], np.float32)
    rgb = images.colorize_depth(depth, images.inverse_depth_range(depth, 0, 100))
    luminance = rgb.astype(float) @ [0.299, 0.587, 0.114]
    assert luminance[0, 0] > luminance[0, 1] > luminance[0, 2] > 0
    assert rgb[0, 3].tolist() == [0, 0, 0]


def test_written_depth_pngs_decode_with_the_manifest_scale(written):
    out, recon, _, _ = written
    manifest = json.loads((out / "manifest.json").read_text())
    scale = manifest["outputs"]["depth_png"]["scale"]
    png = cv2.imread(str(out / "depth" / "00002.png"), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and png.shape == (48, 64)
    assert np.abs(png / scale - recon.depth[2].numpy()).max() <= 0.5 / scale + 1e-5
    preview = cv2.imread(str(out / "depth_preview" / "00002.png"))
    assert preview.shape == (48, 64, 3) and preview.std() > 5  # a real gradient, not a flat image


def test_written_masks_and_confidence_pngs(written):
    out, recon, _, _ = written
    mask = cv2.imread(str(out / "dynamic_mask" / "00001.png"), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    assert np.array_equal(mask == 255, recon.dynamic_mask[1].numpy())
    conf_png = cv2.imread(str(out / "confidence" / "00001.png"), cv2.IMREAD_UNCHANGED)
    conf = recon.conf[1].numpy()
    # Monotonic in confidence: the most confident pixel is brighter than the least confident.
    assert conf_png[np.unravel_index(conf.argmax(), conf.shape)] > conf_png[np.unravel_index(conf.argmin(), conf.shape)]


def test_colormaps_are_matplotlibs():
    from matplotlib import colormaps  # installed with evo (dev extra); the writer itself uses OpenCV

    t = np.linspace(0, 1, 256)
    for name in ("inferno", "viridis"):
        ours = images.apply_colormap(t, name).astype(int)
        assert np.abs(ours - colormaps[name](t, bytes=True)[:, :3]).max() <= 1
