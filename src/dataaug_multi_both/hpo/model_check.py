"""Before the first trial: can every model the study may sample be loaded?

A Hub model that is not in the local Hugging Face cache needs the Hub; on a compute node
without internet (or with HF_HUB_OFFLINE=1) every trial that samples it would fail, so the
study stops at once with the offline alternatives (exit 3, as a model that cannot be loaded).
The only network access is `hub_reachable`'s TCP probe of the configured endpoint
(HF_ENDPOINT), and only when some model needs it.
"""

from __future__ import annotations

from collections.abc import Callable

from dataaug_multi_both.errors import DataLoadError
from dataaug_multi_both.hpo.config import HpoConfig
from dataaug_multi_both.model.encoder import MINILM, TINY_BERT, EncoderSource, resolve_model_id

MODEL_PATH = "model.model_id"


def study_model_ids(hpo: HpoConfig) -> tuple[list[str], bool]:
    """The model ids trials may use, and whether the search space chooses among them."""
    for spec in hpo.search_space:
        if spec.path == MODEL_PATH and spec.kind == "categorical":
            return [str(choice) for choice in spec.choices], True
    return [hpo.train.model.model_id], False


def models_needing_the_hub(
    model_ids: list[str], revision: str | None, in_cache: Callable[[str, str | None], bool]
) -> list[EncoderSource]:
    """The Hub models among `model_ids` that the local cache does not hold (a local
    directory that does not exist is a DataLoadError here, as in a trial)."""
    sources = [resolve_model_id(model_id) for model_id in dict.fromkeys(model_ids)]
    return [s for s in sources if s.kind == "hub" and not in_cache(s.resolved, revision)]


def in_hugging_face_cache(repo_id: str, revision: str | None) -> bool:
    """Whether the local Hugging Face cache holds the model's config.json (no network)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except Exception:  # an id the cache cannot hold: the trial will say what is wrong
        return False
    return isinstance(found, str)


def offline_message(missing: list[EncoderSource], searched: bool) -> str:
    names = ", ".join(
        s.model_id if s.model_id == s.resolved else f"{s.model_id} ({s.resolved})" for s in missing
    )
    override = (
        f"'search_space.model_id.choices=[{MINILM},{TINY_BERT}]'"
        if searched
        else f"model.model_id={MINILM}"
    )
    return (
        f"the Hugging Face Hub is unreachable (no network or HF_HUB_OFFLINE is set) and the "
        f"study's model(s) {names} are not in the local cache, so every trial using them "
        f"would fail; offline, use the embedded models {MINILM} and {TINY_BERT} or a local "
        f"model directory, e.g. {override}"
    )


def require_loadable_models(
    hpo: HpoConfig,
    in_cache: Callable[[str, str | None], bool] = in_hugging_face_cache,
    reachable: Callable[[], bool] | None = None,
) -> None:
    """DataLoadError (hpo exit 3) naming the alternatives when a model the study may sample
    needs the Hub and the Hub cannot be reached."""
    model_ids, searched = study_model_ids(hpo)
    missing = models_needing_the_hub(model_ids, hpo.train.model.revision, in_cache)
    if not missing:
        return
    if reachable is None:
        from dataaug_multi_both.data.sources import hub_reachable

        reachable = hub_reachable
    if not reachable():
        raise DataLoadError(offline_message(missing, searched))
