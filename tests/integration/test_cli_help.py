"""A CLI that helps (issue 19): console scripts, --version, did-you-mean for unknown keys,
search-space entries from the command line, --print-config, --validate-only, the notice
when ./configs shadows the bundled file, dataset paths, the local Hub cache offline, a
doc_stride that follows max_length, and the offline check of the study's models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import HPO_SMALL, TINY, TINY_STUDY, Completed, read_jsonl, run_cli

pytestmark = pytest.mark.integration

COMMANDS = [
    "train",
    "hpo",
    "evaluate-study",
    "cleanup",
    "list-studies",
    "list-checkpoints",
    "predict",
    "export",
]


def script(name: str) -> str:
    """A console script installed next to this interpreter (`pip install -e .`)."""
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        pytest.skip(f"{name} is not installed: run `pip install -e .`")
    return str(path)


def run_script(name: str, *args: str, cwd: Path) -> Completed:
    proc = subprocess.run(
        [script(name), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    return Completed(proc.returncode, proc.stdout, proc.stderr)


def test_every_console_script_prints_the_installed_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    expected = f"dataaug-multi-both {version('dataaug-multi-both')}"
    for name in ["dataaug", *(f"dataaug-{c}" for c in COMMANDS)]:
        result = run_script(name, "--version", cwd=tmp_path)
        assert (result.returncode, result.stdout.strip()) == (0, expected), name


def test_the_dispatcher_lists_and_runs_the_commands(tmp_path: Path) -> None:
    listing = run_script("dataaug", "--help", cwd=tmp_path)
    assert listing.returncode == 0
    for command in COMMANDS:
        assert f"\n  {command} " in listing.stdout
    help_text = run_script("dataaug", "list-studies", "--help", cwd=tmp_path)
    assert help_text.returncode == 0 and help_text.stdout.startswith("usage: dataaug list-studies")
    (tmp_path / "experiments").mkdir()
    listed = run_script("dataaug", "list-studies", "--format", "json", cwd=tmp_path)
    assert (listed.returncode, listed.stdout.strip()) == (0, "[]")
    unknown = run_script("dataaug", "trian", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown command 'trian'" in unknown.stderr


def test_the_contract_module_form_keeps_its_name(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dataaug_multi_both.cli.train", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: python -m dataaug_multi_both.cli.train")
    assert "--version" in proc.stdout


def test_unknown_override_suggests_the_key_meant(tmp_path: Path) -> None:
    result = run_cli("train", *TINY, "trainer.lr=1e-4", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: unknown configuration key trainer.lr (did you mean trainer.learning_rate?)"
    )
    config = tmp_path / "mine.yaml"
    config.write_text("defaults:\n  - train\n  - _self_\ntrainer:\n  lr: 0.001\n")
    in_file = run_cli("train", "--config", str(config), *TINY, cwd=tmp_path)
    assert in_file.returncode == 2 and "did you mean trainer.learning_rate?" in in_file.stderr
    hpo = run_cli("hpo", "study.num_trails=3", cwd=tmp_path)
    assert hpo.returncode == 2 and "did you mean study.num_trials?" in hpo.stderr
    assert not (tmp_path / "experiments").exists()


def test_search_space_entry_from_the_command_line(tmp_path: Path) -> None:
    result = run_cli(
        "hpo",
        "--config",
        HPO_SMALL,
        "--num-trials",
        "1",
        *TINY_STUDY,
        "tracking.backend=none",
        "+search_space.trainer.weight_decay={type: uniform, low: 0.0, high: 0.1}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (study_dir,) = (tmp_path / "experiments").glob("study_*")
    (end,) = [e for e in read_jsonl(study_dir / "logs" / "hpo.jsonl") if e["event"] == "trial_end"]
    assert 0.0 <= end["params"]["trainer.weight_decay"] <= 0.1
    trial_config = yaml.safe_load(
        (tmp_path / "experiments" / end["trial_id"] / "config.yaml").read_text()
    )
    assert trial_config["trainer"]["weight_decay"] == end["params"]["trainer.weight_decay"]
    without_plus = run_cli(
        "hpo", "search_space.trainer.weight_decay={type: uniform, low: 0, high: 1}", cwd=tmp_path
    )
    assert without_plus.returncode == 2 and "with a leading +" in without_plus.stderr


def test_print_config_shows_the_resolved_config_masked_and_does_nothing_else(
    tmp_path: Path,
) -> None:
    result = run_cli(
        "train",
        *TINY,
        "--print-config",
        "trainer.max_epochs=3",
        "tracking.mlflow_tracking_uri=https://alice:s3cret@mlflow.example:5000",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["model"]["model_id"] == "tiny-bert" and shown["trainer"]["max_epochs"] == 3
    assert shown["tracking"]["mlflow_tracking_uri"] == "https://alice:***@mlflow.example:5000"
    assert "s3cret" not in result.stdout + result.stderr
    hpo = run_cli(
        "hpo",
        "--print-config",
        "study.storage=postgresql://bob:pw123@db.example/optuna",
        "+search_space.trainer.weight_decay={type: uniform, low: 0.0, high: 0.1}",
        cwd=tmp_path,
    )
    assert hpo.returncode == 0, hpo.stderr
    study = yaml.safe_load(hpo.stdout)
    assert study["study"]["storage"] == "postgresql://bob:***@db.example/optuna"
    assert study["search_space"]["trainer.weight_decay"]["high"] == 0.1
    assert "pw123" not in hpo.stdout + hpo.stderr
    from_env = run_cli(
        "hpo",
        "--print-config",
        cwd=tmp_path,
        env={"DATAAUG_STUDY_STORAGE": "postgresql://carol:hunter2@db.example/optuna"},
    )
    assert from_env.returncode == 0, from_env.stderr
    assert yaml.safe_load(from_env.stdout)["study"]["storage"] is None  # stdout stays YAML
    assert "$DATAAUG_STUDY_STORAGE (postgresql://carol:***@db.example/optuna)" in from_env.stderr
    assert "hunter2" not in from_env.stdout + from_env.stderr
    assert list(tmp_path.iterdir()) == []  # no experiments/, no MLflow store, nothing


def test_validate_only_loads_everything_and_writes_nothing(tmp_path: Path) -> None:
    result = run_cli(
        "train", *TINY, "--validate-only", "dataset.synthetic_num_posts=30", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "model tiny-bert, " in result.stdout and "M parameters, device cpu" in result.stdout
    assert "(embedded: randomly initialised" in result.stdout
    assert "splits (posts/pairs/windows): train " in result.stdout
    assert "nothing was trained or written" in result.stdout
    assert list(tmp_path.iterdir()) == []
    missing_model = run_cli(
        "train", "--model", "./no-model", "--dataset", "synthetic", "--validate-only", cwd=tmp_path
    )
    assert missing_model.returncode == 3 and "model directory not found" in missing_model.stderr
    bad_value = run_cli("train", *TINY, "--validate-only", "trainer.batch_size=0", cwd=tmp_path)
    assert bad_value.returncode == 2
    assert list(tmp_path.iterdir()) == []


def test_a_local_configs_file_that_shadows_the_bundled_one_is_named(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "train.yaml").write_text("trainer:\n  max_epochs: 3\n")
    result = run_cli("train", "--print-config", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr.strip() == (
        f"note: loading {tmp_path.resolve() / 'configs' / 'train.yaml'} (./configs/train.yaml), "
        "not the bundled train.yaml"
    )
    assert yaml.safe_load(result.stdout)["trainer"]["max_epochs"] == 3
    explicit = run_cli("train", "--config", "configs/train.yaml", "--print-config", cwd=tmp_path)
    assert explicit.returncode == 0 and explicit.stderr == ""
    # `defaults: [train]` in ./configs/train.yaml names itself: a message, not a RecursionError
    (tmp_path / "configs" / "train.yaml").write_text("defaults:\n  - train\n  - _self_\n")
    looping = run_cli("train", "--print-config", cwd=tmp_path)
    assert looping.returncode == 2 and "lists itself in its defaults" in looping.stderr
    assert "Traceback" not in looping.stderr


def hub_cache(hf_home: Path, repo_id: str, files: dict[str, bytes]) -> None:
    """A dataset repository in the Hugging Face cache as huggingface_hub lays it out after a
    download: content-addressed blobs, a snapshot of relative links, refs/main -> commit."""
    import hashlib

    repo = hf_home / "hub" / f"datasets--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    for name, content in files.items():
        blob = hashlib.sha256(content).hexdigest()
        (repo / "blobs" / blob).write_bytes(content)
        (repo / "snapshots" / commit / name).symlink_to(Path("..", "..", "blobs", blob))


def synthetic_csvs(num_posts: int) -> dict[str, bytes]:
    from dataaug_multi_both.data.synthetic import generate_tables

    posts, annotations = generate_tables(num_posts=num_posts, seed=7)
    return {
        "redsm5_posts.csv": posts.to_csv(index=False).encode(),
        "redsm5_annotations.csv": annotations.to_csv(index=False).encode(),
    }


def test_a_hub_dataset_in_the_local_cache_loads_offline(tmp_path: Path) -> None:
    hf_home = tmp_path / "hf"
    hub_cache(hf_home, "someone/redsm5-copy", synthetic_csvs(30))
    work = tmp_path / "work"
    work.mkdir()
    offline = {"HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"), "HF_HUB_OFFLINE": "1"}
    result = run_cli(
        "train",
        "--model",
        "tiny-bert",
        "--dataset",
        "someone/redsm5-copy",
        "--validate-only",
        cwd=work,
        env=offline,
    )
    assert result.returncode == 0, result.stderr
    assert "splits (posts/pairs/windows): train " in result.stdout
    # not in the cache: the one-line Hub message, exit 3
    missing = run_cli(
        "train",
        "--model",
        "tiny-bert",
        "--dataset",
        "someone/other",
        "--validate-only",
        cwd=work,
        env=offline,
    )
    assert missing.returncode == 3 and "cannot reach the Hugging Face Hub" in missing.stderr
    assert "local Hugging Face cache has no redsm5_posts.csv" in missing.stderr


@pytest.mark.parametrize("dataset", ["./missing", "data/missing", "a/b/c", "../x"])
def test_a_dataset_path_that_does_not_exist_is_no_such_directory(
    tmp_path: Path, dataset: str
) -> None:
    (tmp_path / "data").mkdir()  # ./data exists: data/missing is a path, not owner/name
    result = run_cli(
        "train", "--model", "tiny-bert", "--dataset", dataset, "--validate-only", cwd=tmp_path
    )
    assert result.returncode == 3
    assert result.stderr.startswith(f"error: no such directory: {dataset};")
    assert "Hugging Face Hub" not in result.stderr


def test_max_length_alone_sets_a_stride_that_follows_it(tmp_path: Path) -> None:
    shown = run_cli("train", *TINY, "--print-config", "dataset.max_length=128", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert yaml.safe_load(shown.stdout)["dataset"]["doc_stride"] == 32
    result = run_cli(
        "train",
        *TINY,
        "--validate-only",
        "dataset.max_length=64",
        "dataset.synthetic_num_posts=30",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr  # refused before: the old default 64 > 64 // 2
    assert "splits (posts/pairs/windows)" in result.stdout


def test_the_default_study_offline_stops_before_any_trial(tmp_path: Path) -> None:
    result = run_cli("hpo", cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 3
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: the Hugging Face Hub is unreachable")
    assert "psychbert (mnaylor/psychbert-cased)" in line and "minilm and tiny-bert" in line
    assert "'search_space.model_id.choices=[minilm,tiny-bert]'" in line
    assert not (tmp_path / "experiments").exists()  # no study, no trial


def test_a_hub_model_in_the_local_cache_passes_the_offline_check(tmp_path: Path) -> None:
    """In the cache (config.json only here): the study starts; the trial then fails on the
    missing weights, which proves the check let it through."""
    hf_home = tmp_path / "hf"
    snapshot = hf_home / "hub" / "models--owner--cached-bert" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"model_type": "bert"}')
    (hf_home / "hub" / "models--owner--cached-bert" / "refs").mkdir()
    (hf_home / "hub" / "models--owner--cached-bert" / "refs" / "main").write_text("a" * 40)
    env = {"HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"), "HF_HUB_OFFLINE": "1"}
    result = run_cli(
        "hpo",
        "--config",
        HPO_SMALL,
        "--num-trials",
        "1",
        *TINY_STUDY,
        "search_space.model_id.choices=[owner/cached-bert]",
        "tracking.backend=none",
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 1, result.stderr  # the trial failed, the study ran
    assert "1 trial(s) failed: trial 0: cannot load model 'owner/cached-bert'" in result.stderr
    assert "study's model(s)" not in result.stderr
