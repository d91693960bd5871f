"""The run cache: its folder and layout, the stores it hands out, removal that spares a user's
files; and the one chunk-load-or-compute loop of the prediction and flow caches."""

from __future__ import annotations

import torch

from align3r.cache import CHUNK_EDGES, ChunkCache, RunCache
from align3r.fingerprint import content_hashes


def test_a_user_cache_dir_loses_only_the_pipeline_parts(tmp_path):
    cache = tmp_path / "mine"
    for part in ("priors/ab", "pairs", "flow", "notes"):
        (cache / part).mkdir(parents=True)
    (cache / "pairs" / "pairs-x.safetensors").write_bytes(b"x")
    RunCache(cache).remove()
    assert sorted(p.name for p in cache.iterdir()) == ["notes"]
    (cache / "notes").rmdir()
    RunCache(cache).remove()
    assert not cache.exists()


def test_the_run_cache_folder_and_its_stores(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert RunCache.for_run("out", None).root == tmp_path / "out.cache"
    assert RunCache.for_run("out", str(tmp_path / "c")).root == tmp_path / "c"
    assert RunCache.for_run(None, str(tmp_path / "c")).root == tmp_path / "c"
    assert RunCache.for_run("out", "none") is None and RunCache.for_run(None, None) is None
    run = RunCache(tmp_path / "c")
    assert (run.pairs.root, run.pairs.prefix) == (tmp_path / "c" / "pairs", "pairs")
    assert (run.flow.root, run.flow.prefix) == (tmp_path / "c" / "flow", "flow")


def test_chunks_are_read_back_and_only_the_missing_ones_computed(tmp_path):
    edges = torch.stack([torch.arange(CHUNK_EDGES + 5), torch.arange(1, CHUNK_EDGES + 6)], dim=1)
    hashes = content_hashes(torch.arange(CHUNK_EDGES + 6)[:, None])
    asked = []

    def compute(chunks):
        asked.append([c.shape[0] for c in chunks])
        for chunk in chunks:
            yield {"sum": chunk.sum(dim=1).float()}

    cache = ChunkCache(tmp_path, "t")
    first = cache.load_or_compute("ns", edges, hashes, compute)
    assert asked == [[CHUNK_EDGES, 5]] and len(first) == 2
    assert torch.equal(torch.cat([p["sum"] for p in first]), edges.sum(dim=1).float())
    sorted(tmp_path.glob("t-*.safetensors"))[0].unlink()
    again = cache.load_or_compute("ns", edges, hashes, compute)
    assert len(asked[-1]) == 1 and cache.hits == 1  # the deleted chunk only
    assert all(torch.equal(a["sum"], b["sum"]) for a, b in zip(first, again))
