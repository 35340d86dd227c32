"""From a dataset id to model-ready window tables: load, pair, split, tokenise (cached)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataaug_multi_both.config.schema import DatasetConfig
from dataaug_multi_both.data.features import (
    PairTemplate,
    context_budget,
    criterion_token_ids,
    load_or_tokenise,
    tokenizer_fingerprint,
)
from dataaug_multi_both.data.pairs import PairSet, build_pairs
from dataaug_multi_both.data.sources import load_tables
from dataaug_multi_both.data.splits import SplitManifest, make_split, split_from_dataset
from dataaug_multi_both.data.tables import RedSM5Tables
from dataaug_multi_both.data.windows import InputBuilder, WindowTable, build_window_table
from dataaug_multi_both.errors import DataLoadError


@dataclass(frozen=True)
class PreparedData:
    pairs: PairSet
    split: SplitManifest
    builder: InputBuilder
    tables: dict[str, WindowTable]  # "train"/"validation"/"test"
    dataset_fingerprint: str
    cache_hit: bool

    def split_sizes(self, key: str) -> dict[str, int]:
        table = self.tables[key]
        return {
            "posts": len(self.split.post_ids[key]),
            "pairs": len(self.split.post_ids[key]) * len(self.pairs.criteria),
            "windows": len(table),
        }


def prepare_data(
    config: DatasetConfig,
    num_criteria: int,
    tokenizer: Any,
    cache_dir: Path | None,
    split: SplitManifest | None = None,
) -> PreparedData:
    """Load and validate the data, build pairs, split (or reuse `split`), tokenise.

    The data and its split depend on the dataset config alone (`dataset.split_seed`,
    `dataset.synthetic_seed`), never on the training seeds. `split` given: it must describe
    this very dataset (same fingerprint), else DataLoadError.
    """
    tables = _load(config)
    fingerprint = tables.fingerprint()
    pairs = build_pairs(tables, num_criteria, config.alignment_threshold)
    if split is None:
        split = _make_split(tables.posts, pairs, config, fingerprint)
    elif split.dataset_fingerprint != fingerprint:
        raise DataLoadError(
            "the split manifest was made for other data (dataset fingerprint "
            f"{split.dataset_fingerprint[:12]} != {fingerprint[:12]}); refusing to re-split"
        )
    template = PairTemplate.from_tokenizer(tokenizer)
    criterion_ids = criterion_token_ids(tokenizer, pairs.criteria)
    budget = context_budget(config.max_length, template, criterion_ids)
    key = {
        "dataset": fingerprint,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "max_length": config.max_length,
        "doc_stride": config.stride,
        "budget": budget,
    }
    posts, hit = load_or_tokenise(cache_dir, key, tokenizer, pairs.texts, budget, config.stride)
    builder = InputBuilder(template, criterion_ids, posts)
    row_of = {pid: i for i, pid in enumerate(pairs.post_ids)}
    unknown = [pid for ids in split.post_ids.values() for pid in ids if pid not in row_of]
    if unknown:
        raise DataLoadError(f"split manifest names posts missing from the data: {unknown[:5]}")
    window_tables = {
        key: build_window_table(pairs, builder, [row_of[pid] for pid in ids])
        for key, ids in split.post_ids.items()
    }
    return PreparedData(pairs, split, builder, window_tables, fingerprint, hit)


def feature_cache_dir(config: DatasetConfig, experiments_dir: Path) -> Path:
    """Where tokenised posts are cached: `dataset.cache_dir`, else the experiments tree's."""
    return Path(config.cache_dir) if config.cache_dir else experiments_dir / ".cache" / "features"


def make_split_for(config: DatasetConfig, num_criteria: int) -> SplitManifest:
    """The split of a dataset without tokenising it (a study makes it once for all trials)."""
    return split_and_pairs(config, num_criteria)[0]


def split_and_pairs(
    config: DatasetConfig, num_criteria: int, split: SplitManifest | None = None
) -> tuple[SplitManifest, PairSet | None]:
    """`split` (or a new one) and the dataset's pairs, without tokenising; the pairs are
    None when `split` was made for other data (the trials will say so)."""
    tables = _load(config)
    fingerprint = tables.fingerprint()
    pairs = build_pairs(tables, num_criteria, config.alignment_threshold)
    if split is None:
        return _make_split(tables.posts, pairs, config, fingerprint), pairs
    return split, (pairs if split.dataset_fingerprint == fingerprint else None)


def _load(config: DatasetConfig) -> RedSM5Tables:
    return load_tables(
        config.dataset_id, config.revision, config.synthetic_num_posts, config.synthetic_seed
    )


def _make_split(
    posts: Any, pairs: PairSet, config: DatasetConfig, fingerprint: str
) -> SplitManifest:
    if "split" in posts.columns:
        column = dict(zip(posts["post_id"].astype(str), posts["split"].astype(str), strict=True))
        names = {
            "train": config.splits.train,
            "validation": config.splits.validation,
            "test": config.splits.test,
        }
        return split_from_dataset(column, names, fingerprint)
    ratios = tuple(config.split_ratios)
    return make_split(
        list(pairs.post_ids),
        pairs.label_matrix(),
        (ratios[0], ratios[1], ratios[2]),
        config.split_seed,
        fingerprint,
    )
