"""Train/validation/test splits grouped by post, and the manifest that pins them.

When the data carries its own splits (a `split` column in the posts table, with the names
of `dataset.splits`), they are used as they are. Otherwise `make_split` deals the posts into
the three splits, seeded: no post is in two splits, and within each stratum (a post's
rarest positive criterion, or "none") every split's share stays as close to its ratio as
the stratum's size allows. Every trial of a study and `evaluate_study` read the same
`SplitManifest` instead of splitting again.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataaug_multi_both.errors import DataLoadError
from dataaug_multi_both.layout import SPLIT_MANIFEST_FILE
from dataaug_multi_both.untrusted import read_json

SPLIT_KEYS = ("train", "validation", "test")
MANIFEST_NAME = SPLIT_MANIFEST_FILE


@dataclass(frozen=True)
class SplitManifest:
    post_ids: dict[str, tuple[str, ...]]  # "train"/"validation"/"test" -> post ids, sorted
    method: str  # "grouped-stratified" | "dataset"
    seed: int | None
    ratios: tuple[float, ...] | None
    dataset_fingerprint: str

    def split_of(self) -> dict[str, str]:
        return {pid: key for key, ids in self.post_ids.items() for pid in ids}

    def sizes(self) -> dict[str, int]:
        return {key: len(ids) for key, ids in self.post_ids.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "seed": self.seed,
            "ratios": list(self.ratios) if self.ratios else None,
            "dataset_fingerprint": self.dataset_fingerprint,
            "sizes": self.sizes(),
            "post_ids": {k: list(v) for k, v in self.post_ids.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitManifest:
        """ValueError/KeyError/TypeError unless every field has its type and range (the
        file may have been edited: post ids are strings, every split has posts, the seed is
        an integer, the ratios three finite fractions)."""
        post_ids = {k: tuple(data["post_ids"][k]) for k in SPLIT_KEYS}
        for key, ids in post_ids.items():
            if not ids or not all(isinstance(pid, str) for pid in ids):
                raise ValueError(f"the {key} split must list its post ids (strings)")
        seed, ratios = data.get("seed"), data.get("ratios")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed must be an integer or null, not {type(seed).__name__}")
        if ratios is not None and not (
            isinstance(ratios, list)
            and len(ratios) == 3
            and all(isinstance(r, int | float) and 0 < r < 1 for r in ratios)
        ):
            raise ValueError("ratios must be three fractions between 0 and 1, or null")
        method, fingerprint = data["method"], data["dataset_fingerprint"]
        if not isinstance(method, str) or not isinstance(fingerprint, str):
            raise ValueError("method and dataset_fingerprint must be strings")
        return cls(post_ids, method, seed, tuple(ratios) if ratios else None, fingerprint)

    @classmethod
    def read(cls, path: Path) -> SplitManifest:
        data = read_json(path, DataLoadError)
        try:
            return cls.from_dict(data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataLoadError(f"cannot read split manifest {path}: {exc}") from None


def make_split(
    post_ids: list[str],
    labels: list[list[int]],
    ratios: tuple[float, float, float],
    seed: int,
    dataset_fingerprint: str,
) -> SplitManifest:
    """Deterministic grouped, stratified split of `post_ids` (labels[post][criterion])."""
    positives = Counter(c for row in labels for c, v in enumerate(row) if v)
    strata: dict[str, list[str]] = defaultdict(list)
    for pid, row in zip(post_ids, labels, strict=True):
        present = [c for c, v in enumerate(row) if v]
        key = f"c{min(present, key=lambda c: (positives[c], c))}" if present else "none"
        strata[key].append(pid)

    rng = random.Random(seed)
    assigned: dict[str, list[str]] = {k: [] for k in SPLIT_KEYS}
    for key in sorted(strata):
        members = sorted(strata[key])
        rng.shuffle(members)
        counts = [0, 0, 0]
        for n, pid in enumerate(members, start=1):
            deficits = [ratios[i] * n - counts[i] for i in range(3)]
            total = sum(len(v) for v in assigned.values()) + 1
            global_deficit = [ratios[i] * total - len(assigned[SPLIT_KEYS[i]]) for i in range(3)]
            choice = max(range(3), key=lambda i: (deficits[i], global_deficit[i], -i))
            counts[choice] += 1
            assigned[SPLIT_KEYS[choice]].append(pid)
    _require_nonempty(assigned, len(post_ids))
    return SplitManifest(
        post_ids={k: tuple(sorted(v)) for k, v in assigned.items()},
        method="grouped-stratified",
        seed=seed,
        ratios=tuple(ratios),
        dataset_fingerprint=dataset_fingerprint,
    )


def split_from_dataset(
    split_column: dict[str, str], names: dict[str, str], dataset_fingerprint: str
) -> SplitManifest:
    """Use the dataset's own splits; `names` maps train/validation/test to its split names."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for pid, name in split_column.items():
        by_name[name].append(pid)
    missing = [names[k] for k in SPLIT_KEYS if names[k] not in by_name]
    if missing:
        raise DataLoadError(
            f"the dataset's split column has no split named {', '.join(missing)} "
            f"(it has: {', '.join(sorted(by_name))}); set dataset.splits accordingly"
        )
    return SplitManifest(
        post_ids={k: tuple(sorted(by_name[names[k]])) for k in SPLIT_KEYS},
        method="dataset",
        seed=None,
        ratios=None,
        dataset_fingerprint=dataset_fingerprint,
    )


def _require_nonempty(assigned: dict[str, list[str]], total: int) -> None:
    empty = [k for k, v in assigned.items() if not v]
    if empty:
        raise DataLoadError(
            f"{total} posts are too few to fill the {', '.join(empty)} split(s); "
            "use more data or change dataset.split_ratios"
        )
