"""Sharding over torchrun processes (align3r.sharding), shared by evaluation and inference."""

from __future__ import annotations

import time

import pytest

from align3r.errors import InputError
from align3r.sharding import DEFAULT_SHARD_WAIT_S, Shard, shard_wait_seconds, wait_until_done


def test_shards_take_every_world_size_th_sequence(monkeypatch):
    items = list(range(7))
    assert [Shard(r, 3).take(items) for r in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert Shard.from_env() == Shard(1, 2, 1)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(InputError, match="bad process layout"):
        Shard.from_env()


def test_shard_wait_defaults():
    assert shard_wait_seconds(None, Shard()) == 0.0
    assert shard_wait_seconds(None, Shard(0, 4)) == DEFAULT_SHARD_WAIT_S
    assert shard_wait_seconds(5, Shard(0, 4)) == 5.0
    assert shard_wait_seconds(5, Shard(0, 4), aggregate_only=True) == 0.0


def test_balanced_shares_put_the_longest_first_on_the_least_loaded_rank():
    sizes = [10, 50, 20, 40, 30, 30]
    items = list("abcdef")
    owners = Shard(0, 2).owners_balanced(sizes)
    # 50 -> r0, 40 -> r1, 30 -> r1, 30 -> r0, 20 -> r1, 10 -> r0: both ranks end at 90
    shares = [Shard(r, 2).take_balanced(items, sizes) for r in range(2)]
    assert sorted(shares[0] + shares[1]) == items  # every item exactly once
    loads = [sum(sizes[items.index(i)] for i in share) for share in shares]
    assert loads == [90, 90]
    assert shares[0][0] == "b" and shares[1][0] == "d"  # each rank starts with its longest
    assert owners == Shard(1, 2).owners_balanced(sizes)  # every rank computes the same plan
    assert Shard().take_balanced(items, sizes) == ["b", "d", "e", "f", "c", "a"]


def test_waiting_stops_when_done_or_idle():
    done: set[int] = set()
    assert wait_until_done([1, 2], lambda items: [i for i in items if i not in done], idle_s=0.0) == [1, 2]
    t0 = time.monotonic()
    assert wait_until_done([1, 2], lambda items: [i for i in items if i not in done], idle_s=0.2, poll_s=0.05) == [1, 2]
    assert 0.15 < time.monotonic() - t0 < 2
    done.update([1, 2])
    assert wait_until_done([1, 2], lambda items: [i for i in items if i not in done], idle_s=5) == []
