from __future__ import annotations

from pathlib import Path

import pytest

from dataaug_multi_both.config.compose import shadowing_note


def test_no_note_for_the_bundled_file_or_an_explicit_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert shadowing_note(None, "train.yaml") is None
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "train.yaml").write_text("trainer:\n  max_epochs: 3\n")
    assert shadowing_note("configs/train.yaml", "train.yaml") is None
    note = shadowing_note(None, "train.yaml")
    assert note is not None and note.startswith(f"note: loading {tmp_path.resolve()}")
    assert shadowing_note(None, "hpo.yaml") is None


def test_a_checkout_whose_configs_links_to_the_bundled_ones_is_not_shadowing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataaug_multi_both.config.compose import bundled_config_path

    (tmp_path / "configs").symlink_to(bundled_config_path("train.yaml").parent)
    monkeypatch.chdir(tmp_path)
    assert shadowing_note(None, "train.yaml") is None
