"""Benchmark readers: dataset root -> list of :class:`Sequence` records in protocol order.

>>> seqs = load_benchmark("bonn", "data/bonn/rgbd_bonn_dataset", task="pose")  # doctest: +SKIP
>>> seqs[0].frame_paths[:2], seqs[0].trajectory.cam2world.shape, seqs[0].prior_path(0, "depthpro")

Readers (their module docstrings give the expected layout and the exact protocol):
``sintel``, ``bonn``, ``tum``, ``pointodyssey``, ``flyingthings3d``, ``davis``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from align3r.eval.datasets.base import OFFICIAL_CACHE_PRIORS, TASKS, Sequence
from align3r.eval.datasets.bonn import BONN_SEQUENCES, bonn_sequences
from align3r.eval.datasets.davis import davis_sequences
from align3r.eval.datasets.flyingthings3d import flyingthings3d_sequences
from align3r.eval.datasets.pointodyssey import pointodyssey_sequences
from align3r.eval.datasets.sintel import SINTEL_POSE_SEQUENCES, sintel_sequences
from align3r.eval.datasets.tum import TUM_DYNAMIC_SEQUENCES, tum_sequences

BENCHMARKS: dict[str, Callable[..., list[Sequence]]] = {
    "sintel": sintel_sequences,
    "bonn": bonn_sequences,
    "tum": tum_sequences,
    "pointodyssey": pointodyssey_sequences,
    "flyingthings3d": flyingthings3d_sequences,
    "davis": davis_sequences,
}


def load_benchmark(name: str, root: str | Path, **options) -> list[Sequence]:
    """The sequences of benchmark ``name`` under ``root``; ``options`` go to its reader
    (``task``, ``sequences``, and per dataset ``pass_name``, ``association``, ``split``)."""
    key = name.lower()
    if key not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    return BENCHMARKS[key](root, **options)


__all__ = [
    "BENCHMARKS",
    "BONN_SEQUENCES",
    "OFFICIAL_CACHE_PRIORS",
    "SINTEL_POSE_SEQUENCES",
    "TASKS",
    "TUM_DYNAMIC_SEQUENCES",
    "Sequence",
    "bonn_sequences",
    "davis_sequences",
    "flyingthings3d_sequences",
    "load_benchmark",
    "pointodyssey_sequences",
    "sintel_sequences",
    "tum_sequences",
]
