"""Optuna's own per-trial cost on a finished study, to tell it apart from ours in the
study-scale curves (docs/benchmarks.md, "Study scale"):

    python benchmarks/optuna_scale.py EXPERIMENTS_DIR   # e.g. study_scale.py --keep DIR, DIR/experiments

TPE's ask() with the study's search space on the first 100 and the first 1,000 finished
trials (in-memory copies), and the uncached RDB storage's get_all_trials() on the study's
SQLite database. Prints one JSON line.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)
study_dir = next(Path(sys.argv[1]).glob("study_*"))
record = json.loads((study_dir / "study.json").read_text())
url = f"sqlite:///{study_dir}/optuna_study.db"
source = optuna.load_study(study_name=record["name"], storage=url)
done = [t for t in source.get_trials(deepcopy=False) if t.state.is_finished()]
out = {}
for n in (100, 1000):
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=42))
    for t in done[:n]:
        study.add_trial(t)
    asks = []
    for _ in range(15):
        started = time.perf_counter()
        trial = study.ask()
        for p, dist in done[0].distributions.items():
            trial._suggest(p, dist)
        asks.append(time.perf_counter() - started)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    out[f"tpe_sample_sec_at_{n}"] = round(statistics.median(asks), 4)
storage = optuna.storages.RDBStorage(url)
sid = storage.get_study_id_from_name(record["name"])
reads = []
for _ in range(5):
    started = time.perf_counter()
    storage.get_all_trials(sid, deepcopy=False)
    reads.append(time.perf_counter() - started)
out["sqlite_get_all_trials_sec_at_1000"] = round(statistics.median(reads), 4)
print(json.dumps(out))
