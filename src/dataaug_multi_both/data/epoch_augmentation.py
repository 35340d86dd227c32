"""The training split of one epoch, augmented: new texts, recomputed spans, new windows.

Only the training split is touched: validation and test keep the prepared windows and
builder (`PreparedData.tables["validation"]` etc. are returned as they are). The draw is a
pure function of (seed, epoch), so a resumed run sees the same augmented epoch as an
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataaug_multi_both.config.schema import AugmentationConfig, TrainConfig
from dataaug_multi_both.data.augmentation import augment_post
from dataaug_multi_both.data.criteria import CRITERION_PARAPHRASES
from dataaug_multi_both.data.features import context_budget, tokenise_posts
from dataaug_multi_both.data.pairs import PairSet
from dataaug_multi_both.data.pipeline import PreparedData
from dataaug_multi_both.data.windows import InputBuilder, WindowTable, build_window_table


@dataclass(frozen=True)
class AugmentationStats:
    posts: int  # training posts
    edited_posts: int  # whose text changed
    examples: int  # (criterion, post) training pairs
    augmented_examples: int  # whose input changed: text edited or description paraphrased
    paraphrased_examples: int

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def augment_training_split(
    data: PreparedData,
    config: AugmentationConfig,
    tokenizer: Any,
    max_length: int,
    doc_stride: int,
    seed: int,
    epoch: int,
) -> tuple[PreparedData, AugmentationStats]:
    pairs = data.pairs
    width = len(pairs.criteria)
    row_of = {pid: i for i, pid in enumerate(pairs.post_ids)}
    posts = sorted(row_of[pid] for pid in data.split.post_ids["train"])
    rng = random.Random(f"augmentation-{seed}-{epoch}")
    texts, examples, edited = [], [], []
    for new_index, p in enumerate(posts):
        own = [pairs.examples[p * width + c] for c in range(width)]
        spans = sorted({span for example in own for span in example.spans})
        post = augment_post(pairs.texts[p], spans, config, rng)
        texts.append(post.text)
        edited.append(post.edited)
        for example in own:
            examples.append(
                dataclasses.replace(
                    example,
                    post_index=new_index,
                    spans=tuple(sorted(post.spans[s] for s in example.spans)),
                )
            )
    train_pairs = PairSet(
        tuple(pairs.post_ids[p] for p in posts),
        tuple(texts),
        pairs.criteria,
        tuple(examples),
        pairs.report,
    )
    template = data.builder.template
    descriptions = _descriptions(tokenizer, pairs.criteria, data.builder.criterion_ids, config)
    budget = context_budget(max_length, template, descriptions)
    builder = InputBuilder(
        template, descriptions, tokenise_posts(tokenizer, train_pairs.texts, budget, doc_stride)
    )
    table = build_window_table(train_pairs, builder, range(len(posts)))
    paraphrased: set[int] = set()
    if config.criterion_paraphrase_prob > 0:
        table, paraphrased = _paraphrase(table, builder, width, config, seed, epoch)
    augmented = {i * width + c for i, changed in enumerate(edited) if changed for c in range(width)}
    stats = AugmentationStats(
        posts=len(posts),
        edited_posts=sum(edited),
        examples=len(examples),
        augmented_examples=len(augmented | paraphrased),
        paraphrased_examples=len(paraphrased),
    )
    epoch_data = dataclasses.replace(data, builder=builder, tables={**data.tables, "train": table})
    return epoch_data, stats


def _descriptions(
    tokenizer: Any,
    criteria: tuple[str, ...],
    canonical: list[list[int]],
    config: AugmentationConfig,
) -> list[list[int]]:
    """Token ids of every description: the canonical ones (index = criterion), then the
    paraphrases (criterion c's v-th at `width + c * per + v`) when paraphrasing is on."""
    if config.criterion_paraphrase_prob <= 0:
        return list(canonical)
    extra = [
        tokenizer(text, add_special_tokens=False)["input_ids"]
        for name in criteria
        for text in CRITERION_PARAPHRASES[name]
    ]
    return [*canonical, *extra]


def _paraphrase(
    table: WindowTable,
    builder: InputBuilder,
    width: int,
    config: AugmentationConfig,
    seed: int,
    epoch: int,
) -> tuple[WindowTable, set[int]]:
    """Give each chosen pair (all its windows) one paraphrase of its criterion: the rows'
    description slot changes, and span targets and lengths shift by the length difference."""
    per = len(next(iter(CRITERION_PARAPHRASES.values())))
    rng = random.Random(f"paraphrase-{seed}-{epoch}")
    slot_of: dict[int, int] = {}
    for pair in sorted(set(table.pair.tolist())):
        if rng.random() < config.criterion_paraphrase_prob:
            criterion = pair % width
            slot_of[pair] = width + criterion * per + rng.randrange(per)
    criterion = table.criterion.copy()
    start, end, length = table.start.copy(), table.end.copy(), table.length.copy()
    for row, pair in enumerate(table.pair.tolist()):
        slot = slot_of.get(pair)
        if slot is None:
            continue
        shift = builder.context_offset(slot) - builder.context_offset(int(criterion[row]))
        if start[row] > 0:  # a span target (0 = "no evidence here" stays at [CLS])
            start[row] += shift
            end[row] += shift
        length[row] += shift
        criterion[row] = slot
    table = dataclasses.replace(
        table,
        criterion=criterion,
        start=start,
        end=end,
        length=np.asarray(length, dtype=np.int64),
    )
    return table, set(slot_of)


def epoch_training_data(
    data: PreparedData, config: TrainConfig, tokenizer: Any, epoch: int, log: Any
) -> tuple[PreparedData, dict[str, float]]:
    """The training data of `epoch`: augmented afresh when `augmentation.*` asks for it
    (training split only; logged as an `augmentation` event), else `data` itself; and the
    epoch's augmentation metric."""
    if not config.augmentation.enabled:
        return data, {}
    started = time.perf_counter()
    augmented, stats = augment_training_split(
        data,
        config.augmentation,
        tokenizer,
        config.dataset.max_length,
        config.dataset.stride,
        config.seeds.python or 0,
        epoch,
    )
    log.write(
        "augmentation",
        epoch=epoch,
        windows=len(augmented.tables["train"]),
        seconds=round(time.perf_counter() - started, 3),
        stats=stats.as_dict(),
    )
    return augmented, {"train/augmentation/augmented_examples": float(stats.augmented_examples)}
