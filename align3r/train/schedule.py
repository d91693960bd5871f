"""Learning-rate schedule of the reference (MAE/DUSt3R style), evaluated per fractional epoch."""

from __future__ import annotations

import math


def learning_rate(epoch: float, *, lr: float, min_lr: float, warmup_epochs: float, epochs: float) -> float:
    """Linear warm-up from 0 to ``lr`` over ``warmup_epochs``, then half-cosine down to ``min_lr``.

    ``epoch`` is fractional (epoch index + batch index / batches per epoch); the trainer evaluates
    it at the first micro-batch of every accumulation window.
    """
    if epoch < warmup_epochs:
        return lr * epoch / warmup_epochs
    span = max(epochs - warmup_epochs, 1e-12)
    progress = min((epoch - warmup_epochs) / span, 1.0)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
