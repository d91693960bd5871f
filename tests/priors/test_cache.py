"""The prior disk cache: hits and misses by frame content, model and settings; atomic, self-healing files."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from align3r.errors import OutputError
from align3r.priors.base import PriorSource
from align3r.priors.cache import PriorCache, cache_key
from align3r.priors.depth_anything import DepthAnythingPrior
from align3r.priors.depth_pro import DepthProPrior
from align3r.priors.external import FolderPrior
from align3r.priors.types import DepthPrior

from .tiny_models import save_tiny_depth_anything, save_tiny_depth_pro


class CountingPrior(PriorSource):
    """A deterministic prior (depth = mean RGB + 1 m, focal = given or 100) that records each call's size."""

    name = "counting"

    def __init__(self, setting: str = "a") -> None:
        self.setting = setting
        self.calls: list[int] = []

    @property
    def identity(self) -> str:
        return f"counting|{self.setting}"

    def predict_iter(self, images, focal_px=None, frame_names=None, frame_indices=None):
        images = list(images)
        self.calls.append(len(images))
        focals = focal_px or [None] * len(images)
        for image, focal in zip(images, focals):
            yield DepthPrior(image.mean(axis=2, dtype=np.float32) + 1, 100.0 if focal is None else focal, "depth",
                             f"counting:{self.setting}")


def _frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (6, 9, 3), dtype=np.uint8) for _ in range(count)]


def _cache_files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_second_run_reads_everything_back(tmp_path):
    frames = _frames(3)
    first = PriorCache(CountingPrior(), tmp_path)
    computed = first.predict(frames, focal_px=[None, 250.0, None])
    assert (first.stats.hits, first.stats.misses) == (0, 3) and first.prior.calls == [3]
    again = PriorCache(CountingPrior(), tmp_path)
    cached = again.predict(frames, focal_px=[None, 250.0, None])
    assert (again.stats.hits, again.stats.misses) == (3, 0) and again.prior.calls == []
    for a, b, frame in zip(computed, cached, frames):
        np.testing.assert_array_equal(b.depth, frame.mean(axis=2, dtype=np.float32) + 1)
        np.testing.assert_array_equal(a.depth, b.depth)
        assert (a.focal_px, a.kind, a.source) == (b.focal_px, b.kind, b.source)
    assert [p.focal_px for p in cached] == [100.0, 250.0, 100.0]
    files = _cache_files(tmp_path)
    assert len(files) == 3 and all(p.suffix == ".npz" for p in files)  # no temporary files left


def test_changed_frame_model_or_focal_recomputes_only_what_changed(tmp_path):
    frames = _frames(3)
    PriorCache(CountingPrior(), tmp_path).predict(frames)
    edited = [f.copy() for f in frames]
    edited[1][0, 0, 0] ^= 1  # one bit of one pixel
    cache = PriorCache(CountingPrior(), tmp_path)
    result = cache.predict(edited)
    assert (cache.stats.hits, cache.stats.misses) == (2, 1) and cache.prior.calls == [1]
    np.testing.assert_array_equal(result[1].depth, edited[1].mean(axis=2, dtype=np.float32) + 1)

    other_model = PriorCache(CountingPrior(setting="b"), tmp_path)
    other_model.predict(frames)
    assert (other_model.stats.hits, other_model.stats.misses) == (0, 3)

    new_focal = PriorCache(CountingPrior(), tmp_path)
    assert new_focal.predict(frames, focal_px=[None, None, 500.0])[2].focal_px == 500.0
    assert (new_focal.stats.hits, new_focal.stats.misses) == (2, 1)


def test_key_depends_on_pixels_shape_identity_and_focal():
    frame = _frames(1)[0]
    key = cache_key("m", frame, None)
    assert key == cache_key("m", frame.copy(), None)
    assert len({key, cache_key("n", frame, None), cache_key("m", frame, 300.0),
                cache_key("m", frame.reshape(9, 6, 3), None), cache_key("m", frame[:, :, ::-1], None)}) == 5


def test_truncated_or_foreign_files_are_misses_and_get_rewritten(tmp_path):
    frames = _frames(2)
    first = PriorCache(CountingPrior(), tmp_path)
    first.predict(frames)
    truncated = first.path_for(cache_key(first.identity, frames[0], None))
    truncated.write_bytes(truncated.read_bytes()[:100])  # a crash mid-write by some other tool
    foreign = first.path_for(cache_key(first.identity, frames[1], None))
    np.savez(foreign, depth=np.zeros((6, 9), np.float32), focal_px=np.float64(1), kind=np.str_("depth"),
             source=np.str_("x"), identity=np.str_("another prior"))

    healing = PriorCache(CountingPrior(), tmp_path)
    result = healing.predict(frames)
    assert (healing.stats.corrupt, healing.stats.misses, healing.prior.calls) == (2, 2, [2])
    np.testing.assert_array_equal(result[0].depth, frames[0].mean(axis=2, dtype=np.float32) + 1)
    healed = PriorCache(CountingPrior(), tmp_path)
    healed.predict(frames)
    assert (healed.stats.hits, healed.stats.corrupt) == (2, 0)


