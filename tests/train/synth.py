"""Synthetic scenes with exact geometry, writers of tiny raw datasets in their real formats (Spring's
``.dsp5`` needs h5py), and geometry checks on loaded views.

The scene is the inside of an axis-aligned box centred on the world origin (half extents
``HALF``); cameras stand inside it. Depth is ray-cast exactly, so every GT point of every view
must lie on the box surface: :func:`box_residual` measures how far points are from it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy.spatial.transform import Rotation

HALF = np.array([4.0, 3.0, 5.0])
BLENDER = np.diag([1.0, -1.0, -1.0, 1.0])
#: Stereo baseline of the raw sets with a right camera (SceneFlow, VKITTI2), in scene units.
BASELINE = 0.5


def camera_poses(n: int, seed: int = 0) -> np.ndarray:
    """(n, 4, 4) OpenCV camera-to-world poses inside the box, smoothly moving and turning."""
    rng = np.random.default_rng(seed)
    poses = np.tile(np.eye(4), (n, 1, 1))
    start = rng.uniform(-0.5, 0.5, 3)
    step = rng.uniform(-0.15, 0.15, 3)
    angles = rng.uniform(-0.3, 0.3, 3)
    turn = rng.uniform(-0.05, 0.05, 3)
    for k in range(n):
        poses[k, :3, :3] = Rotation.from_rotvec(angles + k * turn).as_matrix()
        poses[k, :3, 3] = start + k * step
    return poses


def right_camera(poses: np.ndarray, baseline: float = BASELINE) -> np.ndarray:
    """Camera-to-world poses of the right camera of a stereo rig: ``baseline`` along camera +x."""
    shift = np.eye(4)
    shift[0, 3] = baseline
    return poses @ shift


def render_depth(k: np.ndarray, cam2world: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W) float32 z-depth of the box interior seen from ``cam2world`` with intrinsics ``k``."""
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    rays = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], axis=-1)
    dirs = rays @ cam2world[:3, :3].T  # world directions with unit camera-z
    centre = cam2world[:3, 3]
    with np.errstate(divide="ignore"):
        t = (np.sign(dirs) * HALF - centre) / dirs
    t[~np.isfinite(t) | (t <= 0)] = np.inf
    return t.min(axis=-1).astype(np.float32)


def texture(k: np.ndarray, cam2world: np.ndarray, depth: np.ndarray) -> Image.Image:
    """A checkerboard painted on the box walls, as seen by the camera (RGB)."""
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    cam = np.stack([(u - k[0, 2]) * depth / k[0, 0], (v - k[1, 2]) * depth / k[1, 1], depth], axis=-1)
    world = cam @ cam2world[:3, :3].T + cam2world[:3, 3]
    cells = np.floor(world * 2).astype(int).sum(-1) % 2
    rgb = np.stack([120 + 100 * cells, 60 + 50 * (world[..., 1] > 0), 200 - 120 * cells], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def box_residual(points: np.ndarray) -> np.ndarray:
    """Distance of world points (..., 3) from the box surface (0 on the walls)."""
    return np.abs(HALF - np.abs(points)).min(axis=-1)


def pinhole(fx, fy, cx, cy) -> np.ndarray:
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)


def unproject(depth: np.ndarray, k: np.ndarray, cam2world: np.ndarray) -> np.ndarray:
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    cam = np.stack([(u - k[0, 2]) * depth / k[0, 0], (v - k[1, 2]) * depth / k[1, 1], depth], axis=-1)
    return cam @ cam2world[:3, :3].T + cam2world[:3, 3]


def write_pfm_raw(path: Path, array: np.ndarray) -> None:
    """Independent PFM writer for raw inputs (little-endian ``Pf``, bottom row first)."""
    h, w = array.shape
    with open(path, "wb") as f:
        f.write(f"Pf\n{w} {h}\n-1\n".encode())
        f.write(np.flipud(array).astype("<f4").tobytes())


# ---------------------------------------------------------------------------------------------
# raw datasets


def write_pointodyssey(root: Path, n: int = 3, size=(960, 540), seq="seq_a", split="train", seed=0):
    """PointOdyssey layout; returns (K, cam2world poses)."""
    w, h = size
    k = pinhole(0.9 * w, 0.9 * w, w / 2, h / 2)
    poses = camera_poses(n, seed)
    d = root / split / seq
    (d / "rgbs").mkdir(parents=True)
    (d / "depths").mkdir()
    for i in range(n):
        depth = render_depth(k, poses[i], w, h)
        texture(k, poses[i], depth).save(d / "rgbs" / f"rgb_{i:05d}.jpg", quality=95)
        cv2.imwrite(str(d / "depths" / f"depth_{i:05d}.png"), np.round(depth / 1000 * 65535).astype(np.uint16))
    extrinsics = np.linalg.inv(poses).astype(np.float32)  # world-to-camera
    np.savez(d / "anno.npz", intrinsics=np.repeat(k[None], n, 0).astype(np.float32), extrinsics=extrinsics,
             trajs_3d=np.zeros((n, 4, 3), np.float32))
    return k, poses


