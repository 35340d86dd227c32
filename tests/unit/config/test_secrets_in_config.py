"""Secrets in a configuration: masked in error messages, redacted where it is written."""

from __future__ import annotations

import pytest

from dataaug_multi_both.config.public import public_config
from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.errors import ConfigError

PASSWORD = "hunter2-p/a?s#s"


@pytest.mark.parametrize(
    "tracking",
    [
        {"mlflow_tracking_uri": {"url": f"https://alice:{PASSWORD}@mlflow.example"}},
        {"mlflow_tracking_uri": [f"https://alice:{PASSWORD}@mlflow.example"]},
        {"max_retries": f"postgresql://bob:{PASSWORD}@db/x"},
        {"experiment_name": 7, "vault_addr": f"https://u:{PASSWORD}@vault"},
    ],
)
def test_config_errors_never_echo_a_password(tracking: dict) -> None:
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({"tracking": tracking})
    assert PASSWORD not in caught.value.message and "hunter2" not in caught.value.message


def test_a_huge_integer_is_a_config_error_not_an_overflow() -> None:
    with pytest.raises(ConfigError, match="trainer.learning_rate: too large"):
        TrainConfig.from_dict({"trainer": {"learning_rate": 10**400}})


def test_public_config_redacts_every_secret_bearing_url() -> None:
    data = {
        "tracking": {
            "mlflow_tracking_uri": f"https://alice:{PASSWORD}@mlflow.example/",
            "vault_addr": "https://vault.example",
        },
        "study": {"storage": f"postgresql://bob@db/optuna?password={PASSWORD}"},
        "trainer": {"batch_size": 8},
    }
    public = public_config(data)
    assert "hunter2" not in repr(public)
    assert public["tracking"]["mlflow_tracking_uri"].startswith("https://alice:***@mlflow.example")
    assert public["tracking"]["vault_addr"] == "https://vault.example"
    assert public["trainer"] == {"batch_size": 8}
    assert "hunter2" in repr(data)  # the input is not changed
