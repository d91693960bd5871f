"""Real RGB-D data (7-Scenes, Kinect depth + KinectFusion poses) through preparation and the views.

The GT points of one augmented view, projected into the other view's camera, must land on that
view's depth: the check that ties together the crop/rescale intrinsics, the pose convention and
the per-view pipeline on real data.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from align3r.data import ProcessedPairs
from align3r.data.io import FramePaths
from align3r.data.prepare.common import RawFrame, RawSequence, prepare_sequences

FRAMES = (0, 6, 12)


def seven_scenes_sequence(data_dir) -> RawSequence:
    folder = data_dir / "seven_scenes_redkitchen_tsdf" / "data"
    k = np.loadtxt(folder / "camera-intrinsics.txt")

    def loader(i: int):
        def load():
            image = Image.open(folder / f"frame-{i:06d}.color.jpg").convert("RGB")
            depth = np.asarray(Image.open(folder / f"frame-{i:06d}.depth.png"), dtype=np.float32) / 1000.0
            return image, depth, k, np.loadtxt(folder / f"frame-{i:06d}.pose.txt")
        return load

    return RawSequence(name="redkitchen", frames=[RawFrame(f"{i:06d}", loader(i)) for i in FRAMES])


def test_real_rgbd_views_agree_across_frames(tmp_path, data_dir, synth):
    out = tmp_path / "proc"
    assert prepare_sequences([seven_scenes_sequence(data_dir)], out, progress=False) == len(FRAMES)
    for i in FRAMES:  # a Depth-Pro-like prior: the GT depth with its holes filled
        paths = FramePaths.of(out / "redkitchen", f"{i:06d}")
        from align3r.data.io import read_pfm

        depth = read_pfm(paths.depth)
        _, (rows, cols) = ndimage.distance_transform_edt(depth <= 0, return_indices=True)
        np.savez(paths.prior("depthpro"), depth=depth[rows, cols], focallength_px=np.float32(468.0))
    ds = ProcessedPairs(out, resolution=[(512, 288), (512, 336), (512, 256)], aug_crop=16, aug_focal=True,
                        color_jitter=True)
    assert len(ds) == 3
    for idx, res_idx in ((0, 0), (1, 1), (2, 2)):
        v1, v2 = ds.get_pair(idx, res_idx, np.random.default_rng(idx))
        rel, num_points = synth.cross_view_depth_error(v1, v2)
        assert len(rel) > 0.3 * num_points  # consecutive frames overlap a lot
        # Kinect noise, colour/depth misregistration and occlusions: most points agree within 2 %
        assert np.median(rel) < 0.02 and np.mean(rel < 0.05) > 0.8, (np.median(rel), np.mean(rel < 0.05))