def write_sceneflow_sequence(root: Path, rel: str, fx: float, n: int = 2, seed=0, cams=("left",)):
    """frames_finalpass / disparity / camera_data under ``root`` for the camera folder ``rel/<cam>``.

    The ``R`` lines hold the right camera's true pose (:func:`right_camera`), which also renders
    the ``right`` frames; returns (K, left camera-to-world poses).
    """
    k = pinhole(fx, fx, 479.5, 269.5)
    poses = {"left": camera_poses(n, seed)}
    poses["right"] = right_camera(poses["left"])
    lines = []
    for i in range(n):
        frame = 6 + i
        lines += [f"Frame {frame}", *(f"{tag} " + " ".join(f"{x:.9g}" for x in (poses[cam][i] @ BLENDER).ravel())
                                      for tag, cam in (("L", "left"), ("R", "right"))), ""]
        for cam in cams:
            fdir = root / "frames_finalpass" / rel / cam
            ddir = root / "disparity" / rel / cam
            fdir.mkdir(parents=True, exist_ok=True)
            ddir.mkdir(parents=True, exist_ok=True)
            depth = render_depth(k, poses[cam][i], 960, 540)
            texture(k, poses[cam][i], depth).save(fdir / f"{frame:04d}.png")
            write_pfm_raw(ddir / f"{frame:04d}.pfm", (fx / depth).astype(np.float32))
    cdir = root / "camera_data" / rel
    cdir.mkdir(parents=True, exist_ok=True)
    (cdir / "camera_data.txt").write_text("\n".join(lines) + "\n")
    return k, poses["left"]


def write_tartanair(root: Path, n: int = 3, seed=0, env="office", traj="P000"):
    k = pinhole(320.0, 320.0, 320.0, 240.0)
    poses = camera_poses(n, seed)
    ned = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
    for difficulty in ("Easy", "Hard"):
        d = root / env / difficulty / traj
        (d / "image_left").mkdir(parents=True)
        (d / "depth_left").mkdir()
        rows = []
        for i in range(n):
            depth = render_depth(k, poses[i], 640, 480)
            texture(k, poses[i], depth).save(d / "image_left" / f"{i:06d}_left.png")
            np.save(d / "depth_left" / f"{i:06d}_left_depth.npy", depth)
            p = np.linalg.inv(ned) @ poses[i] @ ned  # OpenCV camera-to-world → NED
            rows.append(np.concatenate([p[:3, 3], Rotation.from_matrix(p[:3, :3]).as_quat()]))
        np.savetxt(d / "pose_left.txt", np.array(rows))
    return k, poses


