"""The competitor: the same two-head model trained by Hugging Face Trainer.

    python benchmarks/hf_trainer_baseline.py throughput --model tiny-bert --sampling random
    python benchmarks/hf_trainer_baseline.py checkpoint --model tiny-bert --out DIR
    python benchmarks/hf_trainer_baseline.py search --trials 10 --out DIR

The data are this project's windows (same posts, split, tokenisation and window table as
`train` with the same config overrides), handed to Trainer as one unpadded example per
window with its own padding collator. The model wraps the project's `DualHeadModel` and
its loss, so both sides compute the same thing per example; only the training loop, the
sampler, the collation and the checkpointing are Trainer's.

- throughput: no evaluation, no saving; samples/s and tokens/s over the training steps
  only (on_epoch_begin .. on_epoch_end), one JSON line on stdout.
- checkpoint: evaluation and saving every epoch with save_total_limit=1 and
  load_best_model_at_end=True (the configuration users copy from the docs); reports the
  time spent in each save; the caller samples the directory size.
- search: `Trainer.hyperparameter_search(backend="optuna")` with that configuration,
  each trial in `run-N/`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from dataaug_multi_both.config.compose import load_train_config
from dataaug_multi_both.data.pipeline import PreparedData, prepare_data
from dataaug_multi_both.model.encoder import (
    load_encoder,
    load_tokenizer,
    quiet_hugging_face,
    resolve_model_id,
)
from dataaug_multi_both.model.heads import DualHeadModel
from dataaug_multi_both.model.losses import dual_head_loss

TARGETS = ("label", "start", "end", "span_weight")


class WindowExamples(torch.utils.data.Dataset):
    """One unpadded example per row of a window table."""

    def __init__(self, data: PreparedData, split: str) -> None:
        self.table = data.tables[split]
        self.builder = data.builder

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, row: int) -> dict[str, Any]:
        inputs = self.builder.batch(self.table, [row])
        targets = self.builder.targets(self.table, [row])
        return {
            **{k: v[0].tolist() for k, v in inputs.items()},
            **{k: v[0].item() for k, v in targets.items()},
        }


class PaddingCollator:
    def __init__(self, pad_id: int) -> None:
        self.pad = {"input_ids": pad_id, "attention_mask": 0, "token_type_ids": 0, "span_mask": 0}
        self.padded_tokens = 0  # tokens the model computes, padding included

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(e["input_ids"]) for e in examples)
        self.padded_tokens += width * len(examples)
        batch: dict[str, torch.Tensor] = {}
        for key, pad in self.pad.items():
            if key in examples[0]:
                rows = [e[key] + [pad] * (width - len(e[key])) for e in examples]
                batch[key] = torch.tensor(rows, dtype=torch.bool if key == "span_mask" else None)
        for key in TARGETS:
            batch[key] = torch.tensor([e[key] for e in examples])
        batch["label"] = batch["label"].float()
        batch["span_weight"] = batch["span_weight"].float()
        return batch


class TrainerModel(torch.nn.Module):
    """DualHeadModel + the project's loss, in the shape Trainer expects."""

    def __init__(self, model: DualHeadModel, positive_weight: float) -> None:
        super().__init__()
        self.model = model
        self.positive_weight = positive_weight

    def forward(self, **batch: torch.Tensor) -> dict[str, torch.Tensor]:
        targets = {k: batch.pop(k) for k in TARGETS}
        output = self.model(**batch)
        loss = dual_head_loss(output, targets, 1.0, 1.0, self.positive_weight)
        return {"loss": loss.total, "criteria_logits": output.criteria_logits}


def build(args: argparse.Namespace) -> tuple[Any, PreparedData, Any]:
    quiet_hugging_face()
    config = load_train_config(None, args.overrides, {"model.model_id": args.model})
    source = resolve_model_id(config.model.model_id)
    tokenizer = load_tokenizer(source, config.model.revision)
    data = prepare_data(config.dataset, config.model.num_criteria_classes, tokenizer, None, None)

    def model_init(trial: Any = None) -> TrainerModel:
        torch.manual_seed(config.seeds.torch or 42)
        model = DualHeadModel(
            load_encoder(source, config.model.revision), config.model.dropout, config.model.pooling
        )
        model.set_criteria_prior(float(data.tables["train"].label.mean()))
        return TrainerModel(model, config.trainer.positive_class_weight)

    return config, data, model_init