def test_full_disk_raises_output_error_and_leaves_no_partial_file(tmp_path, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("align3r.priors.cache.np.savez", no_space)
    with pytest.raises(OutputError, match="No space left"):
        PriorCache(CountingPrior(), tmp_path).predict(_frames(1))
    assert _cache_files(tmp_path) == []


def test_identical_frames_are_computed_once_and_chunks_keep_order(tmp_path):
    a, b, c = _frames(3)
    cache = PriorCache(CountingPrior(), tmp_path, chunk_size=2)
    frames = [a, a, b, c, a]
    result = cache.predict(frames)
    # chunks [a, a] [b, c] [a]: a once, then b and c, then a is already on disk
    assert cache.prior.calls == [1, 2] and (cache.stats.hits, cache.stats.misses) == (2, 3)
    for frame, prior in zip(frames, result):
        np.testing.assert_array_equal(prior.depth, frame.mean(axis=2, dtype=np.float32) + 1)


def test_file_sources_are_not_copied_into_the_cache(tmp_path):
    depth_dir = tmp_path / "depth"
    depth_dir.mkdir()
    np.save(depth_dir / "f.npy", np.arange(54, dtype=np.float32).reshape(6, 9) + 1)
    cache = PriorCache(FolderPrior(depth_dir), tmp_path / "cache")
    assert cache.predict(_frames(1))[0].depth[0, 1] == 2.0
    assert not (tmp_path / "cache").exists()


def test_depth_pro_hits_never_load_the_weights(tmp_path, tiny_depth_pro, frames):
    frames = frames[:2]
    root = tmp_path / "cache"
    first = PriorCache(DepthProPrior(str(tiny_depth_pro), progress=False, batch_size=2), root)
    computed = first.predict(frames)
    assert first.stats.misses == 2

    fresh = DepthProPrior(str(tiny_depth_pro), progress=False)
    again = PriorCache(fresh, root)
    cached = again.predict(frames)
    assert again.stats.hits == 2 and fresh._model is None  # nothing loaded, nothing computed
    for a, b in zip(computed, cached):
        np.testing.assert_array_equal(a.depth, b.depth)
        assert a.focal_px == b.focal_px

    # other weights (a copy of the folder with one changed model) and another dtype are other keys
    other = save_tiny_depth_pro(tmp_path / "other", seed=1)
    retrained = PriorCache(DepthProPrior(str(other), progress=False, batch_size=2), root)
    retrained.predict(frames)
    assert (retrained.stats.hits, retrained.stats.misses) == (0, 2)
    assert DepthProPrior(str(tiny_depth_pro), dtype="bfloat16").identity != fresh.identity


def test_depth_anything_hits_never_load_the_weights(tmp_path, tiny_depth_anything, frames):
    root = tmp_path / "cache"
    first = PriorCache(DepthAnythingPrior(str(tiny_depth_anything), progress=False, batch_size=3), root)
    computed = first.predict(frames)
    assert (first.stats.hits, first.stats.misses) == (0, 3)

    fresh = DepthAnythingPrior(str(tiny_depth_anything), progress=False)
    again = PriorCache(fresh, root)
    cached = again.predict(frames)
    assert (again.stats.hits, again.stats.misses) == (3, 0) and fresh._model is None
    for a, b in zip(computed, cached):
        np.testing.assert_array_equal(a.depth, b.depth)
        assert (b.kind, b.focal_px) == ("disparity", None)

    edited = [f.copy() for f in frames]
    edited[2][0, 0, 0] ^= 1  # one bit of one pixel: only that frame is recomputed
    partial = PriorCache(DepthAnythingPrior(str(tiny_depth_anything), progress=False), root)
    partial.predict(edited)
    assert (partial.stats.hits, partial.stats.misses) == (2, 1)

    # other weights and another processor backend are other keys
    other = save_tiny_depth_anything(tmp_path / "other", seed=1)
    retrained = PriorCache(DepthAnythingPrior(str(other), progress=False, batch_size=3), root)
    retrained.predict(frames)
    assert (retrained.stats.hits, retrained.stats.misses) == (0, 3)
    backend = PriorCache(DepthAnythingPrior(str(tiny_depth_anything), processor_backend="torchvision",
                                            progress=False), root)
    backend.predict(frames[:1])
    assert (backend.stats.hits, backend.stats.misses) == (0, 1)