def write_dsp5(path: Path, disparity: np.ndarray) -> None:
    """A Spring ``.dsp5``: HDF5 with one float32 dataset ``disparity`` (needs h5py)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("disparity", data=np.asarray(disparity, dtype=np.float32), compression="gzip")


def write_spring(root: Path, n: int = 3, size=(128, 96), seed=0):
    w, h = size
    k = pinhole(110.0, 110.0, 64.0, 48.0)
    poses = camera_poses(n, seed)
    d = root / "train" / "0001"
    (d / "frame_left").mkdir(parents=True)
    (d / "disp1_left").mkdir()
    (d / "cam_data").mkdir()
    for i in range(n):
        depth = render_depth(k, poses[i], w, h)
        texture(k, poses[i], depth).save(d / "frame_left" / f"frame_left_{i + 1:04d}.png")
        disp = np.repeat(np.repeat(k[0, 0] / depth, 2, axis=0), 2, axis=1)  # twice the image size
        write_dsp5(d / "disp1_left" / f"disp1_left_{i + 1:04d}.dsp5", disp)
    np.savetxt(d / "cam_data" / "intrinsics.txt", np.tile([k[0, 0], k[1, 1], k[0, 2], k[1, 2]], (n, 1)))
    np.savetxt(d / "cam_data" / "extrinsics.txt", np.stack([(p @ BLENDER).ravel() for p in poses]))
    return k, poses


def write_vkitti2(root: Path, n: int = 3, size=(128, 96), seed=0):
    """VKITTI2 layout, Camera_1 at :func:`right_camera`; returns (K, Camera_0 poses)."""
    w, h = size
    k = pinhole(100.0, 100.0, 64.0, 48.0)
    poses = camera_poses(n, seed)
    rel = Path("Scene01") / "clone"
    intr, extr = ["frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]"], ["frame cameraID r1,1 ... 0 0 0 1"]
    for cam in (0, 1):
        rdir = root / "vkitti_2.0.3_rgb" / rel / "frames" / "rgb" / f"Camera_{cam}"
        ddir = root / "vkitti_2.0.3_depth" / rel / "frames" / "depth" / f"Camera_{cam}"
        rdir.mkdir(parents=True)
        ddir.mkdir(parents=True)
    cam_poses = (poses, right_camera(poses))  # Camera_0 (left), Camera_1 (right)
    for i in range(n):
        for cam in (0, 1):
            pose = cam_poses[cam][i]
            depth = render_depth(k, pose, w, h)
            texture(k, pose, depth).save(root / "vkitti_2.0.3_rgb" / rel / "frames" / "rgb" / f"Camera_{cam}"
                                         / f"rgb_{i:05d}.jpg", quality=95)
            cv2.imwrite(str(root / "vkitti_2.0.3_depth" / rel / "frames" / "depth" / f"Camera_{cam}"
                            / f"depth_{i:05d}.png"), np.round(depth * 100).astype(np.uint16))
            intr.append(f"{i} {cam} {k[0, 0]} {k[1, 1]} {k[0, 2]} {k[1, 2]}")
            extr.append(f"{i} {cam} " + " ".join(f"{x:.9g}" for x in np.linalg.inv(pose).ravel()))
    tdir = root / "vkitti_2.0.3_textgt" / rel
    tdir.mkdir(parents=True)
    (tdir / "intrinsic.txt").write_text("\n".join(intr) + "\n")
    (tdir / "extrinsic.txt").write_text("\n".join(extr) + "\n")
    return k, poses


# ---------------------------------------------------------------------------------------------
# processed datasets (directly in the processed layout, with priors)


def write_prior(rgb_path: Path, depth: np.ndarray, focal: float, name: str = "depthpro") -> None:
    """A Depth-Pro-style cached prior: the GT depth, slightly warped so it is not the GT itself."""
    prior = depth * (1 + 0.05 * np.sin(np.linspace(0, 3, depth.shape[1]))[None, :])
    np.savez(rgb_path.with_name(f"{rgb_path.stem}_pred_depth_{name}.npz"), depth=prior.astype(np.float32),
             focallength_px=np.float32(focal))


def write_priors(root: Path, name: str = "depthpro") -> int:
    """:func:`write_prior` beside every processed frame under ``root`` (from its GT depth and fx)."""
    from align3r.data.io import RGB_SUFFIX, FramePaths, read_metadata, read_pfm

    frames = sorted(root.rglob(f"*{RGB_SUFFIX}"))
    for rgb in frames:
        paths = FramePaths(rgb)
        write_prior(rgb, read_pfm(paths.depth), float(read_metadata(paths.metadata)[0][0, 0]), name)
    return len(frames)


def write_processed_sequence(folder: Path, n: int, size=(96, 64), seed=0, focal=None, prior_names=("depthpro",)):
    """A processed-layout sequence of ``n`` box-room frames of ``size`` (W, H), with priors."""
    from align3r.data.io import FramePaths, write_mask, write_metadata, write_pfm

    w, h = size
    f = focal or 0.9 * w
    k = pinhole(f, f, w / 2, h / 2)
    poses = camera_poses(n, seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        paths = FramePaths.of(folder, f"{i:04d}")
        depth = render_depth(k, poses[i], w, h)
        texture(k, poses[i], depth).save(paths.rgb, quality=95)
        write_pfm(paths.depth, depth)
        write_mask(paths.mask, (depth > 0) & (depth < 400))
        write_metadata(paths.metadata, k, poses[i])
        for name in prior_names:
            write_prior(paths.rgb, depth, f, name)
    return k, poses


# ---------------------------------------------------------------------------------------------
# checks on loaded views


def cross_view_depth_error(view1: dict, view2: dict) -> tuple[np.ndarray, int]:
    """How well view 1's GT world points agree with view 2's GT (landscape views).

    Every valid point of view 1 (``valid_mask`` channel 0) is moved into view 2's camera with
    view 2's ``camera_pose`` and projected with its intrinsics; where it lands on a pixel of view 2
    with a GT depth, the relative difference |z₂(pixel) − z| / z₂ is returned. Also returns the
    number of valid points of view 1 (to tell how many were seen by view 2).
    """
    pts = view1["pts3d"].numpy()[view1["valid_mask"].numpy()[..., 0]].astype(np.float64)
    world_to_cam2 = np.linalg.inv(view2["camera_pose"].numpy().astype(np.float64))
    cam = pts @ world_to_cam2[:3, :3].T + world_to_cam2[:3, 3]
    k2 = view2["camera_intrinsics"].numpy().astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.round(k2[0, 0] * cam[:, 0] / cam[:, 2] + k2[0, 2])
        v = np.round(k2[1, 1] * cam[:, 1] / cam[:, 2] + k2[1, 2])
    h, w = view2["depthmap"].shape
    inside = (cam[:, 2] > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    depth2 = view2["depthmap"].numpy()[v[inside].astype(int), u[inside].astype(int)]
    seen = depth2 > 0
    return np.abs(depth2[seen] - cam[inside, 2][seen]) / depth2[seen], len(pts)
