"""The interface every depth-prior source implements, and the input checks they share.

A *prior source* turns video frames into one :class:`~align3r.priors.types.DepthPrior` per frame.
Monocular networks (Depth Pro, Depth Anything V2) and files on disk (user depth, the official
caches) implement the same two methods, so the pipeline and :class:`~align3r.priors.cache.PriorCache`
never care which one they hold.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from align3r.device import resolve_device as resolve_device  # re-exported
from align3r.errors import InputError
from align3r.priors.types import DepthPrior

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


class PriorSource(ABC):
    """Something that yields a depth prior per frame.

    Subclasses implement :meth:`predict_iter`; :meth:`predict` collects it into a list.
    """

    #: short name used in file names, e.g. "depthpro" (official ``_pred_depth_<name>.npz``)
    name: str = "prior"
    #: whether :class:`PriorCache` should store its results (files on disk are not re-cached)
    cacheable: bool = True
    #: its depth is metric, in metres (Depth Pro, the official Depth Pro caches, user depth declared
    #: metric): ``scale=metric`` can then put the reconstruction in metres
    metric: bool = False

    @property
    @abstractmethod
    def identity(self) -> str:
        """A string that changes whenever the values this source returns could change
        (model id + revision or weight fingerprint + settings). Cheap: never loads weights."""

    @abstractmethod
    def predict_iter(
        self,
        images: Sequence[np.ndarray],
        focal_px: Sequence[float | None] | None = None,
        frame_names: Sequence[str] | None = None,
        frame_indices: Sequence[int] | None = None,
    ) -> Iterator[DepthPrior]:
        """Yield one prior per image, in order, at each image's resolution.

        Args:
            images: N uint8 (H, W, 3) RGB frames at original resolution. Sizes may differ.
            focal_px: N known focal lengths in px (e.g. from EXIF) or None per frame/overall.
            frame_names: N frame file names or paths (used by file-based sources to find
                their files; models ignore them).
            frame_indices: N source indices (frame number in the video, position in the image
                folder), so file sources that match files by order pick the same file for a
                frame whatever the sampling or chunking; models ignore them. None: 0..N-1.
        """

    def predict(
        self,
        images: Sequence[np.ndarray],
        focal_px: Sequence[float | None] | None = None,
        frame_names: Sequence[str] | None = None,
        frame_indices: Sequence[int] | None = None,
    ) -> list[DepthPrior]:
        """All priors as a list (see :meth:`predict_iter`; prefer that for long videos)."""
        return list(self.predict_iter(images, focal_px, frame_names, frame_indices))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.identity})"


def check_image(image: np.ndarray, index: int) -> np.ndarray:
    """Return ``image`` if it is a uint8 (H, W, 3) RGB frame, else raise :class:`InputError`."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"frame {index}: expected a numpy uint8 (H, W, 3) RGB array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InputError(f"frame {index}: expected uint8 pixels (0..255), got dtype {image.dtype}; "
                         "convert with (img * 255).round().astype(np.uint8) if it is float in [0, 1]")
    if image.ndim != 3 or image.shape[2] != 3:
        hint = " (drop the alpha channel: img[..., :3])" if image.ndim == 3 and image.shape[2] == 4 else ""
        raise InputError(f"frame {index}: expected shape (H, W, 3) RGB, got {image.shape}{hint}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise InputError(f"frame {index}: image of size {image.shape[1]}x{image.shape[0]} is too small")
    return image


def check_focals(focal_px: Sequence[float | None] | None, count: int) -> list[float | None]:
    """Normalise ``focal_px`` to a list of ``count`` positive floats or None."""
    if focal_px is None:
        return [None] * count
    focals = list(focal_px)
    if len(focals) != count:
        raise InputError(f"got {len(focals)} focal lengths for {count} frames; give one per frame (None if unknown)")
    out: list[float | None] = []
    for i, f in enumerate(focals):
        if f is None:
            out.append(None)
            continue
        f = float(f)
        if not math.isfinite(f) or f <= 0:
            raise InputError(f"frame {i}: focal length must be a positive number of pixels, got {f}")
        out.append(f)
    return out


def check_names(frame_names: Sequence[str] | None, count: int) -> list[str] | None:
    if frame_names is None:
        return None
    names = [str(n) for n in frame_names]
    if len(names) != count:
        raise InputError(f"got {len(names)} frame names for {count} frames")
    return names


def check_indices(frame_indices: Sequence[int] | None, count: int) -> list[int] | None:
    """Normalise ``frame_indices`` to ``count`` source indices >= 0 (or None)."""
    if frame_indices is None:
        return None
    indices = [int(i) for i in frame_indices]
    if len(indices) != count:
        raise InputError(f"got {len(indices)} frame indices for {count} frames")
    if any(i < 0 for i in indices):
        raise InputError(f"frame indices must be >= 0, got {min(indices)}")
    return indices


def same_size_batches(images: Sequence[np.ndarray], batch_size: int) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """Consecutive frames grouped into batches of at most ``batch_size`` frames of one size.

    Yields ``(indices, frames)``. Each frame is read from ``images`` exactly once (a lazy
    sequence decodes it once). Order is preserved, so results can be yielded as soon as a batch
    is done; a size change simply starts a new batch (videos rarely mix sizes)."""
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    indices: list[int] = []
    frames: list[np.ndarray] = []
    for i in range(len(images)):
        image = check_image(images[i], i)
        if frames and (image.shape != frames[0].shape or len(frames) == batch_size):
            yield indices, frames
            indices, frames = [], []
        indices.append(i)
        frames.append(image)
    if frames:
        yield indices, frames


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``None`` → float16 on CUDA (half the memory, tensor cores), float32 elsewhere (CPU half is slow)."""
    if dtype is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    else:
        resolved = _DTYPES.get(str(dtype).lower().removeprefix("torch."))
    if resolved not in (torch.float32, torch.float16, torch.bfloat16):
        raise InputError(f"unsupported dtype {dtype!r}: use float32, float16 or bfloat16")
    return resolved


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
