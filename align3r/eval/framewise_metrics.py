"""Per-frame averaged depth metrics, equal to the official ``tool/metric.py`` (Marigold-style).

The official evaluation imports but does not use these; they are here so numbers reported with
them can be reproduced. No alignment is done: pass already aligned predictions.

Each metric is computed per frame over that frame's valid pixels, then averaged over frames,
except ``log10`` (pooled over all valid pixels of all frames) and ``silog_rmse``
(sqrt of the frame-mean of the per-frame scale-invariant log variance, times 100).
"""

from __future__ import annotations

import numpy as np

FRAMEWISE_METRIC_NAMES = (
    "abs_relative_difference", "squared_relative_difference", "rmse_linear", "rmse_log", "log10",
    "delta1_acc", "delta2_acc", "delta3_acc", "i_rmse", "silog_rmse",
)


def framewise_depth_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """Metrics of ``tool/metric.py``.

    Args:
        pred: (T, H, W) positive predicted depth (already aligned).
        gt: (T, H, W) ground-truth depth.
        valid: (T, H, W) bool pixels to score; every frame should have at least one.
    Returns:
        :data:`FRAMEWISE_METRIC_NAMES` -> value.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if not (pred.shape == gt.shape == valid.shape) or pred.ndim != 3:
        raise ValueError(f"pred, gt and valid must share one (T, H, W) shape, got "
                         f"{pred.shape}, {gt.shape}, {valid.shape}")
    n = valid.sum(axis=(1, 2)).astype(np.float64)  # (T,)
    # Invalid pixels are zeroed before the sums (their values may be inf/NaN: gt = 0 there).
    safe_gt = np.where(valid, gt, 1.0)
    safe_pred = np.where(valid, pred, 1.0)

    def frame_mean(values: np.ndarray) -> np.ndarray:
        return np.where(valid, values, 0.0).sum(axis=(1, 2)) / n

    diff = safe_pred - safe_gt
    log_diff = np.log(safe_pred) - np.log(safe_gt)
    ratio = np.maximum(safe_pred / safe_gt, safe_gt / safe_pred)
    first = frame_mean(log_diff**2)
    second = (np.where(valid, log_diff, 0.0).sum(axis=(1, 2)) / n) ** 2
    out = {
        "abs_relative_difference": frame_mean(np.abs(diff) / safe_gt).mean(),
        "squared_relative_difference": frame_mean(diff**2 / safe_gt).mean(),
        "rmse_linear": np.sqrt(frame_mean(diff**2)).mean(),
        "rmse_log": np.sqrt(frame_mean(log_diff**2)).mean(),
        "log10": np.abs(np.log10(pred[valid]) - np.log10(gt[valid])).mean(),
        "delta1_acc": frame_mean((ratio < 1.25).astype(np.float64)).mean(),
        "delta2_acc": frame_mean((ratio < 1.25**2).astype(np.float64)).mean(),
        "delta3_acc": frame_mean((ratio < 1.25**3).astype(np.float64)).mean(),
        "i_rmse": np.sqrt(frame_mean((1.0 / safe_pred - 1.0 / safe_gt) ** 2)).mean(),
        "silog_rmse": np.sqrt(np.mean(first - second)) * 100,
    }
    return {k: float(v) for k, v in out.items()}
