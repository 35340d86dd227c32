"""Predictions on new posts use the windows and the aggregation of training and evaluation,
and give evidence as character offsets into the post as given."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dataaug_multi_both.data.criteria import criteria_for
from dataaug_multi_both.model.heads import DualHeadOutput
from dataaug_multi_both.serving.model_source import LoadedModel
from dataaug_multi_both.serving.predictor import Post, Predictor
from dataaug_multi_both.training.thresholds import fixed_threshold

CRITERIA = criteria_for(9)


class PointsAtAWord(nn.Module):
    """A stand-in for the dual-head model whose evidence head points at every occurrence of
    one token (start and end on it) and whose matcher says 0 (probability 0.5) everywhere:
    what the offsets and windows do with a span is then known in advance."""

    def __init__(self, token_id: int) -> None:
        super().__init__()
        self.token_id = token_id
        self.weight = nn.Parameter(torch.zeros(1))  # a parameter, for .to(device)

    def forward(self, input_ids: torch.Tensor, span_mask: torch.Tensor, **_: Any) -> DualHeadOutput:
        hits = ((input_ids == self.token_id) & span_mask).float() * 10.0
        return DualHeadOutput(torch.zeros(input_ids.shape[0]), hits, hits.clone())


def loaded(model: nn.Module, tokenizer: Any) -> LoadedModel:
    return LoadedModel(
        model=model,  # type: ignore[arg-type]
        tokenizer=tokenizer,
        criteria=CRITERIA,
        max_length=64,
        doc_stride=16,
        max_answer_tokens=30,
        threshold=fixed_threshold(0.4, len(CRITERIA)),
        pooling="mean",
        base_model="test",
        source="test",
    )


def test_evidence_offsets_index_the_post_as_given_past_the_first_window(tokenizer: Any) -> None:
    (zebra,) = tokenizer("zebra", add_special_tokens=False)["input_ids"]
    filler = "I can\u2019t sleep \U0001f61e and \u201cnothing\u201d helps, caf\u00e9 nights. " * 8
    posts = [
        Post("curly", filler + "A zebra appears."),
        Post("plain", "no animals here at all"),
        Post("empty", ""),
    ]
    predictor = Predictor(loaded(PointsAtAWord(zebra), tokenizer), torch.device("cpu"), 8)
    assert len(tokenizer(filler)["input_ids"]) > 64  # the word lies past the first window
    records = {r["post_id"]: r for r in predictor.records(posts)}
    for entry in records["curly"]["criteria"]:
        evidence = entry["evidence"]
        assert entry["present"] and evidence["text"] == "zebra"
        assert posts[0].text[evidence["start"] : evidence["end"]] == "zebra"
        assert evidence["start"] == posts[0].text.index("zebra") and evidence["score"] == 20.0
    assert all(e["present"] and e["evidence"] is None for e in records["plain"]["criteria"])
    # an empty post: a record with every criterion absent, not a crash
    assert not any(e["present"] for e in records["empty"]["criteria"])


def test_predictions_equal_those_of_evaluation_on_the_same_posts(tokenizer: Any) -> None:
    """The test split of the synthetic data through `predict` (as evaluate_study runs it) and
    through the Predictor, chunked differently: the same probabilities."""
    from dataaug_multi_both.config.schema import DatasetConfig
    from dataaug_multi_both.data.pipeline import prepare_data
    from dataaug_multi_both.model.encoder import load_encoder, resolve_model_id
    from dataaug_multi_both.model.heads import DualHeadModel
    from dataaug_multi_both.training.inference import predict

    torch.manual_seed(0)
    model = DualHeadModel(load_encoder(resolve_model_id("tiny-bert"), "main"), 0.1).eval()
    config = DatasetConfig(
        dataset_id="synthetic", synthetic_num_posts=40, max_length=64, doc_stride=16
    )
    data = prepare_data(config, 9, tokenizer, None)
    test = data.tables["test"]
    expected = predict(model, data.builder, test, data.pairs, torch.device("cpu"), 16, 30)
    posts = [Post(data.pairs.post_ids[i], data.pairs.texts[i]) for i in expected.post_indices]
    predictor = Predictor(loaded(model, tokenizer), torch.device("cpu"), 5)
    got = [r for i in range(0, len(posts), 3) for r in predictor.records(posts[i : i + 3])]
    probabilities = np.array([[e["probability"] for e in r["criteria"]] for r in got])
    assert np.allclose(probabilities, 1 / (1 + np.exp(-expected.logits)), atol=1e-6)
