"""The export's README.md: a Hugging Face model card (YAML metadata block, then text) that
says what the model is, how it was evaluated (with confidence intervals and the trivial
baselines, when exported from an evaluated study), and what it is not: a diagnostic device."""

from __future__ import annotations

import re
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
        f"Fine-tuned from `{_text(base) or 'unknown'}` on "
        + (
            "the synthetic ReDSM5-format data this package generates (no real posts: a "
            "demonstration model, not one to draw conclusions from)"
            if dataset == "synthetic"
            else f"`{_text(dataset) or 'unknown'}` (Reddit posts annotated sentence by sentence "
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
        "`transformers.AutoModel.from_pretrained(THIS_DIRECTORY)` loads the encoder alone (its "
        "report that the pooler's weights are missing is expected: this model mean-pools or "
        "takes the first token, it never uses BERT's pooler); the heads are in "
        "`heads.safetensors`, the settings in `dataaug_config.json`.",
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
        + (
            "It was trained on generated text, not on real posts: a demonstration of the "
            "pipeline, with no claim about real language. "
            if dataset == "synthetic"
            else "Its training posts come from Reddit (English, self-selected authors); its "
            "labels are annotators' judgements of the text, not clinical assessments. "
        )
        + "Predictions on other populations, platforms or languages have not been validated.",
        "",
        f"Source: {_text(loaded.source)}"
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
    """The card's evaluation section from the study's evaluation_report.json, read back as
    untrusted data: only names of our own shape, only numbers as numbers, text escaped."""
    if not isinstance(report, dict) or not report:
        return [
            "Exported from a checkpoint without a study evaluation: no test-set numbers are "
            "claimed here. Run `evaluate_study` on its study for them."
        ]
    sizes = _mapping(report.get("test_split"))
    metrics = _mapping(report.get("metrics"))
    intervals = _mapping(_mapping(report.get("confidence_intervals")).get("metrics"))
    baselines = {
        name: _mapping(value)
        for name, value in _mapping(report.get("baselines")).items()
        if isinstance(name, str) and _NAME.fullmatch(name)
    }
    names = [n for n in intervals if isinstance(n, str) and _NAME.fullmatch(n) and n in metrics]
    header = "| metric | value | 95% CI | " + " | ".join(baselines) + " |"
    rows = [header, "|---" * (3 + len(baselines)) + "|"]
    for name in names:
        ci = _mapping(intervals.get(name))
        low, high = _number(ci.get("low")), _number(ci.get("high"))
        cells = [_number(_mapping(b.get("metrics")).get(name)) for b in baselines.values()]
        interval = f"{low}–{high}" if "n/a" not in (low, high) else "n/a"
        rows.append(
            f"| {name} | {_number(metrics.get(name))} | {interval} | " + " | ".join(cells) + " |"
        )
    described = [f"- `{b}`: {_text(v.get('description', ''))}" for b, v in baselines.items()]
    raw_notes = report.get("notes")
    notes = (
        [f"- {_text(n)}" for n in raw_notes if isinstance(n, str)][:20]
        if isinstance(raw_notes, list)
        else []
    )
    posts, pairs = sizes.get("posts"), sizes.get("pairs")
    posts = posts if isinstance(posts, int) and not isinstance(posts, bool) else "?"
    pairs = pairs if isinstance(pairs, int) and not isinstance(pairs, bool) else "?"
    small = (
        [f"**{posts} test posts is a small sample**: read the intervals, not the values."]
        if isinstance(posts, int) and posts < 100
        else []
    )
    return [
        f"On the held-out test split: {posts} posts, {pairs} (criterion, post) pairs. "
        "Intervals: percentile bootstrap over posts. Next to the model, what trivial "
        "predictors score on the same posts (`criteria_matcher/f1` is the macro F1 over the "
        "nine criteria, `micro_f1` over all pairs, `samples_f1` per post; see the evaluation "
        "report for per-criterion scores).",
        *small,
        "",
        *rows,
        "",
        "Baselines:",
        *described,
        *(["", "Notes from the evaluation:", *notes] if notes else []),
    ]


_NAME = re.compile(r"[a-z0-9_/]{1,64}")  # metric and baseline names as this package writes them
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f<>|`*_\[\]#\\]")


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    """A line of report text in Markdown: one line, at most 300 characters, with every
    character that could make markup, a link, a table cell or HTML replaced."""
    return _UNSAFE.sub(" ", str(value))[:300]


def _number(value: Any) -> str:
    return (
        f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"
    )
