"""Random values thrown at the config validator and the search-space parser: they accept or
raise ConfigError (exit 2); nothing else escapes."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaug_multi_both.config.schema import TrainConfig
from dataaug_multi_both.errors import ConfigError
from dataaug_multi_both.hpo.search_space import parse_search_space

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
SECTIONS = ("model", "dataset", "trainer", "retention", "tracking", "seeds", "output")
KEYS = (
    "model_id",
    "batch_size",
    "learning_rate",
    "max_epochs",
    "keep_best_k",
    "max_length",
    "doc_stride",
    "split_ratios",
    "mlflow_tracking_uri",
    "python",
    "trial_id",
    "task_weights",
    "precision",
    "unknown",
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(SECTIONS),
        st.dictionaries(st.sampled_from(KEYS), values, max_size=4),
        max_size=4,
    )
)
def test_config_validator_accepts_or_exits_2(data: dict[str, Any]) -> None:
    try:
        TrainConfig.from_dict(data)
    except ConfigError as exc:
        assert exc.exit_code == 2 and exc.message


entries = st.dictionaries(
    st.sampled_from(("type", "low", "high", "step", "log", "choices", "extra")),
    st.one_of(values, st.sampled_from(("categorical", "uniform", "loguniform", "int", "normal"))),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ("learning_rate", "batch_size", "model_id", "trainer.weight_decay", "nope")
        ),
        st.one_of(entries, values),
        max_size=4,
    )
)
def test_search_space_parser_accepts_or_exits_2(space: dict[str, Any]) -> None:
    try:
        specs = parse_search_space(space)
    except ConfigError as exc:
        assert exc.exit_code == 2 and exc.message
    else:
        for spec in specs:
            if spec.kind in ("uniform", "loguniform", "int"):
                assert spec.low is not None and spec.high is not None and spec.low < spec.high


def _field_values(hint: Any) -> st.SearchStrategy[Any]:
    """Values of a schema field's own type, around and beyond its valid range."""
    text = str(hint)
    if "bool" in text:
        return st.booleans()
    if "list" in text:
        return st.lists(st.floats(-1, 2, allow_nan=False), min_size=0, max_size=4)
    numbers: list[st.SearchStrategy[Any]] = []
    if "int" in text:
        numbers.append(st.integers(min_value=-3, max_value=2**33))
    if "float" in text:
        numbers.append(st.floats(min_value=-2.0, max_value=2e6) | st.just(float("nan")))
    if "str" in text:
        numbers.append(st.sampled_from(("", "auto", "tuned", "cuda:0", "bf16", "mean", "x")))
    if "None" in text:
        numbers.append(st.none())
    return st.one_of(*numbers) if numbers else st.none()


def _section(cls: type) -> st.SearchStrategy[dict[str, Any]]:
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    plain = {
        f.name: _field_values(hints[f.name])
        for f in dataclasses.fields(cls)
        if not dataclasses.is_dataclass(hints[f.name])
    }
    return st.fixed_dictionaries({}, optional=plain)


def _typed_configs() -> st.SearchStrategy[dict[str, Any]]:
    import dataclasses
    import typing

    hints = typing.get_type_hints(TrainConfig)
    return st.fixed_dictionaries(
        {}, optional={f.name: _section(hints[f.name]) for f in dataclasses.fields(TrainConfig)}
    )


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_typed_configs())
def test_well_typed_values_reach_the_range_checks(data: dict[str, Any]) -> None:
    """Every key known and of its type: the only way to fail is a range or consistency
    check, whose message names the section and key; an accepted config round-trips."""
    try:
        config = TrainConfig.from_dict(data)
    except ConfigError as exc:
        assert exc.exit_code == 2
        assert any(f"{section}." in exc.message for section in data), exc.message
    else:
        assert TrainConfig.from_dict(config.to_dict()) == config
