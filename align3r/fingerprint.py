"""Fingerprints: short content hashes that every cache keys by, and the manifest records.

- :func:`digest`: BLAKE2b over bytes and text, in order.
- :func:`content_hashes`: one hash per frame of (N, ...) tensors.
- :func:`module_fingerprint`: a cheap fingerprint of a network's weights.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor


def digest(*parts: bytes | str, size: int = 20) -> str:
    """Hex BLAKE2b of ``parts`` in order (``str`` encoded as UTF-8), ``size`` bytes long: the hash
    behind every cache key."""
    h = hashlib.blake2b(digest_size=size)
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
    return h.hexdigest()


def content_hashes(*arrays: Tensor | None) -> list[str]:
    """One hash per frame over the given (N, ...) tensors (None entries are skipped)."""
    present = [a for a in arrays if a is not None]
    n = int(present[0].shape[0])
    return [digest(*(a[k].detach().contiguous().cpu().numpy().tobytes() for a in present), size=16)
            for k in range(n)]


def module_fingerprint(module: torch.nn.Module, extra: str = "") -> str:
    """A cheap fingerprint of a network's weights: its config/extra text plus every tensor's name,
    shape and a strided sample of its values (any fine-tuning changes it in practice)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(getattr(module, "config", None)).encode())
    h.update(extra.encode())
    for name, p in module.state_dict().items():
        flat = p.detach().reshape(-1)
        h.update(name.encode())
        h.update(str(tuple(p.shape)).encode())
        h.update(flat[:: max(1, flat.numel() // 256)].float().cpu().numpy().tobytes())
    return h.hexdigest()
