"""Which dataset ids mean a local directory (docs/cli.md, "Dataset ids")."""

from __future__ import annotations

import pytest

from dataaug_multi_both.data.sources import looks_like_path


def no_local_dirs(part: str) -> bool:
    return False


@pytest.mark.parametrize(
    "dataset_id",
    ["/abs/data", "./data", "../data", "~/data", "data/", "a/b/c", "my data", r"data\redsm5"],
)
def test_path_forms(dataset_id: str) -> None:
    assert looks_like_path(dataset_id, no_local_dirs)


@pytest.mark.parametrize("dataset_id", ["irlab-udc/redsm5", "redsm5", "owner/name.v2", "a_b/c-d"])
def test_hub_ids(dataset_id: str) -> None:
    assert not looks_like_path(dataset_id, no_local_dirs)


def test_owner_name_whose_owner_is_a_local_directory_is_a_path() -> None:
    assert looks_like_path("data/redsm5", lambda part: part == "data")
    assert not looks_like_path("irlab-udc/redsm5", lambda part: part == "data")
    assert not looks_like_path("data", lambda part: True)  # one word: a Hub id


def test_ids_a_hub_repository_cannot_have_are_paths() -> None:
    for dataset_id in ("a--b/c", "a/b..c", "-a/b"):
        assert looks_like_path(dataset_id, no_local_dirs)


@pytest.mark.parametrize(
    ("variables", "offline"),
    [
        ({"HF_HUB_OFFLINE": "1"}, True),
        ({"HF_HUB_OFFLINE": "ON"}, True),
        ({"HF_HUB_OFFLINE": "true"}, True),
        ({"TRANSFORMERS_OFFLINE": "yes"}, True),
        ({"HF_HUB_OFFLINE": "0"}, False),
        ({}, False),
    ],
)
def test_offline_mode_is_read_as_huggingface_hub_reads_it(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], offline: bool
) -> None:
    """Offline, the Hub endpoint is never contacted (not even the reachability probe)."""
    from dataaug_multi_both.data.sources import hub_offline, hub_reachable

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert hub_offline() is offline
    if offline:
        monkeypatch.setattr("socket.create_connection", lambda *a, **k: pytest.fail("probed"))
        assert hub_reachable() is False
