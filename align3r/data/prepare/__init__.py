"""Preparation of the raw training downloads into the processed layout (``align3r.data.io``).

One module per source dataset, each exposing ``raw_sequences(raw_root, ...) -> list[RawSequence]``;
:func:`align3r.data.prepare.common.prepare_sequences` does the rest. The thin command-line
wrappers live in ``scripts/train/``.
"""

from align3r.data.prepare.common import (
    BLENDER_TO_OPENCV,
    ProcessedFrame,
    RawFrame,
    RawSequence,
    prepare_sequences,
    process_frame,
    processed_size,
)

__all__ = [
    "BLENDER_TO_OPENCV",
    "ProcessedFrame",
    "RawFrame",
    "RawSequence",
    "prepare_sequences",
    "process_frame",
    "processed_size",
]
