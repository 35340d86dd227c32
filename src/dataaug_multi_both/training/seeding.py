"""Seeds and RNG states (python, numpy, torch, CUDA) as plain, `weights_only`-loadable data."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from dataaug_multi_both.config.schema import SeedsConfig


def seed_everything(seeds: SeedsConfig) -> None:
    assert seeds.python is not None and seeds.numpy is not None and seeds.torch is not None
    random.seed(seeds.python)
    np.random.seed(seeds.numpy)
    torch.manual_seed(seeds.torch)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(
            seeds.torch_cuda if seeds.torch_cuda is not None else seeds.torch
        )


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of epoch `epoch`'s data order: a pure function of (seed, epoch), so a
    resumed run sees exactly the order an uninterrupted one would."""
    generator = torch.Generator()
    generator.manual_seed(seed * 100_003 + epoch)
    return generator


def capture_rng_state() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    captured: dict[str, Any] = {
        "python": {
            "version": version,
            "state": torch.tensor(state, dtype=torch.int64),
            "gauss": gauss,
        },
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        captured["cuda"] = torch.cuda.get_rng_state_all()
    return captured


def restore_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
