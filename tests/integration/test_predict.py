"""`predict` and `export` for real: a trained tiny model, its checkpoint, a study, an export;
the same records from each; every error with its exit code and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import HPO_SMALL, TINY_STUDY, run_cli

pytestmark = pytest.mark.integration

TINY = [
    "--model",
    "tiny-bert",
    "--dataset",
    "synthetic",
    "dataset.synthetic_num_posts=40",
    "dataset.max_length=64",
    "dataset.doc_stride=8",
    "trainer.num_threads=1",
    "trainer.max_epochs=1",
    "tracking.backend=none",
    "output.trial_id=model",
]
POSTS = [
    {
        "post_id": "curly",
        "text": "I can\u2019t sleep \U0001f61e and \u201cnothing\u201d helps. " * 12,
    },
    {"post_id": "script", "text": "<script>alert(1)</script> tired all the time & alone"},
    {"post_id": "empty", "text": ""},
    {"text": "A post without an id."},
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("predict")
    result = run_cli("train", *TINY, cwd=root)
    assert result.returncode == 0, result.stderr
    (root / "posts.jsonl").write_text(
        "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in POSTS), encoding="utf-8"
    )
    return root


def checkpoint_of(root: Path) -> Path:
    return root / "experiments" / "trial_model" / "checkpoints" / "epoch_001.pt"


def records(root: Path, *source: str, extra: tuple[str, ...] = ()) -> list[dict]:
    result = run_cli(
        "predict", *source, "--input", "posts.jsonl", "--threshold", "0.01", *extra, cwd=root
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def same(a: list[dict], b: list[dict]) -> None:
    assert [r["post_id"] for r in a] == [r["post_id"] for r in b]
    for x, y in zip(a, b, strict=True):
        for p, q in zip(x["criteria"], y["criteria"], strict=True):
            if p["probability"] is None or q["probability"] is None:  # an empty post
                assert p["probability"] is q["probability"] is None
            else:
                assert abs(p["probability"] - q["probability"]) <= 1e-6
            assert (p["present"], p["evidence"] and p["evidence"]["start"]) == (
                q["present"],
                q["evidence"] and q["evidence"]["start"],
            )


def test_checkpoint_and_export_give_the_same_records(trained: Path) -> None:
    from_checkpoint = records(trained, "--checkpoint", str(checkpoint_of(trained)))
    assert [r["post_id"] for r in from_checkpoint] == ["curly", "script", "empty", "post-000004"]
    texts = {p.get("post_id", "post-000004"): p["text"] for p in POSTS}
    for record in from_checkpoint:
        assert len(record["criteria"]) == 9
        for entry in record["criteria"]:
            if entry["evidence"]:
                e = entry["evidence"]
                assert texts[record["post_id"]][e["start"] : e["end"]] == e["text"]
    empty = from_checkpoint[2]  # the empty post: a record, every criterion absent
    assert empty["note"] == "empty post, not scored"
    assert not any(e["present"] or e["probability"] is not None for e in empty["criteria"])

    exported = run_cli(
        "export", "--checkpoint", str(checkpoint_of(trained)), "--output", "export", cwd=trained
    )
    assert exported.returncode == 0, exported.stderr
    card = (trained / "export" / "README.md").read_text()
    assert card.startswith("---\n") and "not a diagnostic device" in card
    same(from_checkpoint, records(trained, "--model-dir", "export"))
    loads = subprocess.run(
        [
            sys.executable,
            "-c",
            "import transformers, sys; transformers.AutoModel.from_pretrained(sys.argv[1])",
            "export",
        ],
        cwd=trained,
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert loads.returncode == 0, loads.stderr
    again = run_cli(
        "export", "--checkpoint", str(checkpoint_of(trained)), "--output", "export", cwd=trained
    )
    assert again.returncode == 2 and "not an empty directory" in again.stderr


def test_csv_html_and_stdin(trained: Path) -> None:
    as_csv = run_cli(
        "predict",
        "--checkpoint",
        str(checkpoint_of(trained)),
        "--input",
        "posts.jsonl",
        "--format",
        "csv",
        "--output",
        "out.csv",
        cwd=trained,
    )
    assert as_csv.returncode == 0, as_csv.stderr
    lines = (trained / "out.csv").read_text().splitlines()
    assert lines[0].startswith("post_id,criterion,probability,present") and len(lines) == 1 + 9 * 4
    page = run_cli(
        "predict",
        "--checkpoint",
        str(checkpoint_of(trained)),
        "--input",
        "posts.jsonl",
        "--format",
        "html",
        "--output",
        "out.html",
        cwd=trained,
    )
    assert page.returncode == 0, page.stderr
    html = (trained / "out.html").read_text()
    assert "&lt;script&gt;" in html and "<script" not in html  # the post, escaped
    assert "http://" not in html and "https://" not in html and "not a diagnostic device" in html
    piped = subprocess.run(
        [
            sys.executable,
            "-m",
            "dataaug_multi_both.cli.predict",
            "--checkpoint",
            str(checkpoint_of(trained)),
            "--input",
            "-",
        ],
        input=json.dumps({"post_id": "s", "text": "tired"}) + "\n",
        capture_output=True,
        text=True,
        cwd=trained,
    )
    assert piped.returncode == 0, piped.stderr
    (line,) = piped.stdout.splitlines()  # stdout carries only records
    assert json.loads(line)["post_id"] == "s"


@pytest.mark.parametrize(
    ("setup", "args", "code", "fragment"),
    [
        (None, ["--input", "missing.jsonl"], 3, "no such file"),
        ("cols.csv", ["--input", "cols.csv"], 2, "columns found: id, body"),
        ("bad.jsonl", ["--input", "bad.jsonl"], 3, "line 2: not valid JSON"),
        (
            None,
            ["--input", "posts.jsonl", "--output", "/nonexistent/dir/out.jsonl"],
            4,
            "cannot write",
        ),
        (None, ["--input", "posts.txt"], 2, "unknown format"),
        ("surrogate.jsonl", ["--input", "surrogate.jsonl"], 3, "not valid Unicode"),
        (None, ["--input", "posts.jsonl", "--output", "."], 2, "is a directory"),
        (None, ["--input", "posts.jsonl", "--threshold", "1.5"], 2, "--threshold"),
    ],
)
def test_errors_end_in_their_exit_code(
    trained: Path, setup: str | None, args: list[str], code: int, fragment: str
) -> None:
    if setup == "cols.csv":
        (trained / "cols.csv").write_text("id,body\n1,hello\n")
    if setup == "surrogate.jsonl":
        (trained / "surrogate.jsonl").write_text('{"text": "\\ud800 lone"}\n')
    if setup == "bad.jsonl":
        (trained / "bad.jsonl").write_text('{"text": "ok"}\n{not json\n')
    result = run_cli("predict", "--checkpoint", str(checkpoint_of(trained)), *args, cwd=trained)
    assert result.returncode == code, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_a_missing_or_corrupted_model_source_is_exit_3(trained: Path) -> None:
    missing = run_cli("predict", "--checkpoint", "nope.pt", "--input", "posts.jsonl", cwd=trained)
    assert missing.returncode == 3 and "no such checkpoint" in missing.stderr
    copy = trained / "corrupt"
    (copy / "checkpoints").mkdir(parents=True)
    source = checkpoint_of(trained)
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "checkpoints" / source.name).write_bytes(bytes(data))
    (copy / "checkpoints" / "manifest.json").write_text(
        (source.parent / "manifest.json").read_text()
    )
    corrupt = run_cli(
        "predict",
        "--checkpoint",
        str(copy / "checkpoints" / source.name),
        "--input",
        "posts.jsonl",
        cwd=trained,
    )
    assert corrupt.returncode == 3 and "SHA256 does not match" in corrupt.stderr
    assert "Traceback" not in corrupt.stderr


def test_a_study_predicts_with_its_best_checkpoint(tmp_path: Path) -> None:
    made = run_cli(
        "hpo",
        "--config",
        HPO_SMALL,
        "--num-trials",
        "1",
        *TINY_STUDY,
        "tracking.backend=none",
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    (study,) = (tmp_path / "experiments").glob("study_*")
    (checkpoint,) = (tmp_path / "experiments").glob("trial_*/checkpoints/epoch_*.pt")
    (tmp_path / "posts.jsonl").write_text(json.dumps({"post_id": "x", "text": "so tired"}) + "\n")
    evaluated = run_cli("evaluate_study", "--study-dir", str(study), cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    exported = run_cli("export", "--study-dir", str(study), "--output", "card", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    card = (tmp_path / "card" / "README.md").read_text()
    report = json.loads((study / "evaluation_report.json").read_text())
    posts = report["test_split"]["posts"]
    assert f"On the held-out test split: {posts} posts" in card
    assert "| metric | value | 95% CI | all_absent |" in card  # next to the baselines
    assert "test/criteria_matcher/f1" in card and "not a diagnostic device" in card
    same(
        records(tmp_path, "--study-dir", str(study)),
        records(tmp_path, "--checkpoint", str(checkpoint)),
    )


def test_export_logs_to_the_trials_run_and_registers_it(tmp_path: Path) -> None:
    args = [a for a in TINY if a != "tracking.backend=none"]
    trained = run_cli("train", *args, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    exported = run_cli(
        "export",
        "--checkpoint",
        str(checkpoint_of(tmp_path)),
        "--output",
        "shared",
        "--register",
        "redsm5-tiny",
        cwd=tmp_path,
    )
    assert exported.returncode == 0, exported.stderr
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'experiments' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("dataaug-multi-both").experiment_id])
    files = {a.path for a in client.list_artifacts(run.info.run_id, "export")}
    assert {"export/heads.safetensors", "export/dataaug_config.json", "export/README.md"} <= files
    (version,) = client.search_model_versions("name='redsm5-tiny'")
    assert version.run_id == run.info.run_id


def test_a_planted_export_runs_no_code_and_a_fifo_does_not_hang(trained: Path) -> None:
    import os
    import shutil

    exported = run_cli(
        "export", "--checkpoint", str(checkpoint_of(trained)), "--output", "planted", cwd=trained
    )
    assert exported.returncode == 0, exported.stderr
    planted = trained / "planted"
    config = json.loads((planted / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "evil.EvilModel", "AutoConfig": "evil.EvilConfig"}
    (planted / "config.json").write_text(json.dumps(config))
    marker = trained / "PWNED"
    (planted / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "dataaug_multi_both.cli.predict",
            "--model-dir",
            "planted",
            "--input",
            "-",
        ],
        input="y\n" + json.dumps({"text": "hello"}) + "\n",
        capture_output=True,
        text=True,
        cwd=trained,
        timeout=120,
    )
    assert not marker.exists()  # the planted code never ran, whatever stdin said
    assert run.returncode == 3 and "Traceback" not in run.stderr, run.stderr
    fifo = trained / "fifo-export"
    shutil.copytree(planted, fifo)  # the FIFO is refused before anything is loaded
    (fifo / "heads.safetensors").unlink()
    os.mkfifo(fifo / "heads.safetensors")
    hung = run_cli(
        "predict", "--model-dir", str(fifo), "--input", "posts.jsonl", cwd=trained, timeout=120
    )
    assert hung.returncode == 3 and "regular files only" in hung.stderr


def test_export_refuses_a_run_whose_artifacts_live_elsewhere(tmp_path: Path) -> None:
    import sqlite3

    args = [a for a in TINY if a != "tracking.backend=none"]
    assert run_cli("train", *args, cwd=tmp_path).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    with sqlite3.connect(tmp_path / "experiments" / "mlflow.db") as db:
        db.execute("UPDATE runs SET artifact_uri = ?", (elsewhere.as_uri(),))
    exported = run_cli(
        "export",
        "--checkpoint",
        str(checkpoint_of(tmp_path)),
        "--output",
        "shared",
        "--mlflow",
        cwd=tmp_path,
    )
    assert exported.returncode == 5 and "refusing to upload" in exported.stderr
    assert not elsewhere.exists()
