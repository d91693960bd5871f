"""Batched network inference over the edges of a pair graph.

Each frame is encoded once (image encoder + prior branch, ``Align3RNet.encode_frames``) and every
edge only runs the two cross-attending decoders and the heads (``decode_pairs``): at 512x288 and
~4.5 edges per frame that is about half the FLOPs of running ``net(view1, view2)`` per edge.

Edges are processed in chunks of a fixed size (``CHUNK_EDGES``); a chunk's predictions can be
cached on disk (``PredictionCache``) so an interrupted run resumes where it stopped, and the cache
stays valid when the GPU batch size changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from typing import TypeVar

import torch
from torch import Tensor
from tqdm.auto import tqdm

from align3r.align.types import PairPredictions
from align3r.cache import ChunkCache, edge_chunks
from align3r.device import resolve_device
from align3r.errors import Align3RError, InputError
from align3r.fingerprint import content_hashes, module_fingerprint
from align3r.pairs import PairGraph

log = logging.getLogger(__name__)
T = TypeVar("T")


class OutOfMemory(Align3RError):
    """The accelerator ran out of memory even with a batch of one frame (encoding) or one pair (decoding)."""


def resolve_precision(precision: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: ``"auto"`` → bf16 on CUDA (fp16 where bf16 is unsupported), none on CPU.

    Returns None for full float32.
    """
    precision = (precision or "auto").lower()
    if precision in ("fp32", "float32", "none"):
        return None
    if precision in ("bf16", "bfloat16"):
        return torch.bfloat16
    if precision in ("fp16", "float16", "half"):
        return torch.float16
    if precision != "auto":
        raise InputError(f"unknown precision {precision!r}: use auto, fp32, bf16 or fp16")
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def check_batch_size(batch_size: int | str) -> None:
    """``InputError`` unless ``batch_size`` is a positive integer or ``"auto"``."""
    if batch_size != "auto" and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise InputError(f"batch_size={batch_size}: expected a positive integer or auto")


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _free_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def initial_batch_size(device: torch.device, image_hw: tuple[int, int], dtype: torch.dtype | None,
                       requested: int | str | None) -> int:
    """The first batch size to try: the user's, or one estimated from free accelerator memory.

    The estimate assumes ~0.45 GiB of activations per pair at 512x288 in bf16 (twice that in fp32),
    scaling with the pixel count; an out-of-memory error halves it anyway.
    """
    if requested not in (None, "auto"):
        size = int(requested)
        if size < 1:
            raise InputError(f"batch size must be >= 1, got {size}")
        return size
    if device.type != "cuda":
        return 8
    free, _ = torch.cuda.mem_get_info(device)
    per_pair = 0.45 * 2**30 * (image_hw[0] * image_hw[1]) / (512 * 288) * (1 if dtype is not None else 2)
    return int(max(1, min(64, (free * 0.7) // per_pair)))


class PairPredictor:
    """Run a network over the edges of pair graphs of one set of views.

    Args:
        net: an ``Align3RNet`` (eval mode) on ``device``.
        img: (N, 3, H, W) float32 in [-1, 1] (all frames of the video at network resolution).
        true_shape: (N, 2) int.
        prior_pts3d: (N, H, W, 3) normalised prior point maps, or None for a network without prior.
        device: where to run; inputs are moved per batch.
        precision: ``"auto"`` (bf16 on CUDA, fp32 on CPU), ``"fp32"``, ``"bf16"``, ``"fp16"``.
        batch_size: edges per forward, or ``"auto"`` (from free memory, halved on OOM).
        cache: optional ``ChunkCache`` for resumable runs (one file per chunk of ``CHUNK_EDGES``).
        output_device: where the returned predictions live (default: ``device``).
        progress: tqdm bar.

    Calling it with a ``PairGraph`` returns ``PairPredictions`` for exactly that graph's edges, in
    its order, with frame indices as in the graph (global indices into the N frames).

    Memory: encoded frames of the graph's frames (~11 MB each at 512x288 in fp32) plus one batch
    of decoder activations, plus the outputs (16 H W bytes per edge).
    """

    def __init__(self, net, img: Tensor, true_shape: Tensor, prior_pts3d: Tensor | None, *,
                 device: str | torch.device | None = None, precision: str | None = "auto",
                 batch_size: int | str | None = "auto", cache: ChunkCache | None = None,
                 output_device: str | torch.device | None = None, progress: bool = True) -> None:
        self.net = net
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.img = img
        self.true_shape = true_shape
        has_prior = bool(net.config.with_prior)
        if has_prior and prior_pts3d is None:
            raise InputError("this network has a prior branch (Align3R) and needs depth priors; "
                             "choose a prior (depthpro / depthanything) or a DUSt3R/MonST3R checkpoint")
        self.prior_pts3d = prior_pts3d if has_prior else None
        self.batch_size = initial_batch_size(self.device, tuple(img.shape[-2:]), self.dtype, batch_size)
        self.cache = cache
        self.output_device = torch.device(output_device) if output_device is not None else self.device
        self.progress = progress
        self._frame_hashes: list[str] | None = None
        self._namespace: str | None = None

    # --- cache keys -------------------------------------------------------------------------------
    def _cache_keys(self) -> tuple[str, list[str]]:
        """(namespace, per-frame hashes) of the cached chunks, computed once."""
        if self._frame_hashes is None:
            self._frame_hashes = content_hashes(self.img, self.prior_pts3d)
            self._namespace = f"pairs|{module_fingerprint(self.net)}|{self.dtype}|v1"
        return self._namespace, self._frame_hashes

    # --- network ----------------------------------------------------------------------------------
    def _autocast(self):
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _in_batches(self, count: int, run: Callable[[int, int], T], unit: str, frames: int) -> list[T]:
        """``[run(start, stop), ...]`` over ``range(count)`` in batches of ``self.batch_size``
        (``frames``: how many encoded frames the graph keeps in memory, for the error message).

        An out-of-memory error halves the batch size (for the rest of the run: encoding and
        decoding share it) and retries the same batch; at one item per batch it is ``OutOfMemory``.
        """
        parts: list[T] = []
        start = 0
        while start < count:
            size = min(self.batch_size, count - start)  # halve what was really tried
            try:
                parts.append(run(start, start + size))
            except (torch.OutOfMemoryError, RuntimeError) as exc:
                if not _is_oom(exc):
                    raise
                _free_memory(self.device)
                if size == 1:
                    h, w = self.img.shape[-2:]
                    raise OutOfMemory(
                        f"out of memory on {self.device} even with one {unit} per batch at {w}x{h}, with the "
                        f"features of {frames} frames in memory; lower the resolution (size=224), align fewer "
                        "frames at once (max_frames or stride, or graph=grouped if another graph is set), or run "
                        "on the CPU (device=cpu)") from exc
                self.batch_size = max(1, size // 2)
                log.warning("out of memory with %d %ss per batch; retrying with %d", size, unit, self.batch_size)
                continue
            start += size
        return parts

    @torch.no_grad()
    def _encode(self, frame_ids: Tensor):
        """Encoded features of the given (F,) frames, in that order, batched."""
        from align3r.model import FrameFeatures

        def run(start: int, stop: int):
            ids = frame_ids[start:stop]
            img = self.img[ids].to(self.device, non_blocking=True)
            shape = self.true_shape[ids].to(self.device)
            prior = None if self.prior_pts3d is None else self.prior_pts3d[ids].to(self.device)
            with self._autocast():
                return self.net.encode_frames(img, shape, prior)

        return FrameFeatures.cat(self._in_batches(frame_ids.numel(), run, "frame", frame_ids.numel()))

    @torch.no_grad()
    def _decode_chunk(self, feats, local_i: Tensor, local_j: Tensor) -> dict[str, Tensor]:
        """Predictions of one chunk of (E,) edges given as positions into ``feats``."""

        def run(start: int, stop: int) -> dict[str, Tensor]:
            with self._autocast():
                res1, res2 = self.net.decode_pairs(feats[local_i[start:stop]], feats[local_j[start:stop]])
            out = {"pts3d_i": res1["pts3d"], "pts3d_j": res2["pts3d_in_other_view"],
                   "conf_i": res1["conf"], "conf_j": res2["conf"]}
            return {k: v.float().to(self.output_device) for k, v in out.items()}

        parts = self._in_batches(local_i.numel(), run, "pair", len(feats))
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    def __call__(self, graph: PairGraph) -> PairPredictions:
        edges = graph.edges
        if edges.numel() == 0:
            raise InputError("the pair graph has no edges")
        def compute(chunks: list[Tensor]) -> Iterator[dict[str, Tensor]]:
            return self._predict_chunks(chunks, graph.name)

        if self.cache is None:
            results = list(compute(edge_chunks(edges)))
        else:
            namespace, hashes = self._cache_keys()
            results = self.cache.load_or_compute(namespace, edges, hashes, compute, device=self.output_device)
        merged = {k: torch.cat([r[k] for r in results]) for k in results[0]}
        return PairPredictions(edges=edges.clone(), num_frames=graph.num_frames, **merged)

    def _predict_chunks(self, chunks: list[Tensor], name: str) -> Iterator[dict[str, Tensor]]:
        """Predictions of each chunk of (e, 2) edges, in order; every frame they touch is encoded
        once, before the first chunk is decoded."""
        needed = torch.unique(torch.cat(chunks).reshape(-1))
        bar = tqdm(total=sum(chunk.shape[0] for chunk in chunks), desc=f"inference ({name})",
                   unit="pair", disable=not self.progress, leave=False)
        feats = self._encode(needed)
        position = torch.full((self.img.shape[0],), -1, dtype=torch.long)
        position[needed] = torch.arange(needed.numel())
        for chunk in chunks:
            local = position[chunk]
            yield self._decode_chunk(feats, local[:, 0], local[:, 1])
            bar.update(chunk.shape[0])
        bar.close()


def predict_pairs(net, img: Tensor, true_shape: Tensor, prior_pts3d: Tensor | None,
                  graph: PairGraph | Sequence[tuple[int, int]], **kwargs) -> PairPredictions:
    """One-call form of :class:`PairPredictor` (see its arguments)."""
    if not isinstance(graph, PairGraph):
        graph = PairGraph.from_pairs(graph, int(img.shape[0]), "custom", symmetric=False)
    return PairPredictor(net, img, true_shape, prior_pts3d, **kwargs)(graph)

