"""The data order of an epoch: a pure function of (seed, epoch)."""

from __future__ import annotations

import numpy as np

from dataaug_multi_both.training.loop import epoch_batches


def test_same_seed_and_epoch_same_batches_every_row_once() -> None:
    lengths = np.random.default_rng(0).integers(10, 200, size=103)
    a = epoch_batches(lengths, 8, seed=3, epoch=2)
    assert a == epoch_batches(lengths, 8, seed=3, epoch=2)
    assert a != epoch_batches(lengths, 8, seed=3, epoch=3)
    assert a != epoch_batches(lengths, 8, seed=4, epoch=2)
    rows = sorted(r for batch in a for r in batch)
    assert rows == list(range(103)) and all(len(b) <= 8 for b in a)


def test_grouping_by_length_cuts_padding() -> None:
    lengths = np.random.default_rng(1).integers(10, 500, size=800)

    def padding(batches: list[list[int]]) -> int:
        return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in batches)

    grouped = epoch_batches(lengths, 16, seed=0, epoch=1, group_by_length=True)
    plain = epoch_batches(lengths, 16, seed=0, epoch=1, group_by_length=False)
    assert padding(grouped) < padding(plain) / 4