def training_args(
    config: Any, args: argparse.Namespace, out: Path, num_train: int, **extra: Any
) -> Any:
    from transformers import TrainingArguments

    trainer = config.trainer
    steps = -(-num_train // trainer.batch_size) * trainer.max_epochs
    # mixed precision as ours: autocast on CUDA only (a no-op on CPU there)
    mixed = trainer.mixed_precision and torch.cuda.is_available()
    return TrainingArguments(
        bf16=mixed and trainer.precision == "bf16",
        fp16=mixed and trainer.precision == "fp16",
        output_dir=str(out),
        per_device_train_batch_size=trainer.batch_size,
        per_device_eval_batch_size=trainer.eval_batch_size,
        num_train_epochs=trainer.max_epochs,
        learning_rate=trainer.learning_rate,
        weight_decay=trainer.weight_decay,
        warmup_steps=int(steps * trainer.warmup_ratio),
        max_grad_norm=trainer.max_grad_norm,
        train_sampling_strategy=args.sampling,
        remove_unused_columns=False,
        label_names=list(TARGETS),
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        seed=config.seeds.torch or 42,
        dataloader_num_workers=0,
        logging_strategy="no",
        **extra,
    )


def epoch_timer() -> Any:
    from transformers import TrainerCallback

    class EpochTimer(TrainerCallback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self._started = 0.0

        def on_epoch_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._started = time.perf_counter()

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.seconds.append(time.perf_counter() - self._started)

    return EpochTimer()


def timed_trainer_class() -> Any:
    from transformers import Trainer

    class TimedTrainer(Trainer):
        """Trainer that records how long each checkpoint save blocks the loop."""

        save_seconds: list[float] = []

        def _save_checkpoint(self, *a: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return super()._save_checkpoint(*a, **kw)
            finally:
                type(self).save_seconds.append(time.perf_counter() - started)

    return TimedTrainer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["throughput", "checkpoint", "search"])
    parser.add_argument("--model", default="tiny-bert")
    parser.add_argument("--sampling", default="random", choices=["random", "group_by_length"])
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 1)))
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("hf_out"))
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the train config")
    args = parser.parse_intermixed_args()
    torch.set_num_threads(args.threads)
    config, data, model_init = build(args)
    train, validation = WindowExamples(data, "train"), WindowExamples(data, "validation")
    collator = PaddingCollator(data.builder.template.pad_id)
    timer = epoch_timer()
    trainer_class = timed_trainer_class()
    tokens = int(data.tables["train"].length.sum())
    if args.mode == "throughput":
        targs = training_args(
            config, args, args.out, len(train), eval_strategy="no", save_strategy="no"
        )
        trainer = trainer_class(
            model_init=model_init,
            args=targs,
            train_dataset=train,
            data_collator=collator,
            callbacks=[timer],
        )
        trainer.train()
        result = {
            "epoch_train_sec": timer.seconds,
            "samples": len(train),
            "tokens": tokens,
            "padded_tokens": collator.padded_tokens,
        }
    else:
        targs = training_args(
            config,
            args,
            args.out,
            len(train),
            eval_strategy="epoch",
            save_strategy="epoch",
            save_total_limit=1,
            load_best_model_at_end=True,
            metric_for_best_model="eval_loss",
            greater_is_better=False,
        )
        trainer = trainer_class(
            model_init=model_init,
            args=targs,
            train_dataset=train,
            eval_dataset=validation,
            data_collator=collator,
            callbacks=[timer],
        )
        started = time.perf_counter()
        if args.mode == "checkpoint":
            trainer.train()
        else:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.ERROR)
            trainer.hyperparameter_search(
                hp_space=lambda trial: {
                    "learning_rate": trial.suggest_float("learning_rate", 3e-5, 3e-4, log=True)
                },
                n_trials=args.trials,
                direction="minimize",
                backend="optuna",
                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
            )
        result = {
            "wall_sec": time.perf_counter() - started,
            "epoch_train_sec": timer.seconds,
            "save_sec": trainer_class.save_seconds,
            "samples": len(train),
            "tokens": tokens,
        }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
