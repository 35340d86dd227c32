"""Dealing global batches out to ranks: every row once, equal step counts, padding by
repetition only where a batch is too short for every rank."""

from __future__ import annotations

from dataaug_multi_both.training.distributed import Distributed


def test_each_rank_takes_every_world_th_row_and_short_batches_are_padded() -> None:
    batches = [[0, 1, 2, 3, 4, 5], [6, 7, 8], [9]]
    shards = [Distributed(4, rank).shard(batches) for rank in range(4)]
    assert [s[0] for s in shards] == [[0, 4], [1, 5], [2], [3]]
    assert [s[1] for s in shards] == [[6], [7], [8], [6]]  # padded by repetition
    assert [s[2] for s in shards] == [[9], [9], [9], [9]]
    assert {len(s) for s in shards} == {3}  # the same number of steps on every rank
    rows = sorted(r for s in shards for batch in s[:1] for r in batch)
    assert rows == list(range(6))


def test_a_single_process_keeps_its_batches() -> None:
    batches = [[3, 1], [2]]
    assert Distributed().shard(batches) is batches
