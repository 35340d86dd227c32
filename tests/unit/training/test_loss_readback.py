"""On a GPU the losses of up to SETTLE_EVERY batches are read back together (no host-device
sync per step). Reading them later must change nothing: the same epoch metrics and step
records to the bit, the same step named when the loss diverges, and no update from a
non-finite loss before a step that logs, evaluates or saves. Run here on the CPU, where the
read-back cadence is the only difference."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import numpy as np
import pytest
import torch
from rich.console import Console

from dataaug_multi_both.config.schema import DatasetConfig, TaskWeights, TrainerConfig
from dataaug_multi_both.data.pipeline import prepare_data
from dataaug_multi_both.data.windows import WindowTable
from dataaug_multi_both.errors import TrainingError
from dataaug_multi_both.model.encoder import (
    TINY_BERT,
    load_encoder,
    load_tokenizer,
    resolve_model_id,
)
from dataaug_multi_both.model.heads import DualHeadModel
from dataaug_multi_both.training.loop import (
    EpochContext,
    EpochPosition,
    Optimisation,
    train_epoch,
)
from dataaug_multi_both.training.run_state import TrainingProgress
from dataaug_multi_both.training.schedule import build_optimizer, build_scheduler

DATA = DatasetConfig(dataset_id="synthetic", synthetic_num_posts=20, max_length=64, doc_stride=16)


@pytest.fixture(scope="module")
def data() -> Any:
    tokenizer = load_tokenizer(resolve_model_id(TINY_BERT), None)
    prepared = prepare_data(DATA, 9, tokenizer, None)
    train = prepared.tables["train"]  # 13 batches of 2: more than one read-back holds
    rows = np.arange(26)
    prepared.tables["train"] = WindowTable(
        **{f.name: getattr(train, f.name)[rows] for f in dataclasses.fields(train)}
    )
    return prepared


def run_epoch(data: Any, settle_every: int, **trainer: Any) -> dict[str, Any]:
    torch.manual_seed(0)
    model = DualHeadModel(load_encoder(resolve_model_id(TINY_BERT), None), dropout=0.1)
    config = TrainerConfig(batch_size=2, max_epochs=1, warmup_ratio=0.0, **trainer)
    device = torch.device("cpu")
    optimizer = build_optimizer(model, config, device)
    opt = Optimisation(
        model,
        optimizer,
        build_scheduler(optimizer, 100, config),
        torch.amp.GradScaler("cuda", enabled=False),
        TrainingProgress(),
    )
    seen: list[tuple[int, int, dict[str, float] | None, dict[str, Any]]] = []

    def after_step(position: EpochPosition, record: dict[str, float] | None, last: bool) -> None:
        timed = "train_step/samples_per_sec"  # wall-clock: differs from run to run
        record = {k: v for k, v in record.items() if k != timed} if record else None
        seen.append(
            (opt.progress.global_step, position.batches_done, record, position.state_dict())
        )

    context = EpochContext(
        opt,
        config,
        TaskWeights(),
        seed=1,
        device=device,
        autocast=contextlib.nullcontext,
        before_step=lambda: None,
        console=Console(quiet=True),
        verbose=False,
        after_step=after_step,
        settle_every=settle_every,
    )
    result: dict[str, Any] = {"after_step": seen}
    try:
        result["metrics"], _ = train_epoch(context, data, epoch=1)
    except TrainingError as exc:
        result["error"] = str(exc)
    return result


def test_reading_losses_back_ten_batches_at_a_time_changes_nothing(data: Any) -> None:
    every_batch = run_epoch(data, 1, logging_steps=3, save_steps=5)
    batched = run_epoch(data, 10, logging_steps=3, save_steps=5)
    assert len(every_batch["after_step"]) > 10  # more batches than one read-back holds
    assert batched["metrics"] == every_batch["metrics"]
    # the step records and the mid-epoch position at every step that logs or saves
    due = [s for s in every_batch["after_step"] if s[0] % 3 == 0 or s[0] % 5 == 0]
    assert due and [s for s in batched["after_step"] if s[0] % 3 == 0 or s[0] % 5 == 0] == due
    assert all(s[2] is not None for s in due if s[0] % 3 == 0)


def test_a_diverging_loss_read_back_late_names_its_own_step(data: Any) -> None:
    diverging = {"learning_rate": 1e4, "max_grad_norm": 0.0, "save_steps": 7}
    at_once = run_epoch(data, 1, **diverging)
    late = run_epoch(data, 10, **diverging)
    assert "non-finite loss" in at_once["error"]
    assert late["error"] == at_once["error"]  # same step, same loss, same learning rate
    (bad_step,) = {int(at_once["error"].split("step ")[1].split(":")[0])}
    # read back late, but never past a step that saves: none at or after the diverging one
    handed_on = [step for step, *_ in late["after_step"]]
    assert handed_on and not [s for s in handed_on if s >= bad_step and s % 7 == 0]
    assert [s for s in handed_on if s < bad_step] == [s for s, *_ in at_once["after_step"]]
