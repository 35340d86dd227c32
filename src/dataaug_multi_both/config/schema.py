"""The training configuration schema: typed, frozen dataclasses and their validation.
`TrainConfig.from_dict` is the only way in: it rejects unknown keys, wrong types and
out-of-range values with a `ConfigError` naming the key, the value and what is allowed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from dataaug_multi_both.config.validation import build, require, require_range, validate_tree
from dataaug_multi_both.errors import ConfigError
from dataaug_multi_both.metric_names import resolve_metric_name

PRECISIONS = ("bf16", "fp16")
POOLINGS = ("mean", "cls")
BEST_DTYPES = ("float32", "bf16", "fp16")
TRACKING_BACKENDS = ("mlflow", "none")
THRESHOLD_POLICIES = ("tuned", "tuned_per_criterion")
# transformers.get_scheduler's names, with the keyword arguments each takes from
# trainer.lr_scheduler_kwargs (the schedules that need more than the step count are left out)
LR_SCHEDULES: dict[str, tuple[str, ...]] = {
    "linear": (),
    "cosine": ("num_cycles",),
    "cosine_with_restarts": ("num_cycles",),
    "polynomial": ("lr_end", "power"),
    "constant": (),
    "constant_with_warmup": (),
    "inverse_sqrt": ("timescale",),
    "cosine_with_min_lr": ("num_cycles", "min_lr", "min_lr_rate"),
}


@dataclass(frozen=True)
class TaskWeights:
    criteria_matcher: float = 1.0
    evidence_binder: float = 1.0

    def validate(self, prefix: str) -> None:
        for name in ("criteria_matcher", "evidence_binder"):
            require(getattr(self, name) >= 0, f"{prefix}.{name}", getattr(self, name), ">= 0")
        require(
            self.criteria_matcher + self.evidence_binder > 0,
            f"{prefix}",
            dataclasses.asdict(self),
            "at least one weight > 0",
        )


@dataclass(frozen=True)
class ModelConfig:
    model_id: str = "minilm"
    revision: str | None = "main"  # None: the repository's default branch
    num_criteria_classes: int = 9
    task_weights: TaskWeights = field(default_factory=TaskWeights)
    dropout: float = 0.1
    pooling: str = "mean"
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory

    def validate(self, prefix: str) -> None:
        require(bool(self.model_id.strip()), f"{prefix}.model_id", self.model_id, "a non-empty id")
        require(self.pooling in POOLINGS, f"{prefix}.pooling", self.pooling, POOLINGS)
        require(
            1 <= self.num_criteria_classes <= 9,
            f"{prefix}.num_criteria_classes",
            self.num_criteria_classes,
            "1..9 (the DSM-5 criteria, in their fixed order)",
        )
        require(0.0 <= self.dropout < 1.0, f"{prefix}.dropout", self.dropout, "0 <= dropout < 1")


@dataclass(frozen=True)
class SplitNames:
    train: str = "train"
    validation: str = "validation"
    test: str = "test"

    def validate(self, prefix: str) -> None:
        names = [self.train, self.validation, self.test]
        require(len(set(names)) == 3, prefix, names, "three distinct split names")


def default_doc_stride(max_length: int) -> int:
    """`dataset.doc_stride` left null: a quarter of the window (64 tokens at 256)."""
    return max_length // 4


@dataclass(frozen=True)
class DatasetConfig:
    dataset_id: str = "irlab-udc/redsm5"
    revision: str = "main"
    splits: SplitNames = field(default_factory=SplitNames)
    split_ratios: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    max_length: int = 256
    doc_stride: int | None = None  # null: max_length // 4, resolved when built (64 at 256)
    alignment_threshold: float = 0.75
    synthetic_num_posts: int = 300
    synthetic_seed: int = 42  # the synthetic dataset's content
    split_seed: int = 42  # the train/validation/test split; never the training seed
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        # the stride follows max_length unless set: the built config (config.yaml, the
        # feature cache key, a resume's comparison) holds the number, never null
        if self.doc_stride is None:
            object.__setattr__(self, "doc_stride", default_doc_stride(self.max_length))

    @property
    def stride(self) -> int:
        """`doc_stride` as built: always a number (typed for the code that uses it)."""
        assert self.doc_stride is not None  # resolved in __post_init__
        return self.doc_stride

    def validate(self, prefix: str) -> None:
        require(bool(self.dataset_id.strip()), f"{prefix}.dataset_id", self.dataset_id, "non-empty")
        ratios = self.split_ratios
        require(
            len(ratios) == 3 and all(r > 0 for r in ratios) and abs(sum(ratios) - 1.0) < 1e-6,
            f"{prefix}.split_ratios",
            ratios,
            "three positive fractions (train, validation, test) summing to 1",
        )
        require_range(self.max_length, 64, 8192, f"{prefix}.max_length")
        require(
            0 <= self.stride <= self.max_length // 2,
            f"{prefix}.doc_stride",
            self.doc_stride,
            f"0..{self.max_length // 2} (at most half of max_length)",
        )
        require(
            0.0 < self.alignment_threshold <= 1.0,
            f"{prefix}.alignment_threshold",
            self.alignment_threshold,
            "0 < threshold <= 1",
        )
        require_range(self.synthetic_num_posts, 10, 100_000, f"{prefix}.synthetic_num_posts")
        for name in ("synthetic_seed", "split_seed"):
            value = getattr(self, name)
            require(0 <= value < 2**32, f"{prefix}.{name}", value, "0..2**32-1")


@dataclass(frozen=True)
class TrainerConfig:
    max_epochs: int = 10
    batch_size: int = 16
    eval_batch_size: int = 64
    group_by_length: bool = True  # batches of similar input length (less padding), random order
    learning_rate: float = 3e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    lr_scheduler_type: str = "linear"
    lr_scheduler_kwargs: dict[str, float] = field(default_factory=dict)
    max_grad_norm: float = 1.0
    optimization_metric: str = "val/criteria_matcher/f1"
    logging_steps: int = 50  # optimizer steps between step records (0: epochs only)
    eval_steps: int = 0  # optimizer steps between validations (0: at each epoch's end only)
    save_steps: int = 0  # optimizer steps between mid-epoch resume checkpoints (0: none)
    early_stopping_patience: int | None = None  # evaluations without improvement (null: off)
    early_stopping_threshold: float = 0.0  # the least change that counts as an improvement
    gradient_accumulation_steps: int = 1
    mixed_precision: bool = True
    precision: str = "bf16"
    decision_threshold: float | str = "tuned"  # a number (fixed), tuned or tuned_per_criterion
    positive_class_weight: float = 1.0
    max_answer_tokens: int = 96
    device: str = "auto"
    num_threads: int | None = None
    ddp_timeout_sec: float = 600.0  # under torchrun: a collective waiting longer fails the job

    def validate(self, prefix: str) -> None:
        require_range(self.max_epochs, 1, 10_000, f"{prefix}.max_epochs")
        require_range(self.batch_size, 1, 4096, f"{prefix}.batch_size")
        require_range(self.eval_batch_size, 1, 4096, f"{prefix}.eval_batch_size")
        require(
            0.0 < self.learning_rate <= 1e6,
            f"{prefix}.learning_rate",
            self.learning_rate,
            "0 < lr <= 1e6",
        )
        require(0.0 <= self.weight_decay < 1.0, f"{prefix}.weight_decay", self.weight_decay, "0..1")
        require(
            0.0 <= self.warmup_ratio < 1.0,
            f"{prefix}.warmup_ratio",
            self.warmup_ratio,
            "0 <= r < 1",
        )
        require(
            self.max_grad_norm >= 0, f"{prefix}.max_grad_norm", self.max_grad_norm, ">= 0 (0 = off)"
        )
        self._validate_schedule(prefix)
        for name in ("logging_steps", "eval_steps", "save_steps"):
            require_range(getattr(self, name), 0, 10_000_000, f"{prefix}.{name}")
        patience = self.early_stopping_patience
        require(
            patience is None or 1 <= patience <= 10_000,
            f"{prefix}.early_stopping_patience",
            patience,
            "null (off) or 1..10000 evaluations",
        )
        require(
            0.0 <= self.early_stopping_threshold < 1e6,
            f"{prefix}.early_stopping_threshold",
            self.early_stopping_threshold,
            ">= 0",
        )
        require_range(
            self.gradient_accumulation_steps, 1, 1024, f"{prefix}.gradient_accumulation_steps"
        )
        require(self.precision in PRECISIONS, f"{prefix}.precision", self.precision, PRECISIONS)
        threshold = self.decision_threshold
        require(
            (
                threshold in THRESHOLD_POLICIES
                if isinstance(threshold, str)
                else 0.0 < threshold < 1.0
            ),
            f"{prefix}.decision_threshold",
            threshold,
            f"a number 0 < t < 1 (fixed), or {' or '.join(THRESHOLD_POLICIES)} (chosen on validation)",
        )
        require(
            0 < self.positive_class_weight <= 100,
            f"{prefix}.positive_class_weight",
            self.positive_class_weight,
            "0 < w <= 100",
        )
        require_range(self.max_answer_tokens, 1, 4096, f"{prefix}.max_answer_tokens")
        require(
            self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
            f"{prefix}.device",
            self.device,
            "auto, cpu, cuda or cuda:N",
        )
        require(
            self.num_threads is None or self.num_threads >= 1,
            f"{prefix}.num_threads",
            self.num_threads,
            "null or >= 1",
        )
        require_range(self.ddp_timeout_sec, 1, 86_400, f"{prefix}.ddp_timeout_sec")
        try:
            resolve_metric_name(self.optimization_metric)
        except ConfigError as exc:  # name the key, then list the valid names
            raise ConfigError(f"{prefix}.optimization_metric: {exc.message}") from None

    def _validate_schedule(self, prefix: str) -> None:
        name = self.lr_scheduler_type
        require(name in LR_SCHEDULES, f"{prefix}.lr_scheduler_type", name, tuple(LR_SCHEDULES))
        allowed = LR_SCHEDULES[name]
        for key, value in self.lr_scheduler_kwargs.items():
            require(
                key in allowed,
                f"{prefix}.lr_scheduler_kwargs.{key}",
                value,
                f"the arguments of {name}: {', '.join(allowed) or 'none'}",
            )
            require(
                0 <= value <= 1e6,
                f"{prefix}.lr_scheduler_kwargs.{key}",
                value,
                "0..1e6",
            )
        if name == "cosine_with_min_lr":
            given = [k for k in ("min_lr", "min_lr_rate") if k in self.lr_scheduler_kwargs]
            require(
                len(given) == 1,
                f"{prefix}.lr_scheduler_kwargs",
                dict(self.lr_scheduler_kwargs),
                "cosine_with_min_lr needs one of min_lr (a rate) or min_lr_rate "
                "(a fraction of the peak), e.g. trainer.lr_scheduler_kwargs.min_lr_rate=0.1",
            )
        cycles = self.lr_scheduler_kwargs.get("num_cycles")
        if name == "cosine_with_restarts" and cycles is not None:
            require(
                float(cycles).is_integer() and cycles >= 1,
                f"{prefix}.lr_scheduler_kwargs.num_cycles",
                cycles,
                "a whole number of restarts >= 1",
            )


@dataclass(frozen=True)
class RetentionConfig:
    keep_last_n: int = 1
    keep_best_k: int = 1
    keep_best_k_max: int = 2
    max_total_size_gb: float = 10.0
    min_interval_epochs: int = 1
    disk_space_threshold_percent: float = 10.0
    best_dtype: str = "float32"

    def validate(self, prefix: str) -> None:
        require(
            self.best_dtype in BEST_DTYPES, f"{prefix}.best_dtype", self.best_dtype, BEST_DTYPES
        )
        require(self.keep_last_n >= 1, f"{prefix}.keep_last_n", self.keep_last_n, ">= 1")
        require(self.keep_best_k >= 0, f"{prefix}.keep_best_k", self.keep_best_k, ">= 0")
        require(
            self.keep_best_k <= self.keep_best_k_max,
            f"{prefix}.keep_best_k",
            self.keep_best_k,
            f"<= retention.keep_best_k_max ({self.keep_best_k_max})",
        )
        require(
            self.max_total_size_gb > 0,
            f"{prefix}.max_total_size_gb",
            self.max_total_size_gb,
            "> 0",
        )
        require(
            self.min_interval_epochs >= 1,
            f"{prefix}.min_interval_epochs",
            self.min_interval_epochs,
            ">= 1",
        )
        require(
            0.0 <= self.disk_space_threshold_percent < 100.0,
            f"{prefix}.disk_space_threshold_percent",
            self.disk_space_threshold_percent,
            "0 <= percent < 100",
        )


@dataclass(frozen=True)
class TrackingConfig:
    mlflow_tracking_uri: str = ""
    vault_addr: str = ""
    vault_token_path: str = ""
    experiment_name: str = "dataaug-multi-both"
    backend: str = "mlflow"
    max_retries: int = 5
    retry_backoff_sec: float = 1.0
    max_retry_wait_sec: float = 60.0
    request_timeout_sec: float = 10.0
    log_checkpoints: bool = False
    allow_insecure_http: bool = False  # credentials over http:// to a non-loopback host

    def validate(self, prefix: str) -> None:
        require(
            self.backend in TRACKING_BACKENDS, f"{prefix}.backend", self.backend, TRACKING_BACKENDS
        )
        require_range(self.max_retries, 0, 20, f"{prefix}.max_retries")
        require(
            0 < self.retry_backoff_sec <= 60,
            f"{prefix}.retry_backoff_sec",
            self.retry_backoff_sec,
            "0 < s <= 60",
        )
        require_range(self.max_retry_wait_sec, 0, 3600, f"{prefix}.max_retry_wait_sec")
        require_range(self.request_timeout_sec, 1, 600, f"{prefix}.request_timeout_sec")
        require(
            bool(self.vault_addr) == bool(self.vault_token_path),
            f"{prefix}.vault_token_path",
            self.vault_token_path,
            "set together with tracking.vault_addr (both or neither)",
        )
        uri = self.mlflow_tracking_uri
        require(
            uri == "" or uri.startswith(("http://", "https://", "sqlite:///", "file:")),
            f"{prefix}.mlflow_tracking_uri",
            uri,
            "empty (local store), http(s)://host:port, sqlite:///path or file:path",
        )
        require(
            bool(self.experiment_name.strip()),
            f"{prefix}.experiment_name",
            self.experiment_name,
            "non-empty",
        )


@dataclass(frozen=True)
class SeedsConfig:
    python: int | None = None
    numpy: int | None = None
    torch: int | None = None
    torch_cuda: int | None = None

    def validate(self, prefix: str) -> None:
        for name in ("python", "numpy", "torch", "torch_cuda"):
            value = getattr(self, name)
            require(
                value is None or 0 <= value < 2**32,
                f"{prefix}.{name}",
                value,
                "null or 0..2**32-1",
            )

    def filled(self, seed: int) -> SeedsConfig:
        """Every seed left null takes `seed`."""
        return SeedsConfig(
            **{
                name: seed if getattr(self, name) is None else getattr(self, name)
                for name in ("python", "numpy", "torch", "torch_cuda")
            }
        )


@dataclass(frozen=True)
class OutputConfig:
    experiments_dir: str = "experiments"
    trial_id: str | None = None

    def validate(self, prefix: str) -> None:
        tid = self.trial_id
        require(
            tid is None or (tid.replace("-", "").replace("_", "").isalnum() and len(tid) <= 80),
            f"{prefix}.trial_id",
            tid,
            "null or letters, digits, '-' and '_' (at most 80)",
        )


@dataclass(frozen=True)
class AugmentationConfig:
    """Evidence-safe augmentation of the training split, redrawn every epoch (all off by
    default). Sentence and word probabilities apply to each sentence / word; see
    docs/augmentation.md."""

    sentence_delete_prob: float = 0.0  # drop a non-evidence sentence
    sentence_shuffle_prob: float = 0.0  # per post: shuffle its non-evidence sentences
    word_swap_prob: float = 0.0  # non-evidence: swap a word with the next one
    word_delete_prob: float = 0.0  # non-evidence: drop a word
    word_insert_prob: float = 0.0  # non-evidence: insert a synonym of a word after it
    synonym_prob: float = 0.0  # non-evidence: replace a word with a synonym
    evidence_synonym_prob: float = 0.0  # evidence: replace a non-key word with a synonym
    evidence_noise_prob: float = 0.0  # evidence: per sentence, whitespace/punctuation noise
    criterion_paraphrase_prob: float = 0.0  # per example: another description of the criterion

    def validate(self, prefix: str) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            require(0.0 <= value <= 1.0, f"{prefix}.{f.name}", value, "0..1")

    @property
    def enabled(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in dataclasses.fields(self))


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    seeds: SeedsConfig = field(default_factory=SeedsConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        config = build(cls, data, prefix="")
        for section in dataclasses.fields(cls):
            validate_tree(getattr(config, section.name), section.name)
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
