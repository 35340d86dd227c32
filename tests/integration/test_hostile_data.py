"""Hostile but valid data trains without a crash, and every skip is counted and logged."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dataaug_multi_both.data.tables import ANNOTATION_COLUMNS
from tests.integration.conftest import read_jsonl, run_cli

pytestmark = pytest.mark.integration


def test_huge_empty_and_injection_like_posts_train(tmp_path: Path) -> None:
    normal = [f"I feel sad today number {i}. I can't sleep at night." for i in range(30)]
    posts = pd.DataFrame(
        {
            "post_id": [f"p{i}" for i in range(34)],
            "text": [
                *normal,
                " ".join(["word"] * 100_000) + " I can't sleep at night.",  # a post of 100k words
                "",  # an empty post
                '=HYPERLINK("http://evil.example","click") @SUM(1+1) +cmd|"/C calc"!A0',
                "\x00\u202e\ufeff odd bytes but valid UTF-8 \U0001f600",
            ],
        }
    )
    annotations = pd.DataFrame(
        [
            *[
                (f"p{i}", f"s_{i}_3_1", "I can't sleep at night.", "SLEEP_ISSUES", 1, "x")
                for i in range(30)
            ],
            (
                "p30",
                "s_30_3_1",
                "I can't sleep at night.",
                "SLEEP_ISSUES",
                1,
                "far past 512 tokens",
            ),
            (
                "p3",
                "s_3_0_9",
                "A sentence that appears nowhere in the post.",
                "DEPRESSED_MOOD",
                1,
                "unaligned",
            ),
        ],
        columns=list(ANNOTATION_COLUMNS),
    )
    data = tmp_path / "data"
    data.mkdir()
    posts.to_csv(data / "redsm5_posts.csv", index=False)
    annotations.to_csv(data / "redsm5_annotations.csv", index=False)
    result = run_cli(
        "train",
        "--model",
        "tiny-bert",
        "--dataset",
        str(data),
        "--max-epochs",
        "1",
        "--dry-run",
        "tracking.backend=none",
        "dataset.max_length=128",
        "dataset.doc_stride=32",
        "output.trial_id=hostile",
        cwd=tmp_path,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    events = read_jsonl(tmp_path / "experiments/trial_hostile/logs/train.jsonl")
    data_event = next(e for e in events if e["event"] == "data")
    alignment = data_event["alignment"]
    assert alignment["unaligned"] == 1 and alignment["exact"] == 31
    # the 100k-word post is cut into windows (about 1,400 per criterion), never truncated
    assert sum(split["windows"] for split in data_event["splits"].values()) > 9 * 1000
    assert "unaligned 1" in result.stdout


class Exploit:
    """Unpickling this would create a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("kind", ["text", "pickle"])
def test_resume_from_a_non_checkpoint_is_rejected_without_executing_it(
    tmp_path: Path, kind: str
) -> None:
    import hashlib
    import json
    import pickle

    trial = tmp_path / "experiments" / "trial_x"
    checkpoints = trial / "checkpoints"
    checkpoints.mkdir(parents=True)
    marker = tmp_path / "pwned"
    target = checkpoints / "epoch_001.pt"
    if kind == "text":
        target.write_text("this is not a checkpoint\n")
    else:
        target.write_bytes(pickle.dumps({"kind": "resume", "model": Exploit(str(marker))}))
    record = {
        "file": target.name,
        "epoch": 1,
        "step": 1,
        "metric_value": 0.5,
        "metrics": {},
        "kind": "resume",
        "size_bytes": target.stat().st_size,
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "created": "2026-01-01T00:00:00Z",
        "is_best": True,
        "is_latest": True,
        "retained": True,
    }
    manifest = {
        "format_version": 1,
        "trial_id": "x",
        "optimization_metric": "val/criteria_matcher/f1",
        "trial_dir": str(trial),
        "records": [record],
    }
    (checkpoints / "manifest.json").write_text(json.dumps(manifest))
    result = run_cli(
        "train",
        "--model",
        "tiny-bert",
        "--dataset",
        "synthetic",
        "--resume-from",
        str(target),
        cwd=tmp_path,
    )
    assert result.returncode == 4, result.stderr
    assert "unreadable" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()  # nothing was executed
