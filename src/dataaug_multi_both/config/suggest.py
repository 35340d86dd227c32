""" "Did you mean ...?" for configuration keys that do not exist (pure: no file access).

Used for Hydra overrides (`trainer.lr=1e-4`) and for unknown keys in a config file; the
candidates are the schema's dotted keys (`trainer.learning_rate`).
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Collection

# names users bring from Hugging Face Trainer, Lightning and habit -> ours (leaf names)
FAMILIAR_NAMES = {
    "lr": "learning_rate",
    "epochs": "max_epochs",
    "num_epochs": "max_epochs",
    "num_train_epochs": "max_epochs",
    "per_device_train_batch_size": "batch_size",
    "train_batch_size": "batch_size",
    "bs": "batch_size",
    "per_device_eval_batch_size": "eval_batch_size",
    "accumulate_grad_batches": "gradient_accumulation_steps",
    "grad_accum": "gradient_accumulation_steps",
    "gradient_clip_val": "max_grad_norm",
    "clip_grad_norm": "max_grad_norm",
    "metric_for_best_model": "optimization_metric",
    "precision_type": "precision",
    "model_name": "model_id",
    "model_name_or_path": "model_id",
    "pretrained_model_name_or_path": "model_id",
    "dataset_name": "dataset_id",
    "dataset": "dataset_id",
    "stride": "doc_stride",
    "max_seq_length": "max_length",
    "output_dir": "experiments_dir",
}


def schema_keys(cls: type, prefix: str = "") -> list[str]:
    """The dotted leaf keys of a config dataclass (`trainer.learning_rate`, ...)."""
    keys: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            keys += schema_keys(hint, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


# names from Trainer and Lightning whose counterpart lies in another section, is spelled
# differently, or does not exist (the answer says what to use instead)
FAMILIAR_ELSEWHERE = {
    "val_check_interval": "trainer.eval_steps",
    "eval_strategy": "trainer.eval_steps",
    "evaluation_strategy": "trainer.eval_steps",
    "log_every_n_steps": "trainer.logging_steps",
    "every_n_train_steps": "trainer.save_steps",
    "save_strategy": "trainer.save_steps",
    "save_total_limit": "retention.keep_last_n",
    "patience": "trainer.early_stopping_patience",
    "min_delta": "trainer.early_stopping_threshold",
    "lr_scheduler": "trainer.lr_scheduler_type",
    "scheduler": "trainer.lr_scheduler_type",
    "fp16": "trainer.precision=fp16 (with trainer.mixed_precision=true)",
    "bf16": "trainer.precision=bf16 (with trainer.mixed_precision=true)",
    "seed": "--seed (or seeds.python, seeds.numpy, seeds.torch, seeds.torch_cuda)",
    "max_steps": "trainer.max_epochs (there is no step limit)",
    "warmup_steps": "trainer.warmup_ratio (a fraction of all optimizer steps; there is no step count)",
    "gradient_checkpointing": "model.gradient_checkpointing",
}


def did_you_mean(key: str, known: Collection[str]) -> str | None:
    """The known dotted key `key` most likely stands for, or None when nothing is close.

    In order: a familiar name in the same section (`trainer.lr` -> `trainer.learning_rate`),
    a close name in the same section (typos), a close dotted key anywhere (`traner.lr`),
    the one key anywhere with that familiar or close leaf name (`dataset.learning_rate`)."""
    if key in known:
        return None
    section, _, leaf = key.rpartition(".")
    if leaf in FAMILIAR_ELSEWHERE and not any(k.rpartition(".")[2] == leaf for k in known):
        return FAMILIAR_ELSEWHERE[leaf]
    leaf_of = {k: k.rpartition(".")[2] for k in known}
    familiar = FAMILIAR_NAMES.get(leaf)
    siblings = [k for k in known if k.rpartition(".")[0] == section]
    if familiar and f"{section}.{familiar}".lstrip(".") in known:
        return f"{section}.{familiar}".lstrip(".")
    close = difflib.get_close_matches(leaf, [leaf_of[k] for k in siblings], n=1, cutoff=0.6)
    if close:
        return f"{section}.{close[0]}".lstrip(".")
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    if close:
        return close[0]
    wanted = [familiar] if familiar else difflib.get_close_matches(leaf, set(leaf_of.values()))
    same_leaf = [k for k in known if wanted and leaf_of[k] == wanted[0]]
    return same_leaf[0] if len(same_leaf) == 1 else None


def unknown_key_hint(key: str, known: Collection[str], listing: bool = True) -> str:
    """` (did you mean trainer.learning_rate?)`, else (`listing`) the section's keys, else ""."""
    guess = did_you_mean(key, known)
    if guess is not None:
        return f" (did you mean {guess}?)"
    if not listing:
        return ""
    section = key.rpartition(".")[0]
    siblings = sorted(k for k in known if section and k.rpartition(".")[0] == section)
    if siblings:
        return f" (keys under {section}: {', '.join(k.rpartition('.')[2] for k in siblings)})"
    return ""


def mapping_keys(cls: type, prefix: str = "") -> list[str]:
    """The dotted keys of a config dataclass whose value is a mapping of free names
    (`trainer.lr_scheduler_kwargs`)."""
    keys: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            keys += mapping_keys(hint, f"{prefix}{f.name}.")
        elif typing.get_origin(hint) is dict:
            keys.append(f"{prefix}{f.name}")
    return keys
