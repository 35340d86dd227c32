"""The export's README.md: a Hugging Face model card (YAML metadata block, then text) that
says what the model is, how it was evaluated (with confidence intervals and the trivial
baselines, when exported from an evaluated study), and what it is not: a diagnostic device."""

from __future__ import annotations

from typing import Any

import yaml

from dataaug_multi_both.serving.model_source import LoadedModel

HUB_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}


def model_card(loaded: LoadedModel) -> str:
    config = loaded.config or {}
    dataset = (config.get("dataset") or {}).get("dataset_id", "")
    base = HUB_IDS.get(loaded.base_model, loaded.base_model)
    metadata: dict[str, Any] = {
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "language": ["en"],
        "tags": ["dataaug-multi-both", "redsm5", "dsm-5", "mental-health", "research-only"],
    }
    if base and "/" in base and not base.startswith(("/", ".")):
        metadata["base_model"] = base
    if dataset and dataset != "synthetic" and "/" in dataset and not dataset.startswith("/"):
        metadata["datasets"] = [dataset]
    lines = [
        "---",
        yaml.safe_dump(metadata, sort_keys=False).strip(),
        "---",
        "",
        "# Criteria matcher and evidence binder (dataaug-multi-both)",
        "",
        f"Fine-tuned from `{base or 'unknown'}` on "
        + (
            "the synthetic ReDSM5-format data this package generates (no real posts: a "
            "demonstration model, not one to draw conclusions from)"
            if dataset == "synthetic"
            else f"`{dataset or 'unknown'}` (Reddit posts annotated sentence by sentence "
            "with the nine DSM-5 depression symptoms)"
        )
        + ". Two heads share the encoder:",
        "- **criteria matcher**: for each of the nine criteria, the probability that the post "
        "shows it;",
        "- **evidence binder**: the span of the post that is the evidence (or none).",
        "",
        "Each input is `[CLS] <criterion description> [SEP] <post window> [SEP]`; long posts "
        f"are cut into windows of {loaded.max_length} tokens sharing {loaded.doc_stride}; a "
        "criterion's probability is the sigmoid of its largest window logit.",
        "",
        "## Use",
        "```bash",
        "python -m dataaug_multi_both.cli.predict --model-dir THIS_DIRECTORY --input posts.csv",
        "```",
        "`transformers.AutoModel.from_pretrained(THIS_DIRECTORY)` loads the encoder alone; the "
        "heads are in `heads.safetensors`, the settings in `dataaug_config.json`.",
        "",
        "## Decision threshold",
        f"{_threshold_text(loaded)}",
        "",
        "## Evaluation",
        *_evaluation(loaded.report),
        "",
        "## Intended use and limits",
        "A research tool for studying how language relates to depressive symptoms in "
        "annotated corpora. **It is not a diagnostic device**: it must not be used to "
        "diagnose, screen or triage people, nor to make any decision about an individual. "
        "Its training posts come from Reddit (English, self-selected authors); its labels are "
        "annotators' judgements of the text, not clinical assessments. Predictions on other "
        "populations, platforms or languages have not been validated.",
        "",
        f"Source: {loaded.source}"
        + (f" (SHA256 {loaded.checkpoint_sha256})" if loaded.checkpoint_sha256 else ""),
        "",
    ]
    return "\n".join(lines)


def _threshold_text(loaded: LoadedModel) -> str:
    data = loaded.threshold.as_dict(loaded.criteria)
    where = "chosen on validation data" if loaded.threshold.source == "validation" else "fixed"
    return (
        f"Policy `{data['policy']}` ({where}); per criterion: "
        + ", ".join(
            f"{c} {v:.3f}" for c, v in zip(loaded.criteria, loaded.threshold.values(), strict=True)
        )
        + ". Never tuned on test data."
    )


def _evaluation(report: dict[str, Any] | None) -> list[str]:
    if not report:
        return [
            "Exported from a checkpoint without a study evaluation: no test-set numbers are "
            "claimed here. Run `evaluate_study` on its study for them."
        ]
    sizes = (report.get("test_split") or {}) if isinstance(report.get("test_split"), dict) else {}
    metrics = report.get("metrics") or {}
    intervals = ((report.get("confidence_intervals") or {}).get("metrics")) or {}
    baselines = report.get("baselines") or {}
    names = [n for n in intervals if n in metrics]
    header = "| metric | value | 95% CI | " + " | ".join(str(b) for b in baselines) + " |"
    rows = [header, "|---" * (3 + len(baselines)) + "|"]
    for name in names:
        ci = intervals.get(name) or {}
        low, high = ci.get("low"), ci.get("high")
        cells = [_number(((baselines[b] or {}).get("metrics") or {}).get(name)) for b in baselines]
        rows.append(
            f"| {name} | {_number(metrics.get(name))} | "
            + (f"{low:.3f}–{high:.3f}" if low is not None and high is not None else "n/a")
            + " | "
            + " | ".join(cells)
            + " |"
        )
    return [
        f"On the held-out test split: {sizes.get('posts', '?')} posts, "
        f"{sizes.get('pairs', '?')} (criterion, post) pairs. Intervals: percentile bootstrap "
        "over posts. Next to the model, what trivial predictors score on the same posts.",
        "",
        *rows,
    ]


def _number(value: Any) -> str:
    return (
        f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"
    )
