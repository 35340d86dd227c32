"""A real study on a real PostgreSQL whose password holds `/ ? # @ :`: the password is in
none of the files the study writes nor in what it prints, and study.json's config_hash is
not a hash of the config with the password in it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import HPO_SMALL, TINY_STUDY, PostgresServer, run_cli

pytestmark = pytest.mark.integration

PASSWORD = "p/a?s#s@w:rd"  # trust auth on the throwaway cluster: any password is accepted
# (userinfo, query, the password as written there): SQLAlchemy reads `/ ? # :` unencoded in
# the userinfo; an `@` there, and anything in a query value, must be percent-encoded
FORMS = {
    "userinfo, @ encoded": ("postgres:p/a?s#s%40w:rd@", "", "p/a?s#s%40w:rd"),
    "userinfo, all encoded": ("postgres:p%2Fa%3Fs%23s%40w%3Ard@", "", "p%2Fa%3Fs%23s%40w%3Ard"),
    "query parameter": (
        "postgres@",
        "?password=p%2Fa%3Fs%23s%40w%3Ard",
        "p%2Fa%3Fs%23s%40w%3Ard",
    ),
}


def fingerprint(data: dict) -> str:  # config.compose.config_fingerprint, spelled out
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def leaks(secrets: list[str], experiments: Path, *outputs: str) -> list[str]:
    """Where any of `secrets` appears: an output's index, or a file under `experiments`
    (every file, the Optuna-free ones included: checkpoints, logs, plots, configs)."""
    found = [f"output {i}" for i, text in enumerate(outputs) if any(s in text for s in secrets)]
    for path in experiments.rglob("*"):
        if path.is_file() and any(s.encode() in path.read_bytes() for s in secrets):
            found.append(str(path))
    return found


@pytest.mark.parametrize("form", FORMS)
def test_the_storage_password_stays_secret(
    postgres: PostgresServer, tmp_path: Path, form: str
) -> None:
    userinfo, query, as_written = FORMS[form]
    url = f"postgresql://{userinfo}127.0.0.1:{postgres.port}/optuna{query}"
    secrets = [PASSWORD, as_written, "p/a?s", "p%2Fa"]  # whole, and its start in both spellings
    result = run_cli(
        "hpo",
        "--config",
        HPO_SMALL,
        "--study-name",
        "secret",
        "--num-trials",
        "1",
        *TINY_STUDY,
        "tracking.backend=none",
        f"study.storage='{url}'",  # quoted: Hydra's grammar has no unquoted ? # @
        cwd=tmp_path,
        env={"DATAAUG_STUDY_STORAGE": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    experiments = tmp_path / "experiments"
    study_dir = next(experiments.glob("study_*"))
    for name in ("study.json", "config.yaml", "logs/hpo.jsonl"):
        assert (study_dir / name).is_file(), name
    assert not leaks(secrets, experiments, result.stdout, result.stderr)

    record = json.loads((study_dir / "study.json").read_text())
    assert (
        record["storage"].startswith("postgresql+psycopg2://postgres")
        and "***" in record["storage"]
    )
    assert f"storage {record['storage']}" in " ".join(result.stdout.split())  # as rich wraps
    written = yaml.safe_load((study_dir / "config.yaml").read_text())
    assert "***" in written["study"]["storage"]
    assert record["config_hash"] == fingerprint(written)  # the config as config.yaml shows it
    assert record["config_hash"] != fingerprint(
        {**written, "study": {**written["study"], "storage": url}}
    )

    # a resume reads config.yaml's redacted URL: it asks for the real one instead of
    # connecting with `***`, and takes it from $DATAAUG_STUDY_STORAGE
    refused = run_cli(
        "hpo", "--resume-study", "secret", cwd=tmp_path, env={"DATAAUG_STUDY_STORAGE": ""}
    )
    assert refused.returncode == 3 and "DATAAUG_STUDY_STORAGE" in refused.stderr, refused.stderr
    resumed = run_cli(
        "hpo", "--resume-study", "secret", cwd=tmp_path, env={"DATAAUG_STUDY_STORAGE": url}
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not leaks(secrets, experiments, refused.stderr, resumed.stdout, resumed.stderr)
    assert (
        json.loads((study_dir / "study.json").read_text())["config_hash"] == record["config_hash"]
    )
