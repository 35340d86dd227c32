from __future__ import annotations

import random

import pytest

from dataaug_multi_both.data.splits import SplitManifest, make_split, split_from_dataset
from dataaug_multi_both.errors import DataLoadError


def dataset(n: int, seed: int = 0) -> tuple[list[str], list[list[int]]]:
    rng = random.Random(seed)
    ids = [f"p{i}" for i in range(n)]
    labels = [[int(rng.random() < 0.2) for _ in range(9)] for _ in ids]
    return ids, labels


def test_grouped_split_has_no_leak_and_covers_everything() -> None:
    ids, labels = dataset(300)
    split = make_split(ids, labels, (0.8, 0.1, 0.1), seed=1, dataset_fingerprint="f")
    sets = [set(v) for v in split.post_ids.values()]
    assert sum(len(s) for s in sets) == 300
    assert set().union(*sets) == set(ids)
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    sizes = split.sizes()
    assert (
        230 <= sizes["train"] <= 250
        and 20 <= sizes["validation"] <= 40
        and 20 <= sizes["test"] <= 40
    )


def test_split_is_deterministic_and_seeded() -> None:
    ids, labels = dataset(200)
    a = make_split(ids, labels, (0.8, 0.1, 0.1), 5, "f")
    b = make_split(list(reversed(ids)), list(reversed(labels)), (0.8, 0.1, 0.1), 5, "f")
    c = make_split(ids, labels, (0.8, 0.1, 0.1), 6, "f")
    assert a == b
    assert a.post_ids != c.post_ids


def test_stratified_every_frequent_criterion_in_validation() -> None:
    ids, labels = dataset(400, seed=3)
    split = make_split(ids, labels, (0.8, 0.1, 0.1), 0, "f")
    row = dict(zip(ids, labels, strict=True))
    for criterion in range(9):
        assert any(row[p][criterion] for p in split.post_ids["validation"])


def test_manifest_round_trip() -> None:
    ids, labels = dataset(50)
    split = make_split(ids, labels, (0.8, 0.1, 0.1), 0, "abc")
    assert SplitManifest.from_dict(split.to_dict()) == split


def test_too_few_posts() -> None:
    with pytest.raises(DataLoadError, match="too few"):
        make_split(["a", "b"], [[0], [1]], (0.8, 0.1, 0.1), 0, "f")


def test_dataset_own_splits() -> None:
    split = split_from_dataset(
        {"a": "tr", "b": "dev", "c": "te"}, {"train": "tr", "validation": "dev", "test": "te"}, "f"
    )
    assert split.post_ids == {"train": ("a",), "validation": ("b",), "test": ("c",)}
    with pytest.raises(DataLoadError, match="no split named dev"):
        split_from_dataset(
            {"a": "tr", "c": "te"}, {"train": "tr", "validation": "dev", "test": "te"}, "f"
        )


@pytest.mark.parametrize(
    "edit",
    [
        {"seed": float("nan")},
        {"seed": True},
        {"ratios": [float("inf"), 0.1, "x"]},
        {"ratios": [0.8, 0.2]},
        {"post_ids": {"train": ["a"], "validation": ["b"], "test": []}},
        {"post_ids": {"train": ["a"], "validation": ["b"], "test": [7]}},
        {"dataset_fingerprint": 12},
    ],
)
def test_an_edited_manifest_is_a_data_error(tmp_path, edit: dict) -> None:  # type: ignore[no-untyped-def]
    import json

    good = make_split(*dataset(30), (0.8, 0.1, 0.1), 1, "fp").to_dict()
    path = tmp_path / "split_manifest.json"
    path.write_text(json.dumps({**good, **edit}))
    with pytest.raises(DataLoadError, match="cannot read split manifest"):
        SplitManifest.read(path)
    path.write_text("[1, 2]")
    with pytest.raises(DataLoadError):
        SplitManifest.read(path)
