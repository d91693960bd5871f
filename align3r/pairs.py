"""Pair graphs: which frame pairs the network sees.

A graph is a small typed value (``PairGraph``) that later stages consume without re-deriving it.

Two families:

- ``make_graph(name, num_frames)``: one graph over all frames, named as in the official code
  (``complete``, ``swin-K[-noncyclic]``, ``swinstride-K…``, ``swin2stride-K…``,
  ``logwin-K…``, ``oneref-R``), optionally symmetrised and pre-filtered (``seqN`` / ``cycN``).
- ``make_grouped_graph(num_frames, variant)``: the hierarchical keyframe scheme — one graph over
  keyframes plus one graph per clip of consecutive frames (``GroupedGraph``).

``build_graph(name, num_frames)`` builds either from the ``graph`` setting of ``align3r infer``
(``make_graph`` names, or the grouped modes of ``GROUPED_GRAPHS``).

Builders are vectorised: every window graph over 10,000 frames takes milliseconds. ``complete``
is quadratic in time and memory (N·(N−1) edges; 10,000 frames → 10⁸ edges, 1.6 GB) and meant
for short sequences.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from align3r.errors import InputError

GraphOrder = Literal["sorted", "reference"]
GroupedVariant = Literal["official", "official_dense", "paper", "depth_test"]

GRAPH_NAME_HELP = (
    "complete, swin-K, swinstride-K, swin2stride-K, logwin-K (each optionally with -noncyclic), "
    "oneref-R"
)


@dataclass(frozen=True)
class PairGraph:
    """Directed edges over N frames.

    - ``edges``: (E, 2) int64 ``(i, j)`` frame indices; the network runs on ``(frame i, frame j)``.
    - ``num_frames``: N.
    - ``name``: the scheme that built it (e.g. ``"swinstride-5-noncyclic"``).
    - ``symmetric``: True when edge ``e`` and edge ``e + E/2`` are mutual reverses (the motion
      masks and the official optimizer rely on this layout).
    """

    edges: Tensor
    num_frames: int
    name: str
    symmetric: bool

    def __post_init__(self) -> None:
        e = self.edges
        if e.dtype != torch.int64 or e.dim() != 2 or e.shape[1] != 2:
            raise ValueError(f"PairGraph.edges must be (E, 2) int64, got {tuple(e.shape)} {e.dtype}")
        if e.numel() and (int(e.min()) < 0 or int(e.max()) >= self.num_frames):
            raise ValueError(f"PairGraph edge indices must lie in [0, {self.num_frames}), "
                             f"got [{int(e.min())}, {int(e.max())}]")
        if self.symmetric:
            half = e.shape[0] // 2
            if e.shape[0] % 2 or not torch.equal(e[:half].flip(1), e[half:]):
                raise ValueError("PairGraph marked symmetric but edge e + E/2 is not the reverse of edge e")

    def __len__(self) -> int:
        return self.num_edges

    @property
    def num_edges(self) -> int:
        return int(self.edges.shape[0])

    def as_tuples(self) -> list[tuple[int, int]]:
        return [tuple(e) for e in self.edges.tolist()]

    @staticmethod
    def from_pairs(pairs, num_frames: int, name: str, symmetric: bool) -> PairGraph:
        edges = torch.as_tensor(list(pairs), dtype=torch.int64).reshape(-1, 2)
        return PairGraph(edges=edges, num_frames=num_frames, name=name, symmetric=symmetric)

    def reverse_index(self) -> Tensor:
        """(E,) int64: the index of each edge's reverse (symmetric layout only)."""
        if not self.symmetric:
            raise ValueError(f"graph {self.name!r} is not in the symmetric layout")
        e = self.num_edges
        return (torch.arange(e) + e // 2) % e

    def frames_used(self) -> Tensor:
        """(N,) bool: which frames appear in at least one edge."""
        used = torch.zeros(self.num_frames, dtype=torch.bool)
        used[self.edges.reshape(-1)] = True
        return used

    def to_local(self, frame_ids: Tensor, name: str | None = None) -> PairGraph:
        """Re-index the edges to positions in ``frame_ids`` ((n,) ascending global indices).

        Every edge endpoint must be one of ``frame_ids``; the result has ``num_frames = n``.
        """
        frame_ids = torch.as_tensor(frame_ids, dtype=torch.int64)
        local = torch.searchsorted(frame_ids, self.edges)
        ok = (local < frame_ids.numel()) & (frame_ids[local.clamp(max=max(frame_ids.numel() - 1, 0))]
                                            == self.edges)
        if not bool(ok.all()):
            raise ValueError("to_local: some edge endpoints are not in frame_ids")
        return PairGraph(local, int(frame_ids.numel()), name or self.name, self.symmetric)


# ---------------------------------------------------------------------------------------------
# Named graphs over all frames


@dataclass(frozen=True)
class GraphSpec:
    kind: str  # complete | swin | logwin | oneref
    window: int  # K (swin*, logwin) or the reference frame R (oneref)
    stride: int  # 1 (swin), 2 (swinstride), 3 (swin2stride)
    cyclic: bool


_NAME_RE = re.compile(
    r"^(?:(?P<complete>complete)"
    r"|(?P<swin>swin|swinstride|swin2stride|logwin)(?:-(?P<k>\d+))?(?P<noncyclic>-noncyclic)?"
    r"|oneref(?:-(?P<ref>\d+))?)$"
)
_STRIDES = {"swin": 1, "swinstride": 2, "swin2stride": 3}


def parse_graph_name(name: str) -> GraphSpec:
    """Parse an official scene-graph name; a missing K means 3 and a missing R means 0 (as upstream)."""
    m = _NAME_RE.match(name.strip())
    if m is None:
        raise InputError(f"unknown pair graph {name!r}; use one of: {GRAPH_NAME_HELP}")
    if m["complete"]:
        return GraphSpec("complete", 0, 1, False)
    if m["swin"]:
        k = int(m["k"]) if m["k"] is not None else 3
        if k < 1:
            raise InputError(f"pair graph {name!r}: the window K must be at least 1")
        kind = "logwin" if m["swin"] == "logwin" else "swin"
        return GraphSpec(kind, k, _STRIDES.get(m["swin"], 1), m["noncyclic"] is None)
    return GraphSpec("oneref", int(m["ref"]) if m["ref"] is not None else 0, 1, False)


def _window_candidates(n: int, offsets: Tensor, cyclic: bool, drop_self: bool) -> Tensor:
    """(M, 2) candidate pairs ``(min, max)`` in the upstream insertion order (frame-major,
    then offset order)."""
    i = torch.arange(n).repeat_interleave(offsets.numel())
    j = i + offsets.repeat(n)
    if cyclic:
        j = j % n
    keep = (j >= 0) & (j < n)
    if drop_self:
        keep &= j != i
    i, j = i[keep], j[keep]
    return torch.stack((torch.minimum(i, j), torch.maximum(i, j)), dim=1)


def _dedup(cand: Tensor, n: int, order: GraphOrder) -> Tensor:
    if order == "reference":
        # Upstream stores the pairs in a Python set and iterates it: replaying the same insertions
        # into a CPython set reproduces its (deterministic, PYTHONHASHSEED-independent) order.
        seen = set(map(tuple, cand.tolist()))
        return torch.tensor(list(seen), dtype=torch.int64).reshape(-1, 2)
    keys = torch.unique(cand[:, 0] * n + cand[:, 1])  # sorted by (i, j)
    return torch.stack((keys // n, keys % n), dim=1)


def _unique_half(spec: GraphSpec, n: int, order: GraphOrder) -> Tensor:
    if spec.kind == "complete":  # (i, j) with j < i, i ascending then j ascending
        return torch.tril_indices(n, n, offset=-1).T.contiguous()
    if spec.kind == "oneref":
        if spec.window >= n:
            raise InputError(f"pair graph oneref-{spec.window}: reference frame {spec.window} does not "
                             f"exist in {n} frames; pick R < {n}")
        j = torch.arange(n)
        j = j[j != spec.window]
        return torch.stack((torch.full_like(j, spec.window), j), dim=1)
    if spec.kind == "swin":
        offsets = torch.arange(1, spec.stride * spec.window + 1, spec.stride)
        cand = _window_candidates(n, offsets, spec.cyclic, drop_self=False)
    else:  # logwin: i-1, i-2, i-4, ..., then i+1, i+2, i+4, ...
        powers = 2 ** torch.arange(spec.window)
        cand = _window_candidates(n, torch.cat((-powers, powers)), spec.cyclic, drop_self=True)
    return _dedup(cand, n, order)


def _prefilter_mask(edges: Tensor, n: int, prefilter: str) -> Tensor:
    m = re.fullmatch(r"(seq|cyc)(\d+)", prefilter)
    if m is None:
        raise InputError(f"unknown prefilter {prefilter!r}; use seqN (keep |i-j| <= N) or cycN "
                         "(the same with cyclic distance)")
    dist = (edges[:, 0] - edges[:, 1]).abs()
    if m[1] == "cyc":
        dist = torch.minimum(dist, n - dist)
    return dist <= int(m[2])


def make_graph(name: str, num_frames: int, *, symmetrize: bool = True, prefilter: str | None = None,
               order: GraphOrder = "sorted") -> PairGraph:
    """Build a named pair graph over ``num_frames`` frames, as the official ``make_pairs``.

    Args:
        name: ``complete``; ``swin-K``, ``swinstride-K``, ``swin2stride-K`` (offsets
            1, 1+s, …, 1+(K−1)s with s = 1/2/3); ``logwin-K`` (offsets ±2^k, k < K); each
            cyclic (indices wrap mod N) unless suffixed ``-noncyclic``; ``oneref-R`` (R to every
            other frame). A cyclic window as large as N yields self-pairs ``(i, i)``, as upstream.
        num_frames: N ≥ 2.
        symmetrize: append every edge reversed, in the same order (edge e and e + E/2 are
            reverses; ``symmetric=True``).
        prefilter: ``seqN`` keeps edges with |i − j| ≤ N, ``cycN`` the same with cyclic
            distance min(|i − j|, N_frames − |i − j|); applied after symmetrisation (upstream
            measures N_frames from the largest edge index, which is the same for every graph here).
        order: order of the unique half for the set-based graphs (``swin*``, ``logwin``):
            ``"sorted"`` — lexicographic by (i, j), vectorised, independent of Python;
            ``"reference"`` — CPython set iteration order as upstream (only MST tie-breaks and
            summation order feel it). ``complete`` and ``oneref`` have one deterministic order
            (upstream's) in both modes.

    Returns:
        ``PairGraph`` with (E, 2) int64 edges.
    """
    n = _check_num_frames(num_frames)
    if order not in ("sorted", "reference"):
        raise InputError(f"pair order must be 'sorted' or 'reference', got {order!r}")
    spec = parse_graph_name(name)
    half = _unique_half(spec, n, order)
    edges = torch.cat((half, half.flip(1))) if symmetrize else half
    label = name
    if prefilter:
        edges = edges[_prefilter_mask(edges, n, prefilter)]
        label = f"{name}+{prefilter}"
        if edges.numel() == 0:
            raise InputError(f"pair graph {name!r} with prefilter {prefilter!r} has no edges left; "
                             "loosen the prefilter")
    return PairGraph(edges.contiguous(), n, label, symmetrize)


def clamp_window(name: str, num_frames: int, *, official: bool = False) -> str:
    """Cap a window graph's K at max(1, ⌈(N−1)/2⌉), as pose evaluation does for short sequences.

    ``official=True`` reproduces upstream ``pose_test.py`` exactly, including its loss of the
    ``-noncyclic`` suffix (``swinstride-5-noncyclic`` on 9 frames becomes the *cyclic*
    ``swinstride-4``); the default keeps the suffix.
    """
    spec = parse_graph_name(name)
    if spec.kind not in ("swin", "logwin"):
        return name
    cap = max(1, math.ceil((num_frames - 1) / 2))
    if spec.window <= cap:
        return name
    base = name.split("-")[0]
    suffix = "" if (official or spec.cyclic) else "-noncyclic"
    return f"{base}-{cap}{suffix}"


def _check_num_frames(num_frames: int) -> int:
    n = int(num_frames)
    if n < 2:
        raise InputError(f"a pair graph needs at least 2 frames, got {n}: one frame cannot be aligned")
    return n


# ---------------------------------------------------------------------------------------------
# Grouped keyframe scheme (hierarchical alignment)


@dataclass(frozen=True)
class FrameGroup:
    """A subset of frames with its own pair graph.

    - ``frame_ids``: (n,) int64 ascending global frame indices.
    - ``graph``: ``PairGraph`` whose edges are *global* frame indices (``num_frames`` = all N).
    """

    frame_ids: Tensor
    graph: PairGraph

    def __len__(self) -> int:
        return int(self.frame_ids.numel())

    def local_graph(self) -> PairGraph:
        """The same edges re-indexed 0..n−1 (what an aligner over this group alone consumes)."""
        return self.graph.to_local(self.frame_ids)


@dataclass(frozen=True)
class GroupedGraph:
    """Keyframes plus clips of consecutive frames, each with its own pair graph.

    The keyframes are aligned first; each clip is then aligned with its first frame anchored
    on that keyframe's result. Clips are contiguous and cover every frame exactly once.

    - ``num_frames``: N.
    - ``variant``: which scheme built it (see ``make_grouped_graph``).
    - ``clip_size``: the nominal clip length c (clip k starts at frame k·c; the last clip may be
      shorter, or one frame longer when a 1-frame tail was merged into it).
    - ``keyframes``: ``FrameGroup`` of the keyframes (K frames) with their graph.
    - ``clips``: one ``FrameGroup`` per clip.
    """

    num_frames: int
    variant: str
    clip_size: int
    keyframes: FrameGroup
    clips: tuple[FrameGroup, ...]

    @property
    def keyframe_ids(self) -> Tensor:
        """(K,) int64 global indices of the keyframes."""
        return self.keyframes.frame_ids

    @property
    def keyframe_graph(self) -> PairGraph:
        """The keyframe ``PairGraph`` (global indices)."""
        return self.keyframes.graph

    @property
    def clip_frame_ids(self) -> list[Tensor]:
        """Per clip, (n_c,) int64 global frame indices (each starts with a keyframe)."""
        return [c.frame_ids for c in self.clips]

    @property
    def clip_graphs(self) -> list[PairGraph]:
        """Per clip, its ``PairGraph`` (global indices)."""
        return [c.graph for c in self.clips]

    @property
    def num_edges(self) -> int:
        """Keyframe edges + every clip's edges (upstream's count of network forwards)."""
        return self.keyframes.graph.num_edges + sum(c.graph.num_edges for c in self.clips)

    def clip_of_frame(self) -> Tensor:
        """(N,) int64: the clip each frame belongs to."""
        out = torch.empty(self.num_frames, dtype=torch.int64)
        for k, clip in enumerate(self.clips):
            out[clip.frame_ids] = k
        return out

    def all_edges(self) -> PairGraph:
        """Union of the keyframe and clip edges in global indices, without duplicates (only
        ``official_dense`` has keyframes inside one clip, hence edges in two groups).

        When every group is symmetric the result keeps the symmetric layout: the unique halves
        (keyframes first, then clips in order), then the same edges reversed.
        """
        graphs = [self.keyframes.graph, *(c.graph for c in self.clips)]
        symmetric = all(g.symmetric for g in graphs)
        if symmetric:
            half = _first_occurrences(torch.cat([g.edges[: g.num_edges // 2] for g in graphs]), self.num_frames)
            edges = torch.cat((half, half.flip(1)))
        else:
            edges = _first_occurrences(torch.cat([g.edges for g in graphs]), self.num_frames)
        return PairGraph(edges, self.num_frames, f"grouped-{self.variant}", symmetric)


def _first_occurrences(edges: Tensor, n: int) -> Tensor:
    """``edges`` without repeated (i, j), keeping the first occurrence and the order."""
    keys = (edges[:, 0] * n + edges[:, 1]).numpy()
    _, first = np.unique(keys, return_index=True)
    return edges[torch.from_numpy(np.sort(first))]


_DEFAULT_CLIP_START = {"official": 10, "official_dense": 10, "depth_test": 50}


def official_clip_size(num_frames: int, start: int = 10) -> int | None:
    """The clip size the official scripts pick, or None where they divide by zero.

    Upstream starts at ``start`` and decrements while ``N % c`` is 0 or 1 or ``c > N``. Since
    ``N % 2`` and ``N % 1`` are always 0 or 1, the loop reaches ``N % 0`` (ZeroDivisionError)
    whenever no c in [3, min(start, N)] qualifies: N = 2, 3, 4, and with start 10 also
    N ≡ 0 or 1 (mod 2520).
    """
    n, c = int(num_frames), int(start)
    while c >= 3 and (c > n or n % c in (0, 1)):
        c -= 1
    return c if c >= 3 else None


def _clip_starts(n: int, c: int) -> Tensor:
    """Start frame of every clip of size c; a trailing 1-frame clip is merged into the previous
    one (a lone frame cannot be aligned)."""
    starts = torch.arange(0, n, c)
    if starts.numel() > 1 and n - int(starts[-1]) == 1:
        starts = starts[:-1]
    return starts


def _in_clip_pairs(n: int, odd_gaps: bool) -> Tensor:
    """(M, 2) local pairs i < j, i ascending then j ascending; only odd j − i when ``odd_gaps``."""
    pairs = torch.triu_indices(n, n, offset=1).T
    if odd_gaps:
        pairs = pairs[(pairs[:, 1] - pairs[:, 0]) % 2 == 1]
    return pairs.contiguous()


def _group(frame_ids: Tensor, local_pairs: Tensor, symmetrize: bool, n_total: int, name: str) -> FrameGroup:
    half = frame_ids[local_pairs]
    edges = torch.cat((half, half.flip(1))) if symmetrize else half
    return FrameGroup(frame_ids, PairGraph(edges.reshape(-1, 2), n_total, name, symmetrize))


def make_grouped_graph(num_frames: int, variant: GroupedVariant = "official", *,
                       clip_size: int | None = None, clip_size_start: int | None = None) -> GroupedGraph:
    """Build the grouped keyframe scheme (keyframes + clips) over ``num_frames`` frames.

    Variants (keyframes are the first frame of every clip; keyframe pairs are all i < j):

    - ``"official"``: upstream demo / pose_test ``my_make_pairs``. Clip size from
      ``official_clip_size`` (start 10); inside a clip the pairs (i, j) with odd j − i;
      keyframe and clip graphs symmetrised. 30 frames → 136 edges.
    - ``"official_dense"``: upstream's unused ``my_make_pairs2``: as ``"official"`` plus the
      keyframes ⌊k·N/10⌋, k = 0..9.
    - ``"paper"``: the scheme the paper states: clip size 10, all pairs inside a clip, no
      symmetrisation. 30 frames → 3 + 3·45 = 138 edges.
    - ``"depth_test"``: upstream depth evaluation: clip size search from 50 (HEAD; the
      paper-era script started at 20 — pass ``clip_size_start=20``), all pairs inside a clip,
      no symmetrisation. 30 frames → 380 edges.

    Args:
        num_frames: N ≥ 2.
        clip_size: use this clip size instead of the variant's rule.
        clip_size_start: start of the official clip-size search (variants with a search).

    Where upstream divides by zero (``official_clip_size`` returns None: N = 2..4, N ≡ 0, 1
    mod 2520) we use c = min(start, N). Any 1-frame clip at the end is merged into the
    previous clip, so every clip has at least 2 frames (or the single clip holds all N).
    Unlike upstream, nothing is mutated: upstream renumbers the callers' frame records in place
    (frame k ends with ``idx = k − clip start``); here the local numbering is
    ``FrameGroup.local_graph()``.
    """
    n = _check_num_frames(num_frames)
    if variant not in ("official", "official_dense", "paper", "depth_test"):
        raise InputError(f"unknown grouped-graph variant {variant!r}; use official, official_dense, "
                         "paper or depth_test")
    if clip_size is not None:
        if int(clip_size) < 2:
            raise InputError(f"clip_size must be at least 2, got {clip_size}")
        c = min(int(clip_size), n)
    elif variant == "paper":
        c = min(10, n)
    else:
        start = int(clip_size_start or _DEFAULT_CLIP_START[variant])
        c = official_clip_size(n, start) or min(start, n)

    starts = _clip_starts(n, c)
    ends = torch.cat((starts[1:], torch.tensor([n])))
    official_like = variant in ("official", "official_dense")
    symmetrize = official_like
    local_cache: dict[int, Tensor] = {}
    clips = []
    for k, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
        length = e - s
        if length not in local_cache:
            local_cache[length] = _in_clip_pairs(length, odd_gaps=official_like)
        clips.append(_group(torch.arange(s, e), local_cache[length], symmetrize, n, f"clip-{k}"))

    keyframe_ids = starts
    if variant == "official_dense":
        extra = torch.tensor([int(k * (n / 10)) for k in range(10)], dtype=torch.int64)
        keyframe_ids = torch.unique(torch.cat((starts, extra)))
    keyframes = _group(keyframe_ids, _in_clip_pairs(keyframe_ids.numel(), odd_gaps=False), symmetrize, n,
                       "keyframes")
    return GroupedGraph(n, variant, c, keyframes, tuple(clips))


# --- graph names of the settings (align3r infer / eval) ------------------------------------------
#: The setting names of the grouped keyframe modes → ``make_grouped_graph`` variants.
GROUPED_GRAPHS = {"grouped": "official", "grouped-official": "official", "grouped-paper": "paper",
                  "grouped-dense": "official_dense", "grouped-depth-test": "depth_test"}


def check_graph_name(name: str) -> None:
    """``InputError`` now for a graph name :func:`build_graph` would refuse (any frame count)."""
    if name in GROUPED_GRAPHS:
        return
    try:
        parse_graph_name(str(name))
    except InputError as exc:
        raise InputError(f"graph={name}: {exc}; or a grouped keyframe mode: {', '.join(GROUPED_GRAPHS)}") from None


def build_graph(name: str, num_frames: int) -> PairGraph | GroupedGraph:
    """The graph a setting names: a ``PairGraph`` (one alignment problem) or, for the names of
    :data:`GROUPED_GRAPHS`, a ``GroupedGraph`` (the long-video mode)."""
    if name in GROUPED_GRAPHS:
        return make_grouped_graph(num_frames, variant=GROUPED_GRAPHS[name])
    return make_graph(name, num_frames)
